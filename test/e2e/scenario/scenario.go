// Package scenario stages an application on one machine for intent-mapper's demo and
// end-to-end tests: workloads registered in the API server with loopback pod IPs, real
// servers and clients on those IPs, a DNS server, and Istio-format sidecar metrics.
package scenario

import (
	"fmt"
	"os"
	"slices"
	"sort"

	"sigs.k8s.io/yaml"
)

// Scenario describes an application: its workloads and the calls each makes.
type Scenario struct {
	// Name of the scenario, for messages.
	Name string `json:"name"`
	// Namespace of workloads that name none.
	Namespace string `json:"namespace"`
	// Workloads of the application.
	Workloads []Workload `json:"workloads"`
	// Outside are servers outside the cluster, known by a DNS name (cluster tier only:
	// each is a host in a network namespace of its own).
	Outside []Outside `json:"outside,omitempty"`
	// Calls the workloads make.
	Calls []Call `json:"calls"`
}

// Outside is a server outside the cluster.
type Outside struct {
	// Name is its DNS name, which calls use in To.
	Name string `json:"name"`
	// Port it serves on.
	Port int `json:"port"`
}

// Workload is one workload: one pod, the objects that own it, and a Service if it serves.
type Workload struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// Kind of the top controller: Deployment (default), StatefulSet, DaemonSet, Job, CronJob or Pod.
	Kind string `json:"kind,omitempty"`
	// Port it serves on (HTTP, or TCP for calls without http); none when zero.
	Port int `json:"port,omitempty"`
	// Sidecar gives the pod an Istio sidecar's label and metrics page.
	Sidecar bool `json:"sidecar,omitempty"`
	// Labels are more labels for the pod (cluster tier), e.g. intentmapper.io/service-name.
	Labels map[string]string `json:"labels,omitempty"`

	// IP is the loopback address the pod is given.
	IP string `json:"-"`
	// ServiceIP is its Service's ClusterIP, a loopback address too (see ServiceCIDR).
	ServiceIP string `json:"-"`

	// How Istio names the staged pod: workload, canonical service, app label.
	istioName, istioService, app string
}

// Call is a client calling a server, over and over while the scenario runs.
type Call struct {
	// From and To name workloads, as NAME or NAMESPACE/NAME; To may name an Outside server.
	From string `json:"from"`
	To   string `json:"to"`
	// Port on the server; the server's own port by default.
	Port int `json:"port,omitempty"`
	// DNS is the name the client resolves; NAME.NAMESPACE.svc.cluster.local by default.
	DNS string `json:"dns,omitempty"`
	// HTTP requests made on each round; a plain TCP connection when empty.
	HTTP []Request `json:"http,omitempty"`
}

// Request is one HTTP request.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

