package policy

import (
	"cmp"
	"fmt"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// Generated is one policy and what a reviewer should know before applying it.
type Generated struct {
	Object client.Object
	Notes  []string
}

// Result is the policies generated from a map and what could not be expressed.
type Result struct {
	Policies []Generated
	Problems []string
}

func (r *Result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *Result) sort() {
	slices.SortFunc(r.Policies, func(a, b Generated) int {
		return cmp.Or(cmp.Compare(a.Object.GetNamespace(), b.Object.GetNamespace()), cmp.Compare(a.Object.GetName(), b.Object.GetName()))
	})
	slices.Sort(r.Problems)
	r.Problems = slices.Compact(r.Problems)
}

// edge is one client calling one in-cluster server.
type edge struct {
	client, server *Workload
	accounts       []string
	call           discoveryv1alpha1.Call
	ports          []int32 // the server pod's ports; none when not known
}

// edges finds both ends of every in-cluster call; ends the catalog does not know, or
// whose labels do not select them alone, are reported and left out.
func edges(items []discoveryv1alpha1.DiscoveredIntents, cat *Catalog, res *Result) []edge {
	var out []edge
	for i := range items {
		di := &items[i]
		from := selectable(cat, di.Namespace, di.Spec.Workload.Name, "client", res)
		for _, call := range di.Status.Calls {
			if call.Type == discoveryv1alpha1.CallInternet {
				continue
			}
			server := selectable(cat, call.Namespace, call.Name, "server", res)
			if from == nil || server == nil {
				continue
			}
			e := edge{client: from, server: server, accounts: di.Status.ServiceAccounts, call: call}
			if len(call.Ports) > 0 {
				e.ports = cat.podPorts(call)
			}
			out = append(out, e)
		}
	}
	return out
}

// selectable returns a workload that labels can select alone, or reports why not.
func selectable(cat *Catalog, namespace, name, role string, res *Result) *Workload {
	w := cat.Workload(namespace, name)
	switch {
	case w == nil:
		res.problem("%s %s.%s: no such workload in the cluster, so no labels to select it", role, name, namespace)
		return nil
	case w.Ambiguous != "":
		res.problem("%s %s.%s: not selected: %s", role, name, namespace, w.Ambiguous)
		return nil
	}
	return w
}

func uniqueSorted[T cmp.Ordered](s []T) []T {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
