package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/declared"
)

func exportCommand(e *env) *cobra.Command {
	var (
		since      time.Duration
		apiVersion string
		format     string
		server     string
		egress     bool
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write ClientIntents for what was observed, for kubectl apply -f -",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			items, err := e.discovered(cmd.Context())
			if err != nil {
				return err
			}
			items = calling(sinceFilter(items, since, e.now()), server)
			if isPolicyFormat(format) {
				return e.exportPolicies(cmd.Context(), items, format, egress)
			}
			var objs []any
			for i := range items {
				obj, err := declared.Export(&items[i], apiVersion)
				if err != nil {
					return err
				}
				objs = append(objs, obj)
			}
			return writeObjects(e, objs, format)
		},
	}
	cmd.Flags().DurationVar(&since, "since", 0, "only calls seen since this long ago")
	cmd.Flags().StringVar(&apiVersion, "api-version", declared.V1alpha3, "ClientIntents version: "+declared.V1alpha3+" or "+declared.V2beta1)
	cmd.Flags().StringVar(&format, "format", "yaml", "yaml (multi-document) or json (an array) of ClientIntents; or policies: "+policyFormats)
	cmd.Flags().BoolVar(&egress, "egress", false, "with --format "+formatNetworkPolicy+": also an egress policy per client")
	cmd.Flags().StringVar(&server, "server", "", "only clients that call this server, NAME.NAMESPACE (each with all its calls)")
	return cmd
}

// calling keeps the clients that call server (NAME.NAMESPACE); all when empty.
func calling(items []discoveryv1alpha1.DiscoveredIntents, server string) []discoveryv1alpha1.DiscoveredIntents {
	if server == "" {
		return items
	}
	name, ns, _ := strings.Cut(server, ".")
	var out []discoveryv1alpha1.DiscoveredIntents
	for _, di := range items {
		if ns == "" {
			ns = di.Namespace
		}
		if di.Status.Find(ns, name) != nil {
			out = append(out, di)
		}
	}
	return out
}

func writeObjects(e *env, objs []any, format string) error {
	switch format {
	case "json":
		if objs == nil {
			objs = []any{}
		}
		raw, err := json.MarshalIndent(objs, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(e.out, string(raw))
		return err
	case "yaml":
		for _, o := range objs {
			raw, err := yaml.Marshal(o)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(e.out, "---\n%s", stripCreation(raw)); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("--format %q: use yaml or json", format)
}

// stripCreation drops the empty creationTimestamp metav1.ObjectMeta writes.
func stripCreation(raw []byte) []byte {
	return []byte(strings.ReplaceAll(string(raw), "  creationTimestamp: null\n", ""))
}
