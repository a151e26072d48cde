package kafka

import (
	"bytes"
	"encoding/json"
	"time"
)

// envelope is what a log layout wraps around the authorizer's message.
type envelope struct {
	msg   []byte
	at    time.Time
	trace bool
}

const (
	authorizerLogger = "kafka.authorizer.logger"
	levelTrace       = "TRACE"
)

var (
	loggerSuffix = []byte(" (" + authorizerLogger + ")")
	cfkLogger    = []byte(authorizerLogger + " ")
	// Strimzi's log4j2 layout prints the logger's last name part (%c{1}).
	strimziLogger = []byte("logger:")
)

// unwrap finds the message in the layouts brokers print (testdata/layouts names where
// each comes from). The layout must hold around the message, with the authorizer's
// logger where the layout puts it, so another logger's line quoting a client's
// "Principal = …" is not read as a decision.
//
//	Apache Kafka 3.x/4.x, Bitnami:  [%d] %p %m (%c)%n
//	Strimzi, log4j:                 %d{ISO8601} %p %m (%c) [%t]%n
//	Strimzi, log4j2:                %d{yyyy-MM-dd HH:mm:ss} %-5p [%t] %c{1}:%L - %m%n
//	Confluent for Kubernetes:       [%p] %d [%t] %c %M - %m%n
//	log4j2 JSON (JsonTemplateLayout ECS, JsonLayout): the message is a field
func unwrap(line []byte) (envelope, error) {
	if len(line) > 0 && line[0] == '{' {
		return unwrapJSON(line)
	}
	i := bytes.Index(line, principalKey)
	if i < 0 {
		return envelope{}, ErrNotAuthorizer
	}
	prefix, msg := line[:i], line[i:]
	var e envelope
	var ok bool
	switch {
	case len(prefix) > 1 && prefix[0] == '[' && isDigit(prefix[1]): // Apache
		e, ok = apacheLayout(prefix, msg)
	case len(prefix) > 0 && prefix[0] == '[': // Confluent
		e, ok = confluentLayout(prefix, msg)
	case len(prefix) > 0 && isDigit(prefix[0]): // Strimzi
		e, ok = strimziLayout(prefix, msg)
	}
	if !ok {
		return envelope{}, ErrNotAuthorizer
	}
	return e, nil
}

func apacheLayout(prefix, msg []byte) (envelope, bool) {
	var e envelope
	rest, ok := e.stamp(prefix[1:])
	if !ok || !bytes.HasPrefix(rest, []byte("] ")) {
		return e, false
	}
	if rest, ok = e.level(rest[2:]); !ok || len(rest) != 0 {
		return e, false
	}
	e.msg, ok = bytes.CutSuffix(msg, loggerSuffix)
	return e, ok
}

func confluentLayout(prefix, msg []byte) (envelope, bool) {
	var e envelope
	rest, ok := e.level(prefix[1:])
	if !ok || !bytes.HasPrefix(rest, []byte("] ")) {
		return e, false
	}
	if rest, ok = e.stamp(rest[2:]); !ok {
		return e, false
	}
	if rest, ok = thread(rest); !ok {
		return e, false
	}
	if rest, ok = bytes.CutPrefix(rest, cfkLogger); !ok {
		return e, false
	}
	method, _ := word(rest) // %M, the logging method
	e.msg = msg
	return e, len(method) > 0 && string(rest[len(method):]) == " - "
}

func strimziLayout(prefix, msg []byte) (envelope, bool) {
	var e envelope
	rest, ok := e.stamp(prefix)
	if !ok {
		return e, false
	}
	if rest, ok = e.level(rest); !ok {
		return e, false
	}
	if len(rest) == 0 { // log4j: the logger and thread follow the message
		i := bytes.LastIndex(msg, loggerSuffix)
		if i < 0 {
			return e, false
		}
		t := msg[i+len(loggerSuffix):]
		e.msg = msg[:i]
		return e, len(t) > 3 && t[0] == ' ' && t[1] == '[' && t[len(t)-1] == ']' && bytes.IndexByte(t, '(') < 0
	}
	if rest, ok = thread(rest); !ok {
		return e, false
	}
	if rest, ok = bytes.CutPrefix(rest, strimziLogger); !ok {
		return e, false
	}
	line, rest := word(rest) // %L, the line number, or "?" without location
	e.msg = msg
	return e, (digits(line) || string(line) == "?") && string(rest) == " - "
}

