package main

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVisualize(t *testing.T) {
	seedGitOps(t, "graph")
	dot, code := kubectlIntents(t, "", "visualize", "-n", "graph")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		`label="namespace graph"`, `label="internet"`, `"graph/web" -> "graph/api" [label="HEAD /healthz\nGET,HEAD,POST /orders"]`,
		`"graph/orders" -> "graph-infra/kafka" [label="topic orders: Describe,DescribeTokens,Write\ntopic payments: Read"]`,
		`"graph-infra/kafka" [label="kafka", shape=cylinder`, `"internet/api.stripe.com" [label="api.stripe.com", shape=ellipse`,
		`"graph-infra/legacy-db" [label="legacy-db", shape=box, style="rounded,dashed,filled"`,
	} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %s:\n%s", want, dot)
		}
	}
	if strings.Contains(dot, `\\n`) {
		t.Errorf("DOT labels hold a literal \\n:\n%s", dot)
	}

	dir := t.TempDir()
	if _, code := kubectlIntents(t, "", "visualize", "-n", "graph", "-o", filepath.Join(dir, "graph.svg")); code != 0 {
		t.Fatal("svg")
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "graph.svg"))
	nodes, edges, clusters, texts := svgParts(t, raw)
	// web, web.v2, api, catalog, payments.v1, orders; cache, kafka, legacy-db; api.stripe.com
	if nodes != 10 || edges != 8 || clusters != 3 {
		t.Errorf("SVG has %d nodes, %d edges, %d namespace boxes; want 10, 8, 3", nodes, edges, clusters)
	}
	for _, want := range []string{"web.v2", "namespace graph-infra", "HEAD /healthz", "GET,HEAD,POST /orders", "(more paths not recorded)"} {
		if !texts[want] {
			t.Errorf("SVG has no text %q", want)
		}
	}
	for text := range texts {
		if strings.Contains(text, `\n`) {
			t.Errorf("SVG text holds a literal \\n: %q", text)
		}
	}

	if _, code := kubectlIntents(t, "", "visualize", "-n", "graph", "-o", filepath.Join(dir, "graph.png")); code != 0 {
		t.Fatal("png")
	}
	f, _ := os.Open(filepath.Join(dir, "graph.png"))
	defer func() { _ = f.Close() }()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 400 || b.Dy() < 200 {
		t.Errorf("a %dx%d image cannot hold the graph", b.Dx(), b.Dy())
	}
	var dark, light, colored int
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			switch {
			case r < 0x4000 && g < 0x4000 && bl < 0x4000:
				dark++
			case r > 0xe000 && g > 0xe000 && bl > 0xe000:
				light++
			default:
				colored++
			}
		}
	}
	total := b.Dx() * b.Dy()
	if dark*10 > total || light*2 < total || colored*50 < total {
		t.Errorf("the PNG is not a light drawing with coloured boxes: %d dark, %d light, %d coloured of %d pixels", dark, light, colored, total)
	}
}

// svgParts counts Graphviz's node, edge and cluster groups and collects the texts.
func svgParts(t *testing.T, raw []byte) (nodes, edges, clusters int, texts map[string]bool) {
	t.Helper()
	texts = map[string]bool{}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	inText := false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch el := tok.(type) {
		case xml.StartElement:
			inText = el.Name.Local == "text"
			if el.Name.Local != "g" {
				continue
			}
			for _, a := range el.Attr {
				if a.Name.Local == "class" {
					switch a.Value {
					case "node":
						nodes++
					case "edge":
						edges++
					case "cluster":
						clusters++
					}
				}
			}
		case xml.CharData:
			if inText {
				texts[strings.TrimSpace(string(el))] = true
			}
		case xml.EndElement:
			inText = false
		}
	}
	if nodes == 0 {
		t.Errorf("no SVG nodes in:\n%s", raw)
	}
	return nodes, edges, clusters, texts
}
