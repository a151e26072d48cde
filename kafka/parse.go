// Package kafka reads Kafka brokers' authorizer logs: it parses each access line,
// follows brokers' log streams without counting a line twice, and turns topic access
// into calls from the client workload to the broker.
package kafka

import (
	"bytes"
	"errors"
	"net/netip"
	"time"

	"github.com/intent-mapper/intent-mapper/kafka/operation"
)

// Access is one authorizer decision on a topic.
type Access struct {
	// Time is the broker's own timestamp, read as UTC when the layout has no zone;
	// attribution uses the kubelet's timestamp of the line instead.
	Time      time.Time  `json:"time"`
	Principal string     `json:"principal"`
	Allowed   bool       `json:"allowed"`
	Operation string     `json:"operation"` // canonical: describe, read, write, describeconfigs, …
	Host      netip.Addr `json:"host"`
	Topic     string     `json:"topic"` // a prefixed resource ends in "*"
	Request   string     `json:"request,omitempty"`
}

// Reasons a line is not an access, as counted.
var (
	ErrNotAuthorizer = errors.New("not an authorizer line")
	ErrNotTopic      = errors.New("not a topic resource")
	ErrMalformed     = errors.New("malformed authorizer line")
	// ErrTrace: Kafka logs at TRACE the checks it makes to filter what a client is
	// shown (logIfAllowed/logIfDenied false), which are not the client's accesses.
	ErrTrace = errors.New("a TRACE check, not an access")
)

// Parse reads one authorizer line in any layout of layout.go — Apache Kafka's,
// Strimzi's, Confluent's, JSON — and any message form brokers since Kafka 1.0 write:
//
//	Principal = User:CN=app is Allowed Operation = Describe from host = 10.244.0.27 on resource = Topic:LITERAL:orders for request = Metadata with resourceRefCount = 1
//
// with KRaft's "operation = READ … based on rule …", without "for request" (≤ 2.3),
// or with "Topic:orders" (1.x).
func Parse(line []byte) (Access, error) {
	env, err := unwrap(bytes.TrimRight(line, "\r\n"))
	if err != nil {
		return Access{}, err
	}
	a, err := parseMessage(env.msg)
	a.Time = env.at
	if err == nil && env.trace {
		err = ErrTrace
	}
	return a, err
}

var principalKey = []byte("Principal = ")

// parseMessage reads the message from "Principal = " on. A principal may contain " is "
// (a DN), so each " is Allowed|Denied" is tried; exactly one must leave a well-formed
// rest, or a crafted DN could pass for a decision.
func parseMessage(msg []byte) (Access, error) {
	body, ok := bytes.CutPrefix(msg, principalKey)
	if !ok {
		return Access{}, ErrNotAuthorizer
	}
	var found Access
	var foundErr error
	matches := 0
	for from := 0; ; {
		i := bytes.Index(body[from:], []byte(" is "))
		if i < 0 {
			break
		}
		at := from + i
		from = at + 1
		a, err := decision(body[at+len(" is "):])
		if err == ErrMalformed {
			continue
		}
		a.Principal = string(body[:at])
		found, foundErr = a, err
		matches++
	}
	if matches != 1 || found.Principal == "" {
		return Access{}, ErrMalformed
	}
	return found, foundErr
}

// decision reads "Allowed Operation = … from host = … on resource = …[ for request = …]".
func decision(rest []byte) (Access, error) {
	var a Access
	switch {
	case bytes.HasPrefix(rest, []byte("Allowed ")):
		a.Allowed, rest = true, rest[len("Allowed "):]
	case bytes.HasPrefix(rest, []byte("Denied ")):
		rest = rest[len("Denied "):]
	default:
		return a, ErrMalformed
	}
	const opKey = "peration = " // "Operation = " before KRaft, "operation = " in it
	if len(rest) < len(opKey)+1 || (rest[0] != 'O' && rest[0] != 'o') || string(rest[1:len(opKey)+1]) != opKey {
		return a, ErrMalformed
	}
	op, rest, ok := until(rest[len(opKey)+1:], " from host = ")
	if !ok || !token(op) {
		return a, ErrMalformed
	}
	host, rest, ok := until(rest, " on resource = ")
	if !ok {
		return a, ErrMalformed
	}
	var err error
	if a.Host, err = netip.ParseAddr(string(host)); err != nil {
		return a, ErrMalformed
	}
	resource, rest := word(rest)
	request, ok := trailer(rest)
	if !ok {
		return a, ErrMalformed
	}
	a.Operation, a.Request = operation.Canonical(string(op)), string(request)
	return a, a.topic(resource)
}

// trailer reads what may follow the resource: nothing (≤ 2.3), " for request = R",
// then " with resourceRefCount = N", then KRaft's " based on rule …".
func trailer(rest []byte) (request []byte, ok bool) {
	if len(rest) == 0 {
		return nil, true
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(" for request = ")); !ok {
		return nil, false
	}
	request, rest = word(rest)
	if !token(request) {
		return nil, false
	}
	if len(rest) == 0 {
		return request, true
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(" with resourceRefCount = ")); !ok {
		return nil, false
	}
	count, rest := word(rest)
	if !digits(count) {
		return nil, false
	}
	return request, len(rest) == 0 || bytes.HasPrefix(rest, []byte(" based on rule "))
}

// topic reads "Topic:LITERAL:name", "Topic:PREFIXED:prefix" or, before Kafka 2.0,
// "Topic:name".
func (a *Access) topic(resource []byte) error {
	kind, rest, ok := until(resource, ":")
	if !ok {
		return ErrMalformed
	}
	if string(kind) != "Topic" {
		return ErrNotTopic
	}
	pattern, name, ok := until(rest, ":")
	if !ok {
		pattern, name = []byte("LITERAL"), rest
	}
	if !topicName(name) {
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

// topicName: Kafka allows 1 to 249 of [a-zA-Z0-9._-].
func topicName(b []byte) bool {
	if len(b) == 0 || len(b) > 249 {
		return false
	}
	for _, c := range b {
		if !topicChar(c) {
			return false
		}
	}
	return true
}

func topicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// token: a non-empty run without spaces.
func token(b []byte) bool { return len(b) > 0 && bytes.IndexByte(b, ' ') < 0 }

func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// word splits b at its first space.
func word(b []byte) (head, rest []byte) {
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		return b[:i], b[i:]
	}
	return b, nil
}

func until(b []byte, sep string) (head, rest []byte, ok bool) {
	i := bytes.Index(b, []byte(sep))
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+len(sep):], true
}
