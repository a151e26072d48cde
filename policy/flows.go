package policy

import (
	"fmt"
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// Flow is one observed call as policies see it: who, to whom, on which pod port, and
// for HTTP which path and method.
type Flow struct {
	ClientNamespace, Client string
	Accounts                []string // the client's ServiceAccounts
	ServerNamespace, Server string   // ServerNamespace is empty for the internet
	IP                      netip.Addr
	Port                    int32 // the server pod's port; 0 when unknown
	HTTP                    bool
	Path, Method            string // empty when unknown
}

// Internet reports whether the server is outside the cluster.
func (f Flow) Internet() bool { return f.ServerNamespace == "" }

func (f Flow) String() string {
	to := f.Server + "." + f.ServerNamespace
	if f.Internet() {
		to = f.Server
	}
	if f.Internet() && f.IP.IsValid() && f.IP.String() != f.Server {
		to += " (" + f.IP.String() + ")"
	}
	s := fmt.Sprintf("%s.%s -> %s", f.Client, f.ClientNamespace, to)
	if f.Port != 0 {
		s += ":" + strconv.Itoa(int(f.Port))
	}
	if f.Method != "" || f.Path != "" {
		s += " " + f.Method + " " + f.Path
	}
	return s
}

// Flows lists every observed call of the map, one per port and per path and method.
func Flows(items []discoveryv1alpha1.DiscoveredIntents, cat *Catalog) []Flow {
	var out []Flow
	for i := range items {
		di := &items[i]
		for _, call := range di.Status.Calls {
			base := Flow{ClientNamespace: di.Namespace, Client: di.Spec.Workload.Name, Accounts: di.Status.ServiceAccounts,
				ServerNamespace: call.Namespace, Server: call.Name}
			if call.Type == discoveryv1alpha1.CallInternet {
				out = append(out, internetFlows(base, call)...)
				continue
			}
			for _, port := range cat.podPorts(call) {
				f := base
				f.Port = port
				out = append(out, httpFlows(f, call)...)
			}
		}
	}
	return out
}

func internetFlows(base Flow, call discoveryv1alpha1.Call) []Flow {
	var targets []Flow
	if call.Internet != nil {
		for _, d := range call.Internet.Domains {
			f := base
			f.Server = d
			if len(call.Internet.ResolvedIPs) == 0 {
				targets = append(targets, f)
			}
			for _, ip := range call.Internet.ResolvedIPs {
				f.IP, _ = netip.ParseAddr(ip)
				targets = append(targets, f)
			}
		}
		for _, ip := range call.Internet.IPs {
			f := base
			f.Server = ip
			f.IP, _ = netip.ParseAddr(ip)
			targets = append(targets, f)
		}
	}
	if len(targets) == 0 {
		targets = []Flow{base}
	}
	out := make([]Flow, 0, len(targets)*max(1, len(call.Ports)))
	for _, t := range targets {
		for _, p := range portsOrUnknown(call.Ports) {
			f := t
			f.Port = p
			out = append(out, f)
		}
	}
	return out
}

func httpFlows(f Flow, call discoveryv1alpha1.Call) []Flow {
	if call.Type != discoveryv1alpha1.CallHTTP {
		return []Flow{f}
	}
	f.HTTP = true
	if len(call.HTTP) == 0 || call.Truncated {
		return []Flow{f} // paths unknown, or not all of them listed
	}
	var out []Flow
	for _, h := range call.HTTP {
		for _, m := range stringsOrUnknown(h.Methods) {
			g := f
			g.Path, g.Method = h.Path, m
			out = append(out, g)
		}
	}
	return out
}

func portsOrUnknown(ports []int32) []int32 {
	if len(ports) == 0 {
		return []int32{0}
	}
	return ports
}

func stringsOrUnknown(s []string) []string {
	if len(s) == 0 {
		return []string{""}
	}
	return s
}

// podPorts turns a call's observed ports into the server pod's ports: a port reached
// through a Service is that Service port's target.
func (c *Catalog) podPorts(call discoveryv1alpha1.Call) []int32 {
	server := c.Workload(call.Namespace, call.Name)
	seen := portsOrUnknown(call.Ports)
	out := make([]int32, 0, len(seen))
	for _, p := range seen {
		target := c.serviceTarget(call, p)
		n := resolvePort(target, server)
		if n == 0 {
			n = p // a named target the pods do not declare: keep what was seen
		}
		out = append(out, n)
	}
	return out
}

// serviceTarget is the target of port p in the Services the call went through; p itself
// when no Service maps it.
func (c *Catalog) serviceTarget(call discoveryv1alpha1.Call, p int32) intstr.IntOrString {
	for _, svc := range call.Services {
		for _, sp := range c.services[ref{call.Namespace, svc}] {
			if sp.Port == p && (sp.Protocol == "" || sp.Protocol == corev1.ProtocolTCP) {
				if sp.TargetPort.Type == intstr.String || sp.TargetPort.IntVal != 0 {
					return sp.TargetPort
				}
				return intstr.FromInt32(p)
			}
		}
	}
	return intstr.FromInt32(p)
}

// resolvePort is a port's number: a named port is looked up in the workload's containers;
// 0 when it cannot be.
func resolvePort(p intstr.IntOrString, w *Workload) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	if w != nil {
		for _, cp := range w.Ports {
			if cp.Name == p.StrVal {
				return cp.ContainerPort
			}
		}
	}
	return 0
}
