package kafka

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Main runs `intent-mapper kafka parse`: log lines on in, one JSON access per line
// on out, and what could not be read counted on errOut.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	if len(args) != 1 || args[0] != "parse" {
		_, _ = fmt.Fprintln(errOut, "usage: intent-mapper kafka parse < broker.log\n\nReads Kafka authorizer log lines (AclAuthorizer or StandardAuthorizer) and prints each\ntopic access as a JSON line: time, principal, allowed, operation, host, topic, request.\nLines from `kubectl logs --timestamps` keep the kubelet's time.")
		return 2
	}
	enc := json.NewEncoder(out)
	skipped := map[string]int{}
	parsed := 0
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxLogLine)
	for sc.Scan() {
		at, line := kubeletStamp(sc.Bytes())
		a, err := Parse(line)
		if !at.IsZero() {
			a.Time = at
		}
		if err != nil {
			skipped[err.Error()]++
			continue
		}
		parsed++
		if err := enc.Encode(a); err != nil {
			return 1
		}
	}
	if err := sc.Err(); err != nil {
		_, _ = fmt.Fprintln(errOut, "reading:", err)
		return 1
	}
	_, _ = fmt.Fprintf(errOut, "%d accesses; skipped: %d not authorizer lines, %d not topics, %d TRACE checks, %d malformed\n",
		parsed, skipped[ErrNotAuthorizer.Error()], skipped[ErrNotTopic.Error()], skipped[ErrTrace.Error()], skipped[ErrMalformed.Error()])
	return 0
}

// kubeletStamp splits the RFC 3339 timestamp the kubelet puts before a line
// (`kubectl logs --timestamps`), if there is one.
func kubeletStamp(line []byte) (time.Time, []byte) {
	stamp, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(stamp) < 20 || stamp[4] != '-' || stamp[10] != 'T' {
		return time.Time{}, line
	}
	at, err := time.Parse(time.RFC3339Nano, string(stamp))
	if err != nil {
		return time.Time{}, line
	}
	return at, rest
}
