package declared

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// TargetType is what a target names, as ClientIntents v2 call its fields.
type TargetType string

// Target types.
const (
	TargetKubernetes TargetType = "kubernetes" // a workload
	TargetService    TargetType = "service"    // a Kubernetes Service (that selects no pods)
	TargetKafka      TargetType = "kafka"      // a Kafka server, with topics
	TargetInternet   TargetType = "internet"   // domains and IPs outside the cluster
)

// Intent is one client's declaration, independent of the ClientIntents version.
type Intent struct {
	Name      string // the object's name; the workload's when empty
	Namespace string
	Workload  Workload
	Targets   []Target
}

// Target is one server a client may call, with what it may do there.
type Target struct {
	Type            TargetType
	Name, Namespace string // the server; empty for internet targets
	Kind            string // the server workload's kind, when known
	HTTP            []HTTPResource
	Topics          []KafkaTopic
	Internet        *Internet
}

// Gap is something observed that a ClientIntents cannot express, or expresses
// only in part.
type Gap struct {
	Client string // NAMESPACE/NAME
	Server string // as Item.Server; empty when it concerns the whole client
	What   string
}

func (g Gap) String() string {
	if g.Server == "" {
		return g.Client + ": " + g.What
	}
	return g.Client + " -> " + g.Server + ": " + g.What
}

// Methods ClientIntents accept (Otterize's enum); others (HEAD) cannot be declared.
var methods = []string{"GET", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT"}

// FromDiscovered models what a DiscoveredIntents observed as the targets a
// ClientIntents declares, and says what it cannot declare. Intent is nil when the
// client itself cannot have a ClientIntents.
func FromDiscovered(di *discoveryv1alpha1.DiscoveredIntents) (*Intent, []Gap) {
	client := di.Namespace + "/" + di.Spec.Workload.Name
	if strings.Contains(di.Spec.Workload.Name, ".") {
		return nil, []Gap{{Client: client, What: fmt.Sprintf(
			"workload name contains '.', which ClientIntents forbid: its %d calls are not exported", len(di.Status.Calls))}}
	}
	// Named as the DiscoveredIntents, which tells apart two kinds of one name.
	in := &Intent{Name: di.Name, Namespace: di.Namespace, Workload: Workload{Name: di.Spec.Workload.Name, Kind: string(di.Spec.Workload.Kind)}}
	var gaps []Gap
	for _, c := range di.Status.Calls {
		t, g := targetOf(client, c)
		gaps = append(gaps, g...)
		if t != nil {
			in.Targets = append(in.Targets, *t)
		}
	}
	return in, gaps
}

// targetOf models one observed call; nil when it cannot be declared.
func targetOf(client string, c discoveryv1alpha1.Call) (*Target, []Gap) {
	if c.Type == discoveryv1alpha1.CallInternet {
		return &Target{Type: TargetInternet, Internet: internetOf(c)}, nil
	}
	t := &Target{Type: TargetKubernetes, Name: c.Name, Namespace: c.Namespace, Kind: string(c.Kind)}
	switch {
	case c.Type == discoveryv1alpha1.CallKafka:
		t.Type, t.Kind = TargetKafka, ""
	case IsService(c):
		t.Type = TargetService
	}
	server := serverKey(t)
	if strings.Contains(c.Name, ".") {
		return nil, []Gap{{Client: client, Server: server, What: "server name contains '.', which ClientIntents read as NAME.NAMESPACE: not exported"}}
	}
	var gaps []Gap
	for _, p := range c.HTTP {
		var ok []string
		for _, m := range p.Methods {
			if slices.Contains(methods, m) {
				ok = append(ok, m)
			} else {
				gaps = append(gaps, Gap{Client: client, Server: server, What: fmt.Sprintf("%s %s: ClientIntents have no method %s: not exported", m, p.Path, m)})
			}
		}
		if len(ok) > 0 {
			t.HTTP = append(t.HTTP, HTTPResource{Path: p.Path, Methods: ok})
		}
	}
	if c.Truncated {
		gaps = append(gaps, Gap{Client: client, Server: server, What: fmt.Sprintf(
			"truncated: more paths were called than recorded; only the %d recorded are exported", len(c.HTTP))})
	}
	for _, topic := range c.Kafka {
		ops, unmapped := kafkaOperations(topic.Operations)
		for _, op := range unmapped {
			gaps = append(gaps, Gap{Client: client, Server: server, What: fmt.Sprintf("topic %s: ClientIntents have no operation %s: not exported", topic.Name, op)})
		}
		if len(ops) > 0 {
			t.Topics = append(t.Topics, KafkaTopic{Name: topic.Name, Operations: ops})
		}
	}
	return t, gaps
}

// IsService tells a call whose server is a Service that selects no pods: the
// resolver names the Service as the server, with no workload kind.
func IsService(c discoveryv1alpha1.Call) bool {
	return c.Type != discoveryv1alpha1.CallInternet && c.Kind == "" && slices.Contains(c.Services, c.Name)
}

func internetOf(c discoveryv1alpha1.Call) *Internet {
	in := &Internet{Ports: c.Ports}
	if c.Internet != nil {
		in.Domains, in.IPs = c.Internet.Domains, c.Internet.IPs
	}
	if len(in.Domains) == 0 && len(in.IPs) == 0 {
		if _, err := netip.ParseAddr(c.Name); err == nil {
			in.IPs = []string{c.Name}
		} else {
			in.Domains = []string{c.Name}
		}
	}
	return in
}

// serverKey names a non-internet target's server in an Item.
func serverKey(t *Target) string {
	key := t.Namespace + "/" + t.Name
	if t.Type == TargetService {
		return "service:" + key
	}
	return key
}