// thread reads "[thread] " (a leading space allowed, for padded levels).
func thread(b []byte) ([]byte, bool) {
	b = bytes.TrimLeft(b, " ")
	if len(b) == 0 || b[0] != '[' {
		return nil, false
	}
	i := bytes.Index(b, []byte("] "))
	if i < 0 {
		return nil, false
	}
	return b[i+2:], true
}

// level reads a log level and the spaces after it (%-5p pads).
func (e *envelope) level(b []byte) ([]byte, bool) {
	lvl, rest := b, []byte(nil)
	if i := bytes.IndexAny(b, " ]"); i >= 0 {
		lvl, rest = b[:i], b[i:]
	}
	switch string(lvl) {
	case levelTrace:
		e.trace = true
	case "DEBUG", "INFO", "WARN", "ERROR", "FATAL":
	default:
		return nil, false
	}
	if len(rest) > 0 && rest[0] == ']' {
		return rest, true
	}
	return bytes.TrimLeft(rest, " "), true
}

// stamp reads log4j's zone-less "2006-01-02 15:04:05" with an optional ",000" or
// ".000" (ISO8601 may put a T in the middle) as UTC, and the space after it.
func (e *envelope) stamp(b []byte) ([]byte, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != ' ' && b[10] != 'T') || b[13] != ':' || b[16] != ':' {
		return nil, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for _, c := range b[from:to] {
			if !isDigit(c) {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	h, ok4 := num(11, 13)
	mi, ok5 := num(14, 16)
	s, ok6 := num(17, 19)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 {
		return nil, false
	}
	rest, ms := b[19:], 0
	if len(rest) >= 4 && (rest[0] == ',' || rest[0] == '.') {
		var ok bool
		if ms, ok = num(20, 23); !ok {
			return nil, false
		}
		rest = rest[4:]
	}
	e.at = time.Date(y, time.Month(mo), d, h, mi, s, ms*int(time.Millisecond), time.UTC)
	if len(rest) > 0 && rest[0] == ' ' {
		return rest[1:], true
	}
	return rest, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// jsonLine holds the fields of log4j2's JSON layouts the parser reads: ECS
// (JsonTemplateLayout's EcsLayout.json) and JsonLayout.
type jsonLine struct {
	Message    string `json:"message"`
	ECSLogger  string `json:"log.logger"`
	Logger     string `json:"loggerName"`
	ECSLevel   string `json:"log.level"`
	Level      string `json:"level"`
	Timestamp  string `json:"@timestamp"`
	TimeMillis int64  `json:"timeMillis"`
	Instant    *struct {
		EpochSecond  int64 `json:"epochSecond"`
		NanoOfSecond int64 `json:"nanoOfSecond"`
	} `json:"instant"`
}

func unwrapJSON(line []byte) (envelope, error) {
	if !bytes.Contains(line, principalKey) {
		return envelope{}, ErrNotAuthorizer // most lines: skip the decoding
	}
	var j jsonLine
	if err := json.Unmarshal(line, &j); err != nil {
		return envelope{}, ErrMalformed
	}
	if j.ECSLogger != authorizerLogger && j.Logger != authorizerLogger {
		return envelope{}, ErrNotAuthorizer
	}
	e := envelope{msg: []byte(j.Message), trace: j.ECSLevel == levelTrace || j.Level == levelTrace}
	switch {
	case j.Timestamp != "":
		e.at, _ = time.Parse(time.RFC3339Nano, j.Timestamp)
	case j.Instant != nil:
		e.at = time.Unix(j.Instant.EpochSecond, j.Instant.NanoOfSecond).UTC()
	case j.TimeMillis != 0:
		e.at = time.UnixMilli(j.TimeMillis).UTC()
	}
	return e, nil
}
