// Command kubectl-intents is the kubectl plugin for intent-mapper: `kubectl intents
// list|export|diff|visualize|reset` over the DiscoveredIntents in the cluster.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
