package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func resetCommand(e *env) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset [CLIENT]",
		Short: "Delete DiscoveredIntents (all with -A, a namespace's, or one client's); they come back with new traffic",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			items, err := e.discovered(cmd.Context())
			if err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			var doomed []client.Object
			for i := range items {
				if len(args) == 0 || items[i].Name == args[0] {
					doomed = append(doomed, &items[i])
				}
			}
			if len(doomed) == 0 {
				_, _ = fmt.Fprintln(e.out, "no DiscoveredIntents to delete")
				return nil
			}
			if !yes && !e.confirm(fmt.Sprintf("delete %d DiscoveredIntents? [y/N] ", len(doomed))) {
				_, _ = fmt.Fprintln(e.out, "nothing deleted")
				return nil
			}
			for _, obj := range doomed {
				if err := client.IgnoreNotFound(c.Delete(cmd.Context(), obj)); err != nil {
					return err
				}
				_, _ = fmt.Fprintf(e.out, "deleted %s/%s\n", obj.GetNamespace(), obj.GetName())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

func (e *env) confirm(question string) bool {
	_, _ = fmt.Fprint(e.out, question)
	answer, _ := bufio.NewReader(e.in).ReadString('\n')
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}
