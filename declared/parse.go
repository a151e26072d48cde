package declared

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	yamlv3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// Doc is a ClientIntents read from a file, with where it starts.
type Doc struct {
	Object *unstructured.Unstructured
	File   string
	Line   int
}

// Where is FILE:LINE.
func (d Doc) Where() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// yamlLine finds the line a YAML parser error names.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// ParseFile reads the ClientIntents of a YAML or JSON stream (documents, or Lists
// of items, as kubectl writes them), skipping other kinds. Errors read FILE:LINE: what.
func ParseFile(r io.Reader, file string) ([]Doc, error) {
	dec := yamlv3.NewDecoder(r)
	var out []Doc
	for {
		var node yamlv3.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			line, what := 0, err.Error()
			if m := yamlLine.FindStringSubmatch(what); m != nil {
				line, _ = strconv.Atoi(m[1])
				what = "YAML: " + what[len(m[0]):]
			}
			return nil, fmt.Errorf("%s:%d: %s", file, line, what)
		}
		docs, err := collect(&node, file)
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
}

// collect reads one YAML document: a ClientIntents, a List of them, or another kind.
func collect(node *yamlv3.Node, file string) ([]Doc, error) {
	if node.Kind == yamlv3.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	if node.Kind != yamlv3.MappingNode {
		if node.Kind == yamlv3.DocumentNode || (node.Kind == yamlv3.ScalarNode && node.Tag == "!!null") {
			return nil, nil // an empty document
		}
		return nil, fmt.Errorf("%s:%d: not an object", file, node.Line)
	}
	obj, err := toObject(node)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", file, node.Line, err)
	}
	if items := field(node, "items"); items != nil && items.Kind == yamlv3.SequenceNode {
		var out []Doc
		for _, item := range items.Content {
			docs, err := collect(item, file)
			if err != nil {
				return nil, err
			}
			out = append(out, docs...)
		}
		return out, nil
	}
	if obj["kind"] != Kind {
		return nil, nil
	}
	return []Doc{{Object: &unstructured.Unstructured{Object: obj}, File: file, Line: node.Line}}, nil
}

func field(m *yamlv3.Node, key string) *yamlv3.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// toObject turns a YAML mapping into the JSON-typed map Kubernetes objects use.
func toObject(node *yamlv3.Node) (map[string]any, error) {
	raw, err := yamlv3.Marshal(node)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if err := utiljson.Unmarshal(js, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// ParseYAML reads the ClientIntents of a YAML or JSON stream.
func ParseYAML(r io.Reader) ([]*unstructured.Unstructured, error) {
	docs, err := ParseFile(r, "<stdin>")
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, len(docs))
	for i, d := range docs {
		out[i] = d.Object
	}
	return out, nil
}
