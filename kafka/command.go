package kafka

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// Main runs `intent-mapper kafka parse`: log lines on in, one JSON access per line
// on out, and what could not be read counted on errOut.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	if len(args) != 1 || args[0] != "parse" {
		_, _ = fmt.Fprintln(errOut, "usage: intent-mapper kafka parse < broker.log\n\nReads Kafka authorizer log lines (AclAuthorizer or StandardAuthorizer) and prints each\ntopic access as a JSON line: time, principal, allowed, operation, host, topic, request.")
		return 2
	}
	enc := json.NewEncoder(out)
	skipped := map[string]int{}
	parsed := 0
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxLogLine)
	for sc.Scan() {
		a, err := Parse(sc.Bytes())
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
	_, _ = fmt.Fprintf(errOut, "%d accesses; skipped: %d not authorizer lines, %d not topics, %d malformed\n",
		parsed, skipped[ErrNotAuthorizer.Error()], skipped[ErrNotTopic.Error()], skipped[ErrMalformed.Error()])
	return 0
}
