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
	"github.com/goccy/go-graphviz/gvc"
	"github.com/spf13/cobra"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/declared"
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

// dot writes the call graph: a box per workload, grouped by namespace; Services,
// Kafka servers and internet destinations drawn apart; an arrow per call, labelled
// with its paths, topics or ports.
func dot(items []discoveryv1alpha1.DiscoveredIntents) string {
	g := graph{nodes: map[string]map[string]string{}}
	for _, di := range items {
		from := g.node(di.Namespace, di.Spec.Workload.Name, styleWorkload)
		for _, c := range di.Status.Calls {
			to := g.node(serverNode(c))
			g.edges = append(g.edges, fmt.Sprintf("  %s -> %s [label=%s];", from, to, quote(edgeLabel(c))))
		}
	}
	return g.String()
}

// Node styles: what a server is, at a glance.
const (
	styleWorkload = `shape=box, style="rounded,filled", fillcolor="#dbe9f9", color="#2f5f98"`
	styleService  = `shape=box, style="rounded,dashed,filled", fillcolor="#eef3f8", color="#2f5f98"`
	styleKafka    = `shape=cylinder, style=filled, fillcolor="#dff2e3", color="#2e7d32"`
	styleInternet = `shape=ellipse, style=filled, fillcolor="#fdebd3", color="#b36b00"`
)

// internetCluster holds the destinations outside the cluster.
const internetCluster = "internet"

func serverNode(c discoveryv1alpha1.Call) (namespace, name, style string) {
	switch {
	case c.Type == discoveryv1alpha1.CallInternet:
		return internetCluster, c.Name, styleInternet
	case c.Type == discoveryv1alpha1.CallKafka:
		return c.Namespace, c.Name, styleKafka
	case declared.IsService(c):
		return c.Namespace, c.Name, styleService
	}
	return c.Namespace, c.Name, styleWorkload
}

// maxLabelLines keeps an edge readable when a call has many paths.
const maxLabelLines = 6

func edgeLabel(c discoveryv1alpha1.Call) []string {
	var lines []string
	for _, p := range c.HTTP {
		lines = append(lines, strings.Join(p.Methods, ",")+" "+p.Path)
	}
	for _, t := range c.Kafka {
		lines = append(lines, "topic "+t.Name+": "+strings.Join(t.Operations, ","))
	}
	if len(lines) > maxLabelLines {
		lines = append(lines[:maxLabelLines-1], fmt.Sprintf("… %d more", len(lines)-maxLabelLines+1))
	}
	if c.Truncated {
		lines = append(lines, "(more paths not recorded)")
	}
	if len(lines) == 0 && len(c.Ports) > 0 {
		ports := make([]string, len(c.Ports))
		for i, p := range c.Ports {
			ports[i] = fmt.Sprint(p)
		}
		lines = append(lines, string(c.Type)+" "+strings.Join(ports, ","))
	}
	return lines
}

// quote writes lines as a DOT string, each line centred.
func quote(lines []string) string {
	esc := make([]string, len(lines))
	for i, l := range lines {
		esc[i] = strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(l)
	}
	return `"` + strings.Join(esc, `\n`) + `"`
}

type graph struct {
	nodes map[string]map[string]string // namespace → name → style
	edges []string
}

func (g *graph) node(namespace, name, style string) string {
	if g.nodes[namespace] == nil {
		g.nodes[namespace] = map[string]string{}
	}
	if old, ok := g.nodes[namespace][name]; !ok || old == styleWorkload {
		g.nodes[namespace][name] = style
	}
	return quote([]string{namespace + "/" + name})
}

func (g *graph) String() string {
	var b strings.Builder
	b.WriteString("digraph intents {\n")
	b.WriteString("  rankdir=LR; nodesep=0.4; ranksep=1.1; fontname=\"Helvetica\"; bgcolor=white;\n")
	b.WriteString("  node [fontname=\"Helvetica\", fontsize=12, margin=\"0.2,0.08\"];\n")
	b.WriteString("  edge [fontname=\"Helvetica\", fontsize=10, color=\"#555555\", fontcolor=\"#333333\", arrowsize=0.8];\n")
	namespaces := make([]string, 0, len(g.nodes))
	for ns := range g.nodes {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	for i, ns := range namespaces {
		title, style := "namespace "+ns, `style="rounded,filled", fillcolor="#f6f7f9", color="#9aa5b1"`
		if ns == internetCluster {
			title, style = "internet", `style="rounded,filled", fillcolor="#fffaf2", color="#d9a441"`
		}
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    graph [label=%s, %s, fontsize=13];\n", i, quote([]string{title}), style)
		names := make([]string, 0, len(g.nodes[ns]))
		for n := range g.nodes[ns] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "    %s [label=%s, %s];\n", quote([]string{ns + "/" + n}), quote([]string{n}), g.nodes[ns][n])
		}
		b.WriteString("  }\n")
	}
	sort.Strings(g.edges)
	for _, e := range g.edges {
		b.WriteString(e + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// render lays the DOT out with Graphviz (compiled to WebAssembly, no cgo) unless DOT is asked for.
func render(ctx context.Context, src, format string) ([]byte, error) {
	var (
		g   *graphviz.Graphviz
		f   graphviz.Format
		err error
	)
	switch format {
	case "dot":
		return []byte(src), nil
	case "svg":
		f = graphviz.SVG
		g, err = graphviz.New(ctx)
	case "png":
		f = graphviz.PNG
		g, err = pngGraphviz(ctx)
	default:
		return nil, fmt.Errorf("format %q: use dot, svg or png", format)
	}
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

// pngGraphviz renders PNG with pngShapes, which draws as Graphviz's own renderers do.
func pngGraphviz(ctx context.Context) (*graphviz.Graphviz, error) {
	engine := pngShapes{&gvc.ImageRenderer{DefaultRenderEngine: new(gvc.DefaultRenderEngine)}}
	render, err := gvc.NewRenderPlugin(ctx, "png", engine)
	if err != nil {
		return nil, err
	}
	device, err := gvc.PNGDevicePlugin(ctx)
	if err != nil {
		return nil, err
	}
	return graphviz.NewWithPlugins(ctx, render, device)
}

// pngShapes mends the library's PNG renderer: it filled every curve, edges too
// (black blobs), and never outlined a filled shape (no boxes). A filled shape is
// filled, then outlined with the pen; an edge is a line.
type pngShapes struct{ *gvc.ImageRenderer }

func (p pngShapes) BezierCurve(ctx context.Context, job *gvc.Job, a []*gvc.PointFloat, filled bool) error {
	if job.Object().Type() == gvc.EdgeObjectType {
		return p.ImageRenderer.BezierCurve(ctx, job, a, false)
	}
	return outlined(filled, func(fill bool) error { return p.ImageRenderer.BezierCurve(ctx, job, a, fill) })
}

func (p pngShapes) Polygon(ctx context.Context, job *gvc.Job, a []*gvc.PointFloat, filled bool) error {
	return outlined(filled, func(fill bool) error { return p.ImageRenderer.Polygon(ctx, job, a, fill) })
}

func (p pngShapes) Ellipse(ctx context.Context, job *gvc.Job, a []*gvc.PointFloat, filled bool) error {
	return outlined(filled, func(fill bool) error { return p.ImageRenderer.Ellipse(ctx, job, a, fill) })
}

func outlined(filled bool, draw func(fill bool) error) error {
	if filled {
		if err := draw(true); err != nil {
			return err
		}
	}
	return draw(false)
}
