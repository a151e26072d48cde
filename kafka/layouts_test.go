package kafka

import (
	"bufio"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sample is one non-comment line of a testdata/layouts file.
type sample struct {
	file string
	line []byte
}

func samples(t testing.TB, file string) []sample {
	f, err := os.Open(filepath.Join("testdata", "layouts", file))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var out []sample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "#") {
			out = append(out, sample{file, []byte(sc.Text())})
		}
	}
	return out
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05.000", s)
	if err != nil {
		panic(err)
	}
	return t
}

// want is the outcome expected of one line: an access, or an error.
type want struct {
	access Access
	err    error
}

func access(a Access) want   { return want{access: a} }
func refused(err error) want { return want{err: err} }

var layoutCases = map[string][]want{
	"apache-3-log4j.log": {
		refused(ErrNotAuthorizer),
		access(Access{Time: utc("2024-06-01 08:00:01.002"), Principal: "User:CN=orders,OU=shop,O=Acme", Allowed: true, Operation: "write", Host: ip("10.244.1.9"), Topic: "orders", Request: "Produce"}),
		access(Access{Time: utc("2024-06-01 08:00:01.050"), Principal: "User:CN=This is prod,O=Acme", Allowed: false, Operation: "read", Host: ip("10.244.2.3"), Topic: "payments", Request: "Fetch"}),
		refused(ErrTrace),
		refused(ErrNotTopic),
		access(Access{Time: utc("2024-06-01 08:00:01.120"), Principal: `User:CN=orders\,east,O=Acme`, Allowed: true, Operation: "describe", Host: ip("10.244.1.9"), Topic: "orders-*", Request: "Metadata"}),
		refused(ErrNotAuthorizer),
	},
	"apache-4-log4j2.log": {
		refused(ErrNotAuthorizer),
		access(Access{Time: utc("2025-04-02 09:30:01.250"), Principal: "User:ANONYMOUS", Allowed: true, Operation: "describeconfigs", Host: ip("10.244.3.7"), Topic: "orders", Request: "DescribeConfigs"}),
		access(Access{Time: utc("2025-04-02 09:30:01.500"), Principal: "User:ANONYMOUS", Allowed: true, Operation: "alterconfigs", Host: ip("fd00:10:244::7"), Topic: "orders", Request: "IncrementalAlterConfigs"}),
		refused(ErrNotTopic),
	},
	"strimzi-log4j.log": {
		refused(ErrNotAuthorizer),
		access(Access{Time: utc("2024-11-05 14:47:14.120"), Principal: "User:CN=my-producer", Allowed: true, Operation: "write", Host: ip("10.244.0.31"), Topic: "my-topic", Request: "Produce"}),
		access(Access{Time: utc("2024-11-05 14:47:14.500"), Principal: "User:CN=my-consumer", Allowed: false, Operation: "read", Host: ip("10.244.0.32"), Topic: "my-topic", Request: "Fetch"}),
	},
	"strimzi-log4j2.log": {
		refused(ErrNotAuthorizer),
		access(Access{Time: utc("2025-06-10 07:15:02.000"), Principal: "User:CN=my-consumer", Allowed: true, Operation: "read", Host: ip("10.244.5.12"), Topic: "my-topic", Request: "Fetch"}),
		access(Access{Time: utc("2025-06-10 07:15:03.000"), Principal: "User:CN=my-producer", Allowed: false, Operation: "create", Host: ip("10.244.5.13"), Topic: "new-topic", Request: "CreateTopics"}),
	},
	"confluent-cfk.log": {
		refused(ErrNotAuthorizer),
		access(Access{Time: utc("2021-07-27 21:41:33.793"), Principal: "User:kafka-connect", Allowed: true, Operation: "write", Host: ip("10.244.7.21"), Topic: "connect-offsets", Request: "Produce"}),
		access(Access{Time: utc("2021-07-27 21:41:34.001"), Principal: "User:ksql", Allowed: false, Operation: "alter", Host: ip("10.244.7.22"), Topic: "connect-offsets", Request: "CreatePartitions"}),
	},
	"json-ecs.log": {
		refused(ErrNotAuthorizer),
		access(Access{Time: utc("2025-02-01 10:00:03.250"), Principal: "User:CN=search,O=Acme", Allowed: true, Operation: "describe", Host: ip("10.244.4.40"), Topic: "products", Request: "Metadata"}),
		refused(ErrTrace),
	},
	"json-layout.log": {
		access(Access{Time: time.Unix(1738404004, 125e6).UTC(), Principal: "User:CN=search,O=Acme", Allowed: true, Operation: "write", Host: ip("10.244.4.40"), Topic: "clicks", Request: "Produce"}),
		refused(ErrNotAuthorizer), // another logger
	},
	"old-brokers.log": {
		access(Access{Time: utc("2019-05-01 12:00:00.000"), Principal: "User:alice", Allowed: true, Operation: "read", Host: ip("10.0.0.5"), Topic: "orders"}),
		access(Access{Time: utc("2018-03-01 12:00:00.250"), Principal: "User:bob", Allowed: true, Operation: "write", Host: ip("10.0.0.6"), Topic: "events"}),
		refused(ErrNotTopic),
	},
	"forgeries.log": {
		refused(ErrNotAuthorizer),
		refused(ErrNotAuthorizer),
		refused(ErrMalformed),
	},
}

// TestLayouts reads every sample of every layout and checks each field parsed.
func TestLayouts(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "layouts", "*.log"))
	if len(files) != len(layoutCases) {
		t.Errorf("%d sample files, %d with expectations", len(files), len(layoutCases))
	}
	for file, wants := range layoutCases {
		t.Run(file, func(t *testing.T) {
			lines := samples(t, file)
			if len(lines) != len(wants) {
				t.Fatalf("%d lines, %d expectations", len(lines), len(wants))
			}
			for i, s := range lines {
				got, err := Parse(s.line)
				w := wants[i]
				switch {
				case w.err != nil && !errors.Is(err, w.err):
					t.Errorf("line %d: error %v, want %v", i+1, err, w.err)
				case w.err == nil && (err != nil || got != w.access):
					t.Errorf("line %d:\n got %+v, %v\nwant %+v", i+1, got, err, w.access)
				}
			}
		})
	}
}
