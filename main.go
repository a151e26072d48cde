// Command intent-mapper is both halves of intent-mapper: `intent-mapper manager` (the
// default) runs the operator; `intent-mapper agent` runs the node agent.
package main

import (
	"fmt"
	"os"

	"github.com/intent-mapper/intent-mapper/agent"
	"github.com/intent-mapper/intent-mapper/kafka"
)

const usage = `intent-mapper learns which workload calls which from real traffic.

Usage:
  intent-mapper [manager] [flags]   run the operator (the default)
  intent-mapper agent [flags]       run the node agent
  intent-mapper kafka parse         parse Kafka authorizer log lines on standard input

Run "intent-mapper COMMAND -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	command := "manager"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		command, args = args[0], args[1:]
	}
	switch command {
	case "manager":
		return runManager(args)
	case "agent":
		return runAgent(args)
	case "kafka":
		return kafka.Main(args, os.Stdin, os.Stdout, os.Stderr)
	case "help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", command, usage)
		return 2
	}
}

func runAgent(args []string) int {
	return agent.Main(args, os.Stdout, os.Stderr)
}
