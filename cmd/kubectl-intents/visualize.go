package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-graphviz"
	"github.com/spf13/cobra"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

func visualizeCommand(e *env) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "visualize",
		Short: "Draw the call graph: Graphviz DOT, SVG or PNG (-o graph.png)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			items, err := e.discovered(cmd.Context())
			if err != nil {
				return err
			}
			if format == "" {
				format = strings.TrimPrefix(filepath.Ext(output), ".")
			}
			if format == "" {
				format = "dot"
			}
			out, err := render(cmd.Context(), dot(items), format)
			if err != nil {
				return err
			}
			if output == "" {
				_, err = e.out.Write(out)
				return err
			}
			return os.WriteFile(output, out, 0o644)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (its extension picks the format); standard output when empty")
	cmd.Flags().StringVar(&format, "format", "", "dot, svg or png")
	return cmd
}

// dot writes the call graph: a cluster per namespace, an edge per call, HTTP edges
// labelled with their paths.
func dot(items []discoveryv1alpha1.DiscoveredIntents) string {
	nodes := map[string]map[string]bool{} // namespace → node names
	var edges []string
	node := func(ns, name string) string {
		if nodes[ns] == nil {
			nodes[ns] = map[string]bool{}
		}
		nodes[ns][name] = true
		return fmt.Sprintf("%q", ns+"/"+name)
	}
	for _, di := range items {
		from := node(di.Namespace, di.Spec.Workload.Name)
		for _, c := range di.Status.Calls {
			ns := c.Namespace
			if c.Type == discoveryv1alpha1.CallInternet {
				ns = "internet"
			}
			to := node(ns, c.Name)
			var label []string
			for _, p := range c.HTTP {
				label = append(label, strings.Join(p.Methods, ",")+" "+p.Path)
			}
			attrs := ""
			if len(label) > 0 {
				attrs = fmt.Sprintf(" [label=%q]", strings.Join(label, "\\n"))
			}
			edges = append(edges, fmt.Sprintf("  %s -> %s%s;", from, to, attrs))
		}
	}
	var b strings.Builder
	b.WriteString("digraph intents {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n")
	namespaces := make([]string, 0, len(nodes))
	for ns := range nodes {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	for i, ns := range namespaces {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%q;\n", i, ns)
		names := make([]string, 0, len(nodes[ns]))
		for n := range nodes[ns] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "    %q [label=%q];\n", ns+"/"+n, n)
		}
		b.WriteString("  }\n")
	}
	sort.Strings(edges)
	b.WriteString(strings.Join(edges, "\n"))
	b.WriteString("\n}\n")
	return b.String()
}

// render lays the DOT out with Graphviz (compiled to WebAssembly, no cgo) unless DOT is asked for.
func render(ctx context.Context, src, format string) ([]byte, error) {
	if format == "dot" {
		return []byte(src), nil
	}
	var f graphviz.Format
	switch format {
	case "svg":
		f = graphviz.SVG
	case "png":
		f = graphviz.PNG
	default:
		return nil, fmt.Errorf("format %q: use dot, svg or png", format)
	}
	g, err := graphviz.New(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = g.Close() }()
	graph, err := graphviz.ParseBytes([]byte(src))
	if err != nil {
		return nil, err
	}
	defer func() { _ = graph.Close() }()
	var buf bytes.Buffer
	if err := g.Render(ctx, graph, f, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
