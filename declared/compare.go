package declared

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// Item is one thing a client may do: reach a server (the rest empty), use one HTTP
// method on one path of it, one operation on one Kafka topic, or one port of an
// internet destination. Client is NAMESPACE/NAME; Server is NAMESPACE/NAME for a
// workload, "service:NAMESPACE/NAME" for a Service and "internet:" and a domain or IP.
type Item struct {
	Client, Server   string
	Method, Path     string
	Topic, Operation string
	Port             int32
}

func (i Item) String() string {
	s := fmt.Sprintf("%s -> %s", i.Client, i.Server)
	switch {
	case i.Path != "":
		s += fmt.Sprintf(" %s %s", i.Method, i.Path)
	case i.Topic != "":
		s += fmt.Sprintf(" topic %s %s", i.Topic, i.Operation)
	case i.Port != 0:
		s += fmt.Sprintf(" port %d", i.Port)
	}
	return s
}

// Set is a set of items.
type Set map[Item]bool

// Items lists what a target allows a client (NAMESPACE/NAME).
func (t Target) Items(client string) []Item {
	if t.Type == TargetInternet {
		hosts := append(append([]string{}, t.Internet.Domains...), t.Internet.IPs...)
		out := make([]Item, 0, len(hosts)*(1+len(t.Internet.Ports)))
		for _, d := range hosts {
			server := "internet:" + d
			out = append(out, Item{Client: client, Server: server})
			for _, p := range t.Internet.Ports {
				out = append(out, Item{Client: client, Server: server, Port: p})
			}
		}
		return out
	}
	server := serverKey(&t)
	out := []Item{{Client: client, Server: server}}
	for _, h := range t.HTTP {
		for _, m := range h.Methods {
			out = append(out, Item{Client: client, Server: server, Method: m, Path: h.Path})
		}
	}
	for _, topic := range t.Topics {
		for _, op := range topic.Operations {
			out = append(out, Item{Client: client, Server: server, Topic: topic.Name, Operation: op})
		}
	}
	return out
}

// Items lists what an Intent allows.
func (in *Intent) Items() []Item {
	client := in.Namespace + "/" + in.Workload.Name
	out := make([]Item, 0, len(in.Targets))
	for _, t := range in.Targets {
		out = append(out, t.Items(client)...)
	}
	return out
}

// Observed lists the declarable items DiscoveredIntents record, each with when it
// was last seen; Gaps lists the rest.
func Observed(dis []discoveryv1alpha1.DiscoveredIntents) map[Item]*time.Time {
	out := map[Item]*time.Time{}
	for _, di := range dis {
		if strings.Contains(di.Spec.Workload.Name, ".") {
			continue
		}
		client := di.Namespace + "/" + di.Spec.Workload.Name
		for _, c := range di.Status.Calls {
			if t, _ := targetOf(client, c); t != nil {
				for _, item := range t.Items(client) {
					out[item] = lastSeen(c, item)
				}
			}
		}
	}
	return out
}

// Gaps lists what DiscoveredIntents record that ClientIntents cannot express.
func Gaps(dis []discoveryv1alpha1.DiscoveredIntents) []Gap {
	var out []Gap
	for i := range dis {
		_, gaps := FromDiscovered(&dis[i])
		out = append(out, gaps...)
	}
	return out
}

// CallItems lists the items of one observed call; a call ClientIntents cannot
// express is its bare server, which no declaration holds.
func CallItems(client string, c discoveryv1alpha1.Call) []Item {
	if t, _ := targetOf(client, c); t != nil {
		return t.Items(client)
	}
	return []Item{{Client: client, Server: c.Namespace + "/" + c.Name}}
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

// Declarations lists what ClientIntents objects read from an API server declare.
func Declarations(objs []*unstructured.Unstructured) (Set, error) {
	out := Set{}
	for _, o := range objs {
		in, err := read(o, "default", false)
		if err != nil {
			return nil, fmt.Errorf("ClientIntents %s/%s: %w", o.GetNamespace(), o.GetName(), err)
		}
		out.Add(in)
	}
	return out, nil
}

// Add adds what an Intent declares.
func (s Set) Add(in *Intent) {
	for _, item := range in.Items() {
		s[item] = true
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
