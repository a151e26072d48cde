// Command intent-mapper-agent is the node agent alone: the binary the DaemonSet runs.
// It links none of the manager's Kubernetes libraries, so each node pays only for
// what the agent does (`intent-mapper agent` runs the same code from the full binary).
package main

import (
	"os"

	"github.com/intent-mapper/intent-mapper/agent"
)

func main() {
	os.Exit(agent.Main(os.Args[1:], os.Stdout, os.Stderr))
}
