// Package kafka reads Kafka brokers' authorizer logs: it parses each access line,
// follows brokers' log streams without counting a line twice, and turns topic access
// into calls from the client workload to the broker.
package kafka

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"time"
)

// Access is one authorizer decision on a topic.
type Access struct {
	Time      time.Time  `json:"time"`
	Principal string     `json:"principal"`
	Allowed   bool       `json:"allowed"`
	Operation string     `json:"operation"` // lower case: describe, read, write, create, …
	Host      netip.Addr `json:"host"`
	Topic     string     `json:"topic"` // a prefixed resource ends in "*"
	Request   string     `json:"request,omitempty"`
}

// Reasons a line is not an access, as counted.
var (
	ErrNotAuthorizer = errors.New("not an authorizer line")
	ErrNotTopic      = errors.New("not a topic resource")
	ErrMalformed     = errors.New("malformed authorizer line")
)

// Parse reads one authorizer line, in the AclAuthorizer form
//
//	[2023-03-12 13:51:55,904] INFO Principal = User:CN=myclient is Allowed Operation = Describe from host = 10.244.0.27 on resource = Topic:LITERAL:mytopic for request = Metadata with resourceRefCount = 1 (kafka.authorizer.logger)
//
// or KRaft's StandardAuthorizer form ("operation = READ", "based on rule …").
func Parse(line []byte) (Access, error) {
	var a Access
	line = bytes.TrimRight(line, "\r\n")
	if len(line) < 25 || line[0] != '[' || line[24] != ']' {
		return a, ErrNotAuthorizer // a stack trace, a continuation, another format
	}
	t, err := time.Parse("2006-01-02 15:04:05,000", string(line[1:24]))
	if err != nil {
		return a, ErrMalformed
	}
	a.Time = t
	rest, ok := after(line[25:], "Principal = ")
	if !ok {
		return a, ErrNotAuthorizer
	}
	var principal []byte
	if principal, rest, ok = until(rest, " is "); !ok {
		return a, ErrMalformed
	}
	a.Principal = string(principal)
	switch {
	case bytes.HasPrefix(rest, []byte("Allowed ")):
		a.Allowed, rest = true, rest[len("Allowed "):]
	case bytes.HasPrefix(rest, []byte("Denied ")):
		rest = rest[len("Denied "):]
	default:
		return a, ErrMalformed
	}
	if len(rest) < len("operation = ") || !bytes.EqualFold(rest[:len("operation = ")], []byte("operation = ")) {
		return a, ErrMalformed
	}
	var op, host, resource, request []byte
	if op, rest, ok = until(rest[len("operation = "):], " from host = "); !ok {
		return a, ErrMalformed
	}
	if host, rest, ok = until(rest, " on resource = "); !ok {
		return a, ErrMalformed
	}
	if resource, rest, ok = until(rest, " for request = "); !ok {
		return a, ErrMalformed
	}
	if request, _, ok = until(rest, " with resourceRefCount"); !ok {
		request = rest
	}
	a.Operation = strings.ToLower(string(op))
	if a.Host, err = netip.ParseAddr(string(host)); err != nil {
		return a, ErrMalformed
	}
	a.Request = string(request)
	return a, a.topic(resource)
}

// topic reads "Topic:LITERAL:name" or "Topic:PREFIXED:prefix".
func (a *Access) topic(resource []byte) error {
	kind, rest, ok := until(resource, ":")
	if !ok {
		return ErrMalformed
	}
	if string(kind) != "Topic" {
		return ErrNotTopic
	}
	pattern, name, ok := until(rest, ":")
	if !ok || len(name) == 0 {
		return ErrMalformed
	}
	switch string(pattern) {
	case "LITERAL":
		a.Topic = string(name)
	case "PREFIXED":
		a.Topic = string(name) + "*"
	default:
		return ErrMalformed
	}
	return nil
}

func after(b []byte, sep string) ([]byte, bool) {
	i := bytes.Index(b, []byte(sep))
	if i < 0 {
		return nil, false
	}
	return b[i+len(sep):], true
}

func until(b []byte, sep string) (head, rest []byte, ok bool) {
	i := bytes.Index(b, []byte(sep))
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+len(sep):], true
}
