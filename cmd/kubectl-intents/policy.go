package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/policy"
)

// Export formats that write policies rather than ClientIntents.
const (
	formatNetworkPolicy       = "networkpolicy"
	formatAuthorizationPolicy = "authorizationpolicy"
)

func isPolicyFormat(format string) bool {
	return format == formatNetworkPolicy || format == formatAuthorizationPolicy
}

// policyClient reads the cluster with Istio's security types known too.
func (e *env) policyClient() (client.Client, error) {
	cfg, err := e.flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	s := scheme()
	if err := securityv1.AddToScheme(s); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: s})
}

// catalog loads the workloads of every namespace the map names.
func (e *env) catalog(ctx context.Context, items []discoveryv1alpha1.DiscoveredIntents) (*policy.Catalog, error) {
	var namespaces []string
	for _, di := range items {
		namespaces = append(namespaces, di.Namespace)
		for _, c := range di.Status.Calls {
			if c.Namespace != "" {
				namespaces = append(namespaces, c.Namespace)
			}
		}
	}
	slices.Sort(namespaces)
	c, err := e.policyClient()
	if err != nil {
		return nil, err
	}
	return policy.LoadCatalog(ctx, c, slices.Compact(namespaces))
}

// exportPolicies writes NetworkPolicies (and with egress, per-client egress policies)
// or AuthorizationPolicies; what cannot be expressed goes to standard error.
func (e *env) exportPolicies(ctx context.Context, items []discoveryv1alpha1.DiscoveredIntents, format string, egress bool) error {
	cat, err := e.catalog(ctx, items)
	if err != nil {
		return err
	}
	var res policy.Result
	switch format {
	case formatNetworkPolicy:
		res = policy.NetworkPolicies(items, cat)
		if egress {
			eg := policy.EgressPolicies(items, cat)
			res.Policies = append(res.Policies, eg.Policies...)
			res.Problems = append(res.Problems, eg.Problems...)
		}
	case formatAuthorizationPolicy:
		if egress {
			return fmt.Errorf("--egress goes with --format %s", formatNetworkPolicy)
		}
		res = policy.AuthorizationPolicies(items, cat)
	}
	for _, g := range res.Policies {
		m, err := plain(g.Object)
		if err != nil {
			return err
		}
		if status, ok := m["status"].(map[string]any); ok && len(status) == 0 {
			delete(m, "status")
		}
		raw, err := yaml.Marshal(m)
		if err != nil {
			return err
		}
		_, _ = fmt.Fprintln(e.out, "---")
		for _, n := range g.Notes {
			_, _ = fmt.Fprintf(e.out, "# review: %s\n", n)
		}
		_, _ = e.out.Write(raw)
	}
	slices.Sort(res.Problems)
	for _, p := range slices.Compact(res.Problems) {
		_, _ = fmt.Fprintln(e.errOut, "not generated:", p)
	}
	return nil
}

func previewCommand(e *env) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "preview",
		Short: "List the observed calls that NetworkPolicies and AuthorizationPolicies would deny",
		Long: "Policies come from -f FILE|DIR or, without -f, from the cluster.\n" +
			"Exit code: 0 when no observed call would be denied, 1 otherwise, 2 on error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			items, err := e.discovered(cmd.Context())
			if err != nil {
				return err
			}
			pols, err := e.policies(cmd.Context(), file)
			if err != nil {
				return err
			}
			cat, err := e.catalog(cmd.Context(), items)
			if err != nil {
				return err
			}
			flows := policy.Flows(items, cat)
			denials := policy.Preview(flows, pols, cat)
			_, _ = fmt.Fprintf(e.out, "%d observed calls, %d NetworkPolicies, %d AuthorizationPolicies: %d would be denied\n",
				len(flows), len(pols.Network), len(pols.Authorization), len(denials))
			for _, d := range denials {
				_, _ = fmt.Fprintf(e.out, "  - %s\n", d)
			}
			if len(denials) > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "policy YAML file or directory; the cluster's when empty")
	return cmd
}

func (e *env) policies(ctx context.Context, file string) (*policy.Policies, error) {
	ns, err := e.namespace()
	if err != nil {
		return nil, err
	}
	if file != "" {
		pols, err := policy.ReadFiles(file)
		if err != nil {
			return nil, err
		}
		if ns == "" {
			ns = "default"
		}
		pols.DefaultNamespace(ns)
		return pols, nil
	}
	c, err := e.policyClient()
	if err != nil {
		return nil, err
	}
	pols := &policy.Policies{}
	// Policies anywhere may guard a call in scope: read all namespaces.
	nps := &networkingv1.NetworkPolicyList{}
	if err := c.List(ctx, nps); err != nil {
		return nil, fmt.Errorf("listing NetworkPolicies: %w", err)
	}
	pols.Network = nps.Items
	aps := &securityv1.AuthorizationPolicyList{}
	switch err := c.List(ctx, aps); {
	case meta.IsNoMatchError(err):
		// Istio is not installed: no AuthorizationPolicies.
	case err != nil:
		return nil, fmt.Errorf("listing AuthorizationPolicies: %w", err)
	default:
		pols.Authorization = aps.Items
	}
	return pols, nil
}

// policyFormats names the export formats, for --format's help.
var policyFormats = strings.Join([]string{formatNetworkPolicy, formatAuthorizationPolicy}, ", ")
