package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/declared"
)

// formatJSON is the output format bots read.
const formatJSON = "json"

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
		Long: "Writes one ClientIntents per client, in the version the cluster prefers when the ClientIntents CRD is\n" +
			"installed, " + declared.V2beta1 + " otherwise. What ClientIntents cannot express (a HEAD-only path, a\n" +
			"truncated call, a name with a dot) is reported on standard error and as a comment in the YAML.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			items, err := e.discovered(cmd.Context())
			if err != nil {
				return err
			}
			items = calling(sinceFilter(items, since, e.now()), server)
			if isPolicyFormat(format) {
				return e.exportPolicies(cmd.Context(), items, format, egress)
			}
			if apiVersion == "" {
				if apiVersion, err = e.clusterVersion(); err != nil {
					return err
				}
			}
			objs, gaps, err := exportAll(items, apiVersion)
			if err != nil {
				return err
			}
			reportGaps(e, gaps)
			return writeObjects(e, objs, gaps, format)
		},
	}
	cmd.Flags().DurationVar(&since, "since", 0, "only calls seen since this long ago")
	cmd.Flags().StringVar(&apiVersion, "api-version", "", "ClientIntents version, one of "+strings.Join(declared.Writable, ", ")+
		" (default: the cluster's preferred, else "+declared.V2beta1+")")
	cmd.Flags().StringVar(&format, "format", "yaml", "yaml (multi-document) or json (a List) of ClientIntents; or policies: "+policyFormats)
	cmd.Flags().BoolVar(&egress, "egress", false, "with --format "+formatNetworkPolicy+": also an egress policy per client")
	cmd.Flags().StringVar(&server, "server", "", "only clients that call this server, NAME.NAMESPACE (each with all its calls)")
	return cmd
}

// exportAll writes each DiscoveredIntents as a ClientIntents, and lists what they cannot express.
func exportAll(items []discoveryv1alpha1.DiscoveredIntents, apiVersion string) ([]any, []declared.Gap, error) {
	var objs []any
	var gaps []declared.Gap
	for i := range items {
		in, g := declared.FromDiscovered(&items[i])
		gaps = append(gaps, g...)
		if in == nil {
			continue
		}
		obj, err := declared.Write(in, apiVersion)
		if err != nil {
			return nil, nil, err
		}
		objs = append(objs, obj)
	}
	return objs, gaps, nil
}

// clusterVersion is the ClientIntents version the cluster prefers, or v2beta1
// when the CRD is not installed.
func (e *env) clusterVersion() (string, error) {
	dc, err := e.flags.ToDiscoveryClient()
	if err != nil {
		return "", err
	}
	groups, err := dc.ServerGroups()
	if err != nil {
		return "", fmt.Errorf("reading the cluster's API groups: %w", err)
	}
	return preferredVersion(groups)
}

// preferredVersion picks the group's preferred version when export can write it,
// else the newest served version it can write.
func preferredVersion(groups *metav1.APIGroupList) (string, error) {
	for _, g := range groups.Groups {
		if g.Name != declared.Group {
			continue
		}
		if slices.Contains(declared.Writable, g.PreferredVersion.GroupVersion) {
			return g.PreferredVersion.GroupVersion, nil
		}
		for i := len(declared.Writable) - 1; i >= 0; i-- {
			for _, v := range g.Versions {
				if v.GroupVersion == declared.Writable[i] {
					return v.GroupVersion, nil
				}
			}
		}
		return "", fmt.Errorf("the cluster serves ClientIntents only in %s, which export cannot write: use --api-version", g.PreferredVersion.GroupVersion)
	}
	return declared.V2beta1, nil
}

// calling keeps the clients that call server (NAME.NAMESPACE); all when empty.
func calling(items []discoveryv1alpha1.DiscoveredIntents, server string) []discoveryv1alpha1.DiscoveredIntents {
	if server == "" {
		return items
	}
	name, ns, _ := strings.Cut(server, ".")
	var out []discoveryv1alpha1.DiscoveredIntents
	for _, di := range items {
		want := ns
		if want == "" {
			want = di.Namespace
		}
		if di.Status.Find(want, name) != nil {
			out = append(out, di)
		}
	}
	return out
}

func reportGaps(e *env, gaps []declared.Gap) {
	if len(gaps) == 0 {
		return
	}
	_, _ = fmt.Fprintf(e.errOut, "warning: %d observed calls or parts of calls cannot be expressed in ClientIntents:\n", len(gaps))
	for _, g := range gaps {
		_, _ = fmt.Fprintf(e.errOut, "  %s\n", g)
	}
}

func writeObjects(e *env, objs []any, gaps []declared.Gap, format string) error {
	switch format {
	case formatJSON:
		items := []any{}
		for _, o := range objs {
			m, err := plain(o)
			if err != nil {
				return err
			}
			items = append(items, m)
		}
		raw, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": items}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(e.out, string(raw))
		return err
	case "yaml":
		if len(gaps) > 0 {
			_, _ = fmt.Fprintln(e.out, "# Observed but not expressible in ClientIntents, so not declared below:")
			for _, g := range gaps {
				_, _ = fmt.Fprintf(e.out, "#   %s\n", g)
			}
		}
		for _, o := range objs {
			m, err := plain(o)
			if err != nil {
				return err
			}
			raw, err := yaml.Marshal(m)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(e.out, "---\n%s", raw); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("--format %q: use yaml or json", format)
}

// plain is an object as a map, without the empty creationTimestamp ObjectMeta writes.
func plain(obj any) (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	return m, nil
}
