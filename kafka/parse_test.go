package kafka

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	aclLine    = "[2023-03-12 13:51:55,904] INFO Principal = User:CN=myclient is Allowed Operation = Describe from host = 10.244.0.27 on resource = Topic:LITERAL:mytopic for request = Metadata with resourceRefCount = 1 (kafka.authorizer.logger)"
	kraftLine  = "[2024-06-01 08:00:01,002] DEBUG Principal = User:ANONYMOUS is Allowed operation = WRITE from host = 10.244.1.9 on resource = Topic:LITERAL:orders for request = Produce with resourceRefCount = 1 based on rule MatchingAcl(acl=StandardAcl(resourceType=TOPIC, resourceName=orders, patternType=LITERAL, principal=User:ANONYMOUS, host=*, operation=WRITE, permissionType=ALLOW)) (kafka.authorizer.logger)"
	deniedLine = "[2024-06-01 08:00:02,500] INFO Principal = User:CN=intruder is Denied Operation = Read from host = 10.244.2.3 on resource = Topic:PREFIXED:payments- for request = Fetch with resourceRefCount = 1 (kafka.authorizer.logger)"
	groupLine  = "[2024-06-01 08:00:03,000] DEBUG Principal = User:ANONYMOUS is Allowed Operation = Read from host = 10.244.1.9 on resource = Group:LITERAL:consumers for request = JoinGroup with resourceRefCount = 1 (kafka.authorizer.logger)"
	ipv6Line   = "[2024-06-01 08:00:04,000] DEBUG Principal = User:ANONYMOUS is Allowed operation = CREATE from host = fd00::9 on resource = Topic:LITERAL:audit for request = CreateTopics with resourceRefCount = 1 based on rule DefaultAllow (kafka.authorizer.logger)"
	stackTrace = "\tat kafka.server.KafkaApis.handle(KafkaApis.scala:175)"
	otherLine  = "[2024-06-01 08:00:05,000] INFO [KafkaServer id=0] started (kafka.server.KafkaServer)"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Access
	}{
		{aclLine, Access{Time: time.Date(2023, 3, 12, 13, 51, 55, 904e6, time.UTC), Principal: "User:CN=myclient", Allowed: true, Operation: "describe", Host: netip.MustParseAddr("10.244.0.27"), Topic: "mytopic", Request: "Metadata"}},
		{kraftLine, Access{Time: time.Date(2024, 6, 1, 8, 0, 1, 2e6, time.UTC), Principal: "User:ANONYMOUS", Allowed: true, Operation: "write", Host: netip.MustParseAddr("10.244.1.9"), Topic: "orders", Request: "Produce"}},
		{deniedLine, Access{Time: time.Date(2024, 6, 1, 8, 0, 2, 500e6, time.UTC), Principal: "User:CN=intruder", Allowed: false, Operation: "read", Host: netip.MustParseAddr("10.244.2.3"), Topic: "payments-*", Request: "Fetch"}},
		{ipv6Line, Access{Time: time.Date(2024, 6, 1, 8, 0, 4, 0, time.UTC), Principal: "User:ANONYMOUS", Allowed: true, Operation: "create", Host: netip.MustParseAddr("fd00::9"), Topic: "audit", Request: "CreateTopics"}},
	} {
		got, err := Parse([]byte(tc.line))
		if err != nil || got != tc.want {
			t.Errorf("Parse(%.60q…) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

func TestParseRefusesWhatIsNotATopicAccess(t *testing.T) {
	for line, want := range map[string]error{
		groupLine:    ErrNotTopic,
		stackTrace:   ErrNotAuthorizer,
		otherLine:    ErrNotAuthorizer,
		"":           ErrNotAuthorizer,
		aclLine[:90]: ErrNotAuthorizer, // cut mid-line: the layout does not hold
		strings.Replace(aclLine, "10.244.0.27", "not-an-ip", 1):                        ErrMalformed,
		strings.Replace(aclLine, "Allowed", "Maybe", 1):                                ErrMalformed,
		strings.Replace(aclLine, "13:51:55,904", "xx:51:55,904", 1):                    ErrNotAuthorizer,
		strings.Replace(aclLine, "Topic:LITERAL:mytopic", "Topic:LITERAL:my topic", 1): ErrMalformed,
		strings.Replace(aclLine, "Topic:LITERAL:mytopic", "Topic:ANY:mytopic", 1):      ErrMalformed,
	} {
		if _, err := Parse([]byte(line)); !errors.Is(err, want) {
			t.Errorf("Parse(%.50q…) = %v, want %v", line, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, l := range []string{aclLine, kraftLine, deniedLine, groupLine, ipv6Line, stackTrace, otherLine} {
		f.Add([]byte(l))
	}
	for file := range layoutCases {
		for _, s := range samples(f, file) {
			f.Add(s.line)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		a, err := Parse(line)
		if err == nil && (!topicName([]byte(strings.TrimSuffix(a.Topic, "*"))) || !a.Host.IsValid() || a.Operation == "" || a.Principal == "") {
			t.Fatalf("accepted an incomplete access %+v from %q", a, line)
		}
	})
}

var lines = func() [][]byte {
	out := make([][]byte, 0, 5000)
	for range 1000 {
		for _, l := range []string{aclLine, kraftLine, deniedLine, groupLine, stackTrace} {
			out = append(out, []byte(l))
		}
	}
	return out
}()

// BenchmarkParseLog: our parser over a mix of real-format lines.
func BenchmarkParseLog(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			_, _ = Parse(l)
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "lines/s")
}

// authorizerRE is the common approach: one regular expression for the line.
var authorizerRE = regexp.MustCompile(`^\[([^\]]+)\] \w+ Principal = (\S+) is (Allowed|Denied) [Oo]peration = (\S+) from host = (\S+) on resource = (\w+):(\w+):(\S+) for request = (\S+)`)

// BenchmarkParseLogBaseline: the same lines through the regular expression.
func BenchmarkParseLogBaseline(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			m := authorizerRE.FindSubmatch(l)
			if m == nil || string(m[6]) != "Topic" {
				continue
			}
			t, _ := time.Parse("2006-01-02 15:04:05,000", string(m[1]))
			host, _ := netip.ParseAddr(string(m[5]))
			_ = Access{Time: t, Principal: string(m[2]), Allowed: string(m[3]) == "Allowed", Operation: strings.ToLower(string(m[4])), Host: host, Topic: string(m[8]), Request: string(m[9])}
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "lines/s")
}

func TestParseCommand(t *testing.T) {
	in := strings.Join([]string{aclLine, stackTrace, deniedLine, groupLine, "garbage", kraftLine}, "\n")
	var out, errOut strings.Builder
	if code := Main([]string{"parse"}, strings.NewReader(in), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"topic":"mytopic"`) || !strings.Contains(lines[1], `"allowed":false`) {
		t.Errorf("output:\n%s", out.String())
	}
	if errOut.String() != "3 accesses; skipped: 2 not authorizer lines, 1 not topics, 0 TRACE checks, 0 malformed\n" {
		t.Errorf("summary %q", errOut.String())
	}
}

// `kubectl logs --timestamps` output keeps the kubelet's time, not the broker's.
func TestParseCommandReadsKubeletTimestamps(t *testing.T) {
	var out, errOut strings.Builder
	in := "2023-03-12T11:51:55.904123456Z " + aclLine + "\n"
	if code := Main([]string{"parse"}, strings.NewReader(in), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `"time":"2023-03-12T11:51:55.904123456Z"`) || !strings.Contains(out.String(), `"topic":"mytopic"`) {
		t.Errorf("output %s", out.String())
	}
}
