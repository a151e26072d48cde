// Command demo runs intent-mapper on this machine against a local control plane with
// real traffic: `make demo` (SCENARIO=path for another scenario).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/declared"
	"github.com/intent-mapper/intent-mapper/test/e2e/scenario"
)

func main() {
	scenarioPath := flag.String("scenario", "hack/demo/scenario.yaml", "the application to stage (format: hack/demo/README.md)")
	binary := flag.String("binary", "bin/intent-mapper", "the intent-mapper binary")
	assets := flag.String("assets", "bin/k8s", "directory with kube-apiserver and etcd")
	crds := flag.String("crds", "config/crd/bases", "directory with the CRDs")
	timeout := flag.Duration("timeout", 3*time.Minute, "how long to wait for every call to be discovered")
	exit := flag.Bool("exit", false, "stop once everything is discovered, instead of waiting for Ctrl-C")
	flag.Parse()
	// Every way the demo can be stopped — Ctrl-C, a kill, a closed terminal or pipe —
	// goes through the cleanup below: kube-apiserver and etcd would outlive it otherwise.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer stop()
	if err := run(ctx, *scenarioPath, *binary, *assets, *crds, *timeout, *exit); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, scenarioPath, binary, assets, crds string, timeout time.Duration, exit bool) error {
	sc, err := scenario.Load(scenarioPath)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "intent-mapper-demo-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	root := os.Geteuid() == 0
	dnsAddr := "127.0.53.53:53"
	if !root {
		fmt.Println("==> not root: no packet capture, so DNS answers and SYNs are not seen;")
		fmt.Println("    connections come from /proc and HTTP detail from the sidecar pages")
		dnsAddr = "127.0.53.53:5353"
		if sc.Unprivileged() {
			fmt.Println("    and ports under 1024 are served 8000 higher (80 becomes 8080)")
		}
	}
	sys, err := scenario.StartSystem(ctx, scenario.SystemOptions{
		Binary: abs(binary), Assets: abs(assets), CRDs: abs(crds), Dir: dir, Capture: root, ScrapePort: 15020, Log: os.Stdout,
	})
	if sys != nil {
		defer sys.Stop()
	}
	if err != nil {
		return err
	}
	fmt.Printf("==> staging %q: %d workloads, %d calls\n", sc.Name, len(sc.Workloads), len(sc.Calls))
	if err := sc.Stage(ctx, sys.Client, scenario.Node); err != nil {
		return err
	}
	traffic, err := sc.StartTraffic(scenario.TrafficOptions{DNSAddr: dnsAddr, ScrapePort: 15020, Every: time.Second})
	if err != nil {
		return err
	}
	defer traffic.Stop()
	if err := sys.StartAgent(ctx); err != nil {
		return err
	}
	if err := waitDiscovered(ctx, sys, sc, timeout); err != nil {
		return err
	}
	if err := show(ctx, sys); err != nil {
		return err
	}
	if exit {
		return nil
	}
	fmt.Printf("\n==> running; try:\n    export KUBECONFIG=%s\n    kubectl get discoveredintents -A\n==> Ctrl-C stops everything and removes %s\n", sys.Kubeconfig, dir)
	<-ctx.Done()
	fmt.Println("\n==> stopping")
	return nil
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// waitDiscovered prints progress until every call of the scenario is discovered.
func waitDiscovered(ctx context.Context, sys *scenario.System, sc *scenario.Scenario, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		list := &discoveryv1alpha1.DiscoveredIntentsList{}
		if err := sys.Client.List(ctx, list); err != nil {
			return err
		}
		score := sc.Compare(list.Items)
		if line := score.String(); line != last {
			fmt.Println("==> discovered:", line)
			last = line
		}
		if score.Perfect() && scenario.Fresh(list.Items) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not everything discovered in %v; missing %v, unexpected %v", timeout, score.Missing, score.Unexpected)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// show prints what `kubectl get discoveredintents -A` and `-o yaml` print.
func show(ctx context.Context, sys *scenario.System) error {
	cs, err := kubernetes.NewForConfig(sys.Config)
	if err != nil {
		return err
	}
	raw, err := cs.RESTClient().Get().AbsPath("/apis/discovery.intentmapper.io/v1alpha1/discoveredintents").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		return err
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(raw, table); err != nil {
		return err
	}
	fmt.Println("\n$ kubectl get discoveredintents -A")
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	header := []string{"NAMESPACE"}
	for _, c := range table.ColumnDefinitions {
		header = append(header, strings.ToUpper(c.Name))
	}
	_, _ = fmt.Fprintln(w, strings.Join(header, "\t"))
	list := &discoveryv1alpha1.DiscoveredIntentsList{}
	if err := sys.Client.List(ctx, list); err != nil {
		return err
	}
	for i, row := range table.Rows {
		cells := []string{list.Items[i].Namespace}
		for _, c := range row.Cells {
			cells = append(cells, fmt.Sprint(orNone(c)))
		}
		_, _ = fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	_ = w.Flush()
	fmt.Println("\n$ kubectl get discoveredintents -A -o yaml")
	for _, di := range list.Items {
		di.ManagedFields = nil
		di.APIVersion, di.Kind = discoveryv1alpha1.GroupVersion.String(), "DiscoveredIntents"
		out, err := yaml.Marshal(di)
		if err != nil {
			return err
		}
		fmt.Printf("---\n%s", out)
	}
	fmt.Println("\n$ kubectl intents export -A")
	for i := range list.Items {
		obj, err := declared.Export(&list.Items[i], declared.V1alpha3)
		if err != nil {
			return err
		}
		out, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		fmt.Printf("---\n%s", strings.ReplaceAll(string(out), "  creationTimestamp: null\n", ""))
	}
	return nil
}

func orNone(v any) any {
	if v == nil {
		return "<none>"
	}
	return v
}
