package declared

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// Item is one thing a client may do: call a server (Path empty), or use one method
// on one path of it. Client and Server are NAMESPACE/NAME; an internet server is
// "internet:" and a domain or IP.
type Item struct {
	Client, Server, Method, Path string
}

func (i Item) String() string {
	if i.Path == "" {
		return fmt.Sprintf("%s -> %s", i.Client, i.Server)
	}
	return fmt.Sprintf("%s -> %s %s %s", i.Client, i.Server, i.Method, i.Path)
}

// Set is a set of items.
type Set map[Item]bool

// Observed lists what DiscoveredIntents record, each item with when it was last seen.
func Observed(dis []discoveryv1alpha1.DiscoveredIntents) map[Item]*time.Time {
	out := map[Item]*time.Time{}
	for _, di := range dis {
		client := di.Namespace + "/" + di.Spec.Workload.Name
		for _, c := range di.Status.Calls {
			for _, item := range callItems(client, c) {
				out[item] = lastSeen(c, item)
			}
		}
	}
	return out
}

// CallItems lists the items of one observed call.
func CallItems(client string, c discoveryv1alpha1.Call) []Item { return callItems(client, c) }

func callItems(client string, c discoveryv1alpha1.Call) []Item {
	if c.Type == discoveryv1alpha1.CallInternet {
		var out []Item
		if c.Internet != nil {
			for _, d := range append(append([]string{}, c.Internet.Domains...), c.Internet.IPs...) {
				out = append(out, Item{Client: client, Server: "internet:" + d})
			}
		}
		if len(out) == 0 {
			out = append(out, Item{Client: client, Server: "internet:" + c.Name})
		}
		return out
	}
	server := c.Namespace + "/" + c.Name
	out := []Item{{Client: client, Server: server}}
	for _, p := range c.HTTP {
		for _, m := range p.Methods {
			out = append(out, Item{Client: client, Server: server, Method: m, Path: p.Path})
		}
	}
	return out
}

func lastSeen(c discoveryv1alpha1.Call, item Item) *time.Time {
	if item.Path != "" {
		for _, p := range c.HTTP {
			if p.Path == item.Path && p.LastSeen != nil {
				return &p.LastSeen.Time
			}
		}
	}
	if c.LastSeen != nil {
		return &c.LastSeen.Time
	}
	return nil
}

// Declarations lists what ClientIntents objects declare.
func Declarations(objs []*unstructured.Unstructured) (Set, error) {
	out := Set{}
	for _, o := range objs {
		if err := declare(o, out); err != nil {
			return nil, fmt.Errorf("ClientIntents %s/%s: %w", o.GetNamespace(), o.GetName(), err)
		}
	}
	return out, nil
}

func declare(o *unstructured.Unstructured, into Set) error {
	ns := o.GetNamespace()
	if ns == "" {
		ns = "default"
	}
	add := func(client, name, serverNS string, http []HTTPResource) {
		server := serverNS + "/" + name
		into[Item{Client: client, Server: server}] = true
		for _, h := range http {
			for _, m := range h.Methods {
				into[Item{Client: client, Server: server, Method: m, Path: h.Path}] = true
			}
		}
	}
	addInternet := func(client string, in *Internet) {
		for _, d := range append(append([]string{}, in.Domains...), in.IPs...) {
			into[Item{Client: client, Server: "internet:" + d}] = true
		}
	}
	switch o.GetAPIVersion() {
	case V1alpha3:
		ci := &V1alpha3Intents{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, ci); err != nil {
			return err
		}
		client := ns + "/" + ci.Spec.Service.Name
		for _, c := range ci.Spec.Calls {
			if c.Internet != nil {
				addInternet(client, c.Internet)
				continue
			}
			name, serverNS := parseServerRef(c.Name, ns)
			add(client, name, serverNS, c.HTTPResources)
		}
	case V2beta1:
		ci := &V2beta1Intents{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, ci); err != nil {
			return err
		}
		client := ns + "/" + ci.Spec.Workload.Name
		for _, t := range ci.Spec.Targets {
			switch {
			case t.Kubernetes != nil:
				name, serverNS := parseServerRef(t.Kubernetes.Name, ns)
				add(client, name, serverNS, t.Kubernetes.HTTP)
			case t.Service != nil:
				name, serverNS := parseServerRef(t.Service.Name, ns)
				add(client, name, serverNS, t.Service.HTTP)
			case t.Kafka != nil:
				name, serverNS := parseServerRef(t.Kafka.Name, ns)
				add(client, name, serverNS, nil)
			case t.Internet != nil:
				addInternet(client, t.Internet)
			}
		}
	default:
		return fmt.Errorf("api version %q is not one this tool reads (%s, %s)", o.GetAPIVersion(), V1alpha3, V2beta1)
	}
	return nil
}

// ParseYAML reads the ClientIntents documents of a YAML (or JSON) stream, skipping
// documents of other kinds.
func ParseYAML(r io.Reader) ([]*unstructured.Unstructured, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' { // a JSON array, as export --format json writes
		var items []map[string]any
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, err
		}
		for _, m := range items {
			if m["kind"] == Kind {
				out = append(out, &unstructured.Unstructured{Object: m})
			}
		}
		return out, nil
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := map[string]any{}
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if items, ok := obj["items"].([]any); ok { // a List, as kubectl get -o yaml writes
			for _, it := range items {
				if m, ok := it.(map[string]any); ok && m["kind"] == Kind {
					out = append(out, &unstructured.Unstructured{Object: m})
				}
			}
			continue
		}
		if obj["kind"] == Kind {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}

// Diff is what observation and declaration disagree on.
type Diff struct {
	// Undeclared: observed, not declared — would be blocked if the server were protected.
	Undeclared []Item
	// Unobserved: declared, not observed (since the window's start), with when it was
	// last seen, if ever.
	Unobserved []Unobserved
}

// Unobserved is a declared item and when it was last observed (nil: never).
type Unobserved struct {
	Item     Item
	LastSeen *time.Time
}

// Compare compares observed items (seen since `since`; zero for all time) with
// declared ones, for the clients in scope (all observed and declared clients when nil).
func Compare(observed map[Item]*time.Time, declared Set, since time.Time) Diff {
	var d Diff
	recent := func(t *time.Time) bool { return since.IsZero() || (t != nil && !t.Before(since)) }
	for item, seen := range observed {
		if recent(seen) && !declared[item] {
			d.Undeclared = append(d.Undeclared, item)
		}
	}
	for item := range declared {
		seen, ok := observed[item]
		if !ok || !recent(seen) {
			d.Unobserved = append(d.Unobserved, Unobserved{Item: item, LastSeen: seen})
		}
	}
	sort.Slice(d.Undeclared, func(i, j int) bool { return d.Undeclared[i].String() < d.Undeclared[j].String() })
	sort.Slice(d.Unobserved, func(i, j int) bool { return d.Unobserved[i].Item.String() < d.Unobserved[j].Item.String() })
	return d
}

// Empty reports whether observation and declaration agree.
func (d Diff) Empty() bool { return len(d.Undeclared) == 0 && len(d.Unobserved) == 0 }
