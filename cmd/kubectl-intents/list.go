package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

func listCommand(e *env) *cobra.Command {
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Per client, the servers it calls and, for HTTP, each path with its methods",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			items, err := e.discovered(cmd.Context())
			if err != nil {
				return err
			}
			printList(e.out, sinceFilter(items, since, e.now()))
			return nil
		},
	}
	cmd.Flags().DurationVar(&since, "since", 0, "only calls seen since this long ago (e.g. 1h)")
	return cmd
}

// printList writes the text users of the seed tool know.
func printList(w io.Writer, items []discoveryv1alpha1.DiscoveredIntents) {
	for _, di := range items {
		_, _ = fmt.Fprintf(w, "%s in namespace %s calls:\n", di.Spec.Workload.Name, di.Namespace)
		for _, c := range di.Status.Calls {
			switch c.Type {
			case discoveryv1alpha1.CallInternet:
				_, _ = fmt.Fprintf(w, "  - %s on the internet, ports %v\n", c.Name, c.Ports)
			default:
				_, _ = fmt.Fprintf(w, "  - %s in namespace %s\n", c.Name, c.Namespace)
			}
			for _, p := range c.HTTP {
				_, _ = fmt.Fprintf(w, "    - path %s, methods: %v\n", p.Path, p.Methods)
			}
			for _, t := range c.Kafka {
				_, _ = fmt.Fprintf(w, "    - topic %s, operations: %v\n", t.Name, t.Operations)
			}
		}
	}
}
