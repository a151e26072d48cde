package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	networkingv1 "k8s.io/api/networking/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Policies is a set of policies to preview.
type Policies struct {
	Network       []networkingv1.NetworkPolicy
	Authorization []*securityv1.AuthorizationPolicy
	// Skipped counts documents of other kinds.
	Skipped int
}

// Denial is an observed call that the policies would deny, and why.
type Denial struct {
	Flow   Flow
	Reason string
}

func (d Denial) String() string { return d.Flow.String() + ": " + d.Reason }

// Preview lists the observed flows the policies would deny, in flow order.
func Preview(flows []Flow, pols *Policies, cat *Catalog) []Denial {
	var out []Denial
	for _, f := range flows {
		if reason := verdict(f, pols, cat); reason != "" {
			out = append(out, Denial{Flow: f, Reason: reason})
		}
	}
	return out
}

// verdict returns why a flow is denied, or "" when every policy lets it through.
func verdict(f Flow, pols *Policies, cat *Catalog) string {
	client := known(cat, f.ClientNamespace, f.Client)
	var server *Workload
	if !f.Internet() {
		server = known(cat, f.ServerNamespace, f.Server)
	}
	if r := egressVerdict(f, client, server, pols.Network, cat); r != "" {
		return r
	}
	if server == nil {
		return ""
	}
	if r := ingressVerdict(f, client, server, pols.Network, cat); r != "" {
		return r
	}
	return authorizationVerdict(f, server, pols.Authorization)
}

// known returns the catalog's workload, or one whose labels are unknown: any policy of
// its namespace may then select it.
func known(cat *Catalog, namespace, name string) *Workload {
	if w := cat.Workload(namespace, name); w != nil {
		return w
	}
	return &Workload{Namespace: namespace, Name: name, Unknown: true}
}

// ParsePolicies reads NetworkPolicies and AuthorizationPolicies from YAML or JSON
// documents; other kinds are counted in Skipped.
func ParsePolicies(r io.Reader, into *Policies) error {
	docs := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := parseDocument(doc, into); err != nil {
			return err
		}
	}
}

func parseDocument(doc []byte, into *Policies) error {
	var head struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return fmt.Errorf("not a Kubernetes object: %w", err)
	}
	switch {
	case head.Kind == "" && len(bytes.TrimSpace(stripComments(doc))) == 0:
		return nil
	case head.Kind == "NetworkPolicy" && head.APIVersion == "networking.k8s.io/v1":
		var np networkingv1.NetworkPolicy
		if err := yaml.UnmarshalStrict(doc, &np); err != nil {
			return fmt.Errorf("NetworkPolicy: %w", err)
		}
		into.Network = append(into.Network, np)
	case head.Kind == "AuthorizationPolicy" && strings.HasPrefix(head.APIVersion, "security.istio.io/"):
		ap := &securityv1.AuthorizationPolicy{}
		if err := yaml.Unmarshal(doc, ap); err != nil {
			return fmt.Errorf("AuthorizationPolicy: %w", err)
		}
		into.Authorization = append(into.Authorization, ap)
	default:
		into.Skipped++
	}
	return nil
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
		}
	}
	return out
}
