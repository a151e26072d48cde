package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Helm release as the README installs it.
const (
	release = "intent-mapper"
	chart   = "./charts/intent-mapper"
)

// The CRDs Helm installs from the chart's crds/ and keeps on uninstall.
var crds = []string{"discoveredintents.discovery.intentmapper.io", "intentmappers.discovery.intentmapper.io"}

// helm runs the helm CLI (built into the cluster's binaries by hack/cluster/build.sh) with
// its cache, config and data in the test's own directories.
func (e *env) helm(args ...string) string {
	e.t.Helper()
	out, err := e.tryHelm(args...)
	if err != nil {
		e.t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	e.t.Logf("helm %s:\n%s", args[0], out)
	return out
}

func (e *env) tryHelm(args ...string) (string, error) {
	cmd := exec.Command("helm", args...)
	cmd.Dir = e.root
	home := filepath.Join(os.TempDir(), "intent-mapper-cluster-helm")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// imageValues installs image ref "intent-mapper:TAG", imported, never pulled (the
// agents get the pull policy through IntentMapper's spec).
func imageValues(tag string) string {
	return "image.repository=intent-mapper,image.tag=" + tag + ",image.pullPolicy=Never"
}

// TestHelm installs intent-mapper with the helm CLI as the README says, maps the scenario,
// tells a hung agent from a reporting one, upgrades to a second image and uninstalls.
// Go runs it after TestCluster (files in name order), which ends by undeploying.
func TestHelm(t *testing.T) {
	e := setup(t)
	s := loadScenario(t)
	bin := e.buildApp()
	t.Cleanup(e.guardIsZero)
	for _, img := range []string{imageFirst, imageNext} {
		e.run("make", "cluster-image", "IMG="+img)
	}
	// Whatever fails, nothing of the release or its CRDs stays in the cluster.
	t.Cleanup(func() {
		if out, err := e.tryHelm("uninstall", release, "-n", systemNS, "--ignore-not-found", "--wait", "--timeout", "2m"); err != nil {
			t.Logf("cleanup: helm uninstall: %v\n%s", err, out)
		}
		_, _ = e.try("kubectl", append([]string{"delete", "crd", "--ignore-not-found", "--timeout=60s"}, crds...)...)
		_, _ = e.try("kubectl", "delete", "namespace", systemNS, "--ignore-not-found", "--timeout=90s")
	})

	e.helm("install", release, chart, "-n", systemNS, "--create-namespace",
		"--set", imageValues(strings.TrimPrefix(imageFirst, "intent-mapper:")), "--wait", "--timeout", "5m")
	e.installed(imageFirst)
	e.agentsReport(2 * time.Minute)
	e.waitFor("the scenario's namespaces of an earlier test gone", 2*time.Minute, func() (bool, string) {
		for _, w := range s.Workloads {
			if out, _ := e.try("kubectl", "get", "namespace", w.Namespace, "--ignore-not-found", "-o", "name"); strings.TrimSpace(out) != "" {
				return false, strings.TrimSpace(out) + " still terminating"
			}
		}
		return true, ""
	})
	stop := e.stage(s, bin)
	t.Cleanup(stop)
	e.mapped(s, 6*time.Minute)

	t.Run("a hung agent is told from a reporting one", e.hungAgentIsTold)
	t.Run("helm upgrade to a second image completes and loses nothing", func(t *testing.T) {
		e := e.with(t)
		before := calls(e.intents())
		e.helm("upgrade", release, chart, "-n", systemNS, "--reuse-values",
			"--set", "image.tag="+strings.TrimPrefix(imageNext, "intent-mapper:"), "--wait", "--timeout", "5m")
		e.installed(imageNext)
		// The pods' specs: both tags are one image, which containerd reports by either name.
		e.waitFor("every manager and agent pod on "+imageNext+", Ready", 2*time.Minute, func() (bool, string) {
			out, err := e.try("kubectl", "-n", systemNS, "get", "pods", "-o",
				`jsonpath={range .items[*]}{.metadata.name}={.spec.containers[0].image},{.status.conditions[?(@.type=="Ready")].status} {end}`)
			if err != nil {
				return false, out
			}
			pods := strings.Fields(out)
			for _, p := range pods {
				if !strings.HasSuffix(p, "="+imageNext+",True") {
					return false, out
				}
			}
			return len(pods) == 2, out
		})
		e.agentsReport(2 * time.Minute)
		e.mapped(s, 3*time.Minute)
		e.kept(before, "helm upgrade")
	})
	t.Run("helm uninstall leaves nothing but the CRDs", func(t *testing.T) {
		e := e.with(t)
		e.helm("uninstall", release, "-n", systemNS, "--wait", "--timeout", "3m")
		e.waitFor("nothing of intent-mapper left but its CRDs", 3*time.Minute, func() (bool, string) {
			left, err := e.leftovers()
			if err != nil {
				return false, err.Error()
			}
			return len(left) == 0, strings.Join(left, " ")
		})
		for _, crd := range crds {
			if _, err := e.try("kubectl", "get", "crd", crd); err != nil {
				t.Errorf("helm uninstall removed CRD %s: Helm keeps crds/", crd)
			}
		}
		if len(e.intents()) == 0 {
			t.Error("no DiscoveredIntents after helm uninstall: they stay with their CRD")
		}
		// Then as the chart's notes say: the CRDs go by hand, and the DiscoveredIntents with them.
		e.kubectl(append([]string{"delete", "crd", "--timeout=60s"}, crds...)...)
		e.kubectl("delete", "namespace", systemNS, "--timeout=90s")
	})
}

// leftovers lists what is left of intent-mapper but its CRDs: cluster-wide objects named
// after it, and every object in its namespace but those Kubernetes puts in each
// namespace. Events are not counted: the API server expires them.
func (e *env) leftovers() ([]string, error) {
	var left []string
	out, err := e.try("kubectl", "get", "clusterroles,clusterrolebindings,intentmappers", "-o", "name")
	if err != nil {
		return nil, err
	}
	for _, name := range strings.Fields(out) {
		if strings.Contains(name, "intent-mapper") || strings.HasPrefix(name, "intentmapper") {
			left = append(left, name)
		}
	}
	out, err = e.try("kubectl", "-n", systemNS, "get", "--ignore-not-found", "-o", "name",
		"pods,deployments,replicasets,daemonsets,services,serviceaccounts,secrets,configmaps,roles,rolebindings,leases")
	if err != nil {
		return nil, err
	}
	for _, name := range strings.Fields(out) {
		if name != "serviceaccount/default" && name != "configmap/kube-root-ca.crt" {
			left = append(left, systemNS+"/"+name)
		}
	}
	return left, nil
}
