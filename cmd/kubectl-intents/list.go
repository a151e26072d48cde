package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/declared"
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

// printList writes, per client, each call with its type, ports and Services, and
// its paths or topics; a truncated call says so.
func printList(w io.Writer, items []discoveryv1alpha1.DiscoveredIntents) {
	for _, di := range items {
		_, _ = fmt.Fprintf(w, "%s in namespace %s calls:\n", di.Spec.Workload.Name, di.Namespace)
		for _, c := range di.Status.Calls {
			_, _ = fmt.Fprintf(w, "  - %s (%s)\n", server(c), callDetails(c))
			for _, p := range c.HTTP {
				_, _ = fmt.Fprintf(w, "    - path %s, methods: %v\n", p.Path, p.Methods)
			}
			if c.Truncated {
				_, _ = fmt.Fprintf(w, "    - (truncated: more paths were called than the %d recorded)\n", len(c.HTTP))
			}
			for _, t := range c.Kafka {
				_, _ = fmt.Fprintf(w, "    - topic %s, operations: %v\n", t.Name, t.Operations)
			}
		}
	}
}

func server(c discoveryv1alpha1.Call) string {
	switch {
	case c.Type == discoveryv1alpha1.CallInternet:
		return c.Name + " on the internet"
	case declared.IsService(c):
		return fmt.Sprintf("Service %s in namespace %s", c.Name, c.Namespace)
	}
	return fmt.Sprintf("%s %s in namespace %s", c.Kind, c.Name, c.Namespace)
}

func callDetails(c discoveryv1alpha1.Call) string {
	parts := []string{string(c.Type)}
	if len(c.Ports) > 0 {
		ports := make([]string, len(c.Ports))
		for i, p := range c.Ports {
			ports[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, "ports "+strings.Join(ports, ","))
	}
	if len(c.Services) > 0 && !declared.IsService(c) {
		parts = append(parts, "via Service "+strings.Join(c.Services, ","))
	}
	return strings.Join(parts, ", ")
}