// Load reads and checks a scenario file, and gives each workload a loopback IP.
func Load(path string) (*Scenario, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := &Scenario{}
	if err := yaml.UnmarshalStrict(raw, s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.complete(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Kinds a workload may have.
const (
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
	kindDaemonSet   = "DaemonSet"
	kindJob         = "Job"
	kindCronJob     = "CronJob"
	kindPod         = "Pod"
)

var kinds = []string{kindDeployment, kindStatefulSet, kindDaemonSet, kindJob, kindCronJob, kindPod}

func (s *Scenario) complete() error {
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	if len(s.Workloads) > 250*50 {
		return fmt.Errorf("%d workloads: too many", len(s.Workloads))
	}
	seen := map[string]bool{}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.Namespace == "" {
			w.Namespace = s.Namespace
		}
		if w.Kind == "" {
			w.Kind = kindDeployment
		}
		if !slices.Contains(kinds, w.Kind) {
			return fmt.Errorf("workload %s: kind %q is not one of %v", w.Name, w.Kind, kinds)
		}
		if w.Name == "" || seen[w.Key()] {
			return fmt.Errorf("workload %q: a name is required, once per namespace", w.Name)
		}
		seen[w.Key()] = true
		w.IP = fmt.Sprintf("127.0.%d.%d", 10+i/250, i%250+1)
	}
	for i := range s.Calls {
		if err := s.completeCall(&s.Calls[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Scenario) completeCall(c *Call) error {
	from, to, out := s.Workload(c.From), s.Workload(c.To), s.OutsideServer(c.To)
	if from == nil || (to == nil && out == nil) {
		return fmt.Errorf("call %s -> %s: both must be workloads (or To an outside server) of the scenario", c.From, c.To)
	}
	if out != nil {
		if c.Port == 0 {
			c.Port = out.Port
		}
		c.DNS = out.Name
		if len(c.HTTP) > 0 {
			return fmt.Errorf("call %s -> %s: calls outside are plain TCP", c.From, c.To)
		}
	} else {
		if c.Port == 0 {
			c.Port = to.Port
		}
		if c.DNS == "" {
			c.DNS = to.Name + "." + to.Namespace + ".svc.cluster.local"
		}
	}
	if c.Port == 0 {
		return fmt.Errorf("call %s -> %s: the server has no port", c.From, c.To)
	}
	return nil
}

// OutsideServer finds an outside server by its DNS name.
func (s *Scenario) OutsideServer(name string) *Outside {
	for i := range s.Outside {
		if s.Outside[i].Name == name {
			return &s.Outside[i]
		}
	}
	return nil
}

// ServiceNameLabel names a workload for intent-mapper when its pods carry it.
const ServiceNameLabel = "intentmapper.io/service-name"

// Identity is the name intent-mapper gives the workload: its service-name label, or its name.
func (w *Workload) Identity() string {
	if n := w.Labels[ServiceNameLabel]; n != "" {
		return n
	}
	return w.Name
}

// Key is NAMESPACE/NAME.
func (w *Workload) Key() string { return w.Namespace + "/" + w.Name }

// Workload finds a workload by NAME (in the default namespace) or NAMESPACE/NAME.
func (s *Scenario) Workload(ref string) *Workload {
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if ref == w.Key() || (ref == w.Name && w.Namespace == s.Namespace) {
			return w
		}
	}
	return nil
}

// Expected is what the scenario's traffic must produce: per client, per server, the
// type, ports, Service, and paths with their methods.
type Expected struct {
	Client, Server string // NAMESPACE/NAME
	Type           string
	Ports          []int32
	Service        string
	Paths          map[string][]string
}

// Expect lists what intent-mapper must find, sorted by client and server.
func (s *Scenario) Expect() []Expected {
	byPair := map[[2]string]*Expected{}
	for _, c := range s.Calls {
		from, to := s.Workload(c.From), s.Workload(c.To)
		client := from.Namespace + "/" + from.Identity()
		server, kind, service := "", "tcp", ""
		if to == nil { // outside: named by the DNS name resolved, in no namespace
			server, kind = "/"+c.DNS, "internet"
		} else {
			server, service = to.Namespace+"/"+to.Identity(), to.Name
		}
		key := [2]string{client, server}
		e := byPair[key]
		if e == nil {
			e = &Expected{Client: client, Server: server, Type: kind, Service: service, Paths: map[string][]string{}}
			byPair[key] = e
		}
		if !slices.Contains(e.Ports, int32(c.Port)) {
			e.Ports = append(e.Ports, int32(c.Port))
			slices.Sort(e.Ports)
		}
		if to != nil && (from.Sidecar || to.Sidecar) && len(c.HTTP) > 0 {
			e.Type = "http"
			for _, r := range c.HTTP {
				if !slices.Contains(e.Paths[r.Path], r.Method) {
					e.Paths[r.Path] = append(e.Paths[r.Path], r.Method)
					slices.Sort(e.Paths[r.Path])
				}
			}
		}
	}
	out := make([]Expected, 0, len(byPair))
	for _, e := range byPair {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Client+" "+out[i].Server < out[j].Client+" "+out[j].Server
	})
	return out
}

// unprivilegedShift moves ports under 1024 where a user without root may listen.
const unprivilegedShift = 8000

// Unprivileged moves every port under 1024 up by 8000, for a run without root, and
// says whether it moved any.
func (s *Scenario) Unprivileged() bool {
	moved := false
	for i := range s.Workloads {
		if p := &s.Workloads[i].Port; *p > 0 && *p < 1024 {
			*p += unprivilegedShift
			moved = true
		}
	}
	for i := range s.Calls {
		if p := &s.Calls[i].Port; *p < 1024 {
			*p += unprivilegedShift
		}
	}
	return moved
}
