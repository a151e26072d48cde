package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers"
	"github.com/intent-mapper/intent-mapper/gctune"
)

var scheme = runtime.NewScheme()

// shutdownMargin is what the manager's stop takes beyond writing pending calls.
const shutdownMargin = 5 * time.Second

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(discoveryv1alpha1.AddToScheme(scheme))
}

// managerOptions are the manager's command-line flags.
type managerOptions struct {
	metricsAddr   string
	secureMetrics bool
	probeAddr     string
	pprofAddr     string
	leaderElect   bool
	// kubeAPIQPS and kubeAPIBurst bound the manager's requests, as kube-controller-manager's flags do.
	kubeAPIQPS   float64
	kubeAPIBurst int
	agentImage   string
	dataPath     controllers.DataPathOptions
	zap          zap.Options
}

// managerGCPercent is the manager's GOGC: its heap churns through every report and
// write, and at the default (100) the heap it keeps grows to twice what is live.
const managerGCPercent = 50

func parseManagerFlags(args []string) (managerOptions, error) {
	o := managerOptions{dataPath: controllers.DefaultDataPathOptions()}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		o.dataPath.Namespace = ns
	}
	o.dataPath.PodName = os.Getenv("POD_NAME")
	d := &o.dataPath
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "address the Prometheus metrics endpoint binds to; 0 turns it off")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true, "serve metrics over HTTPS to callers allowed to get /metrics; false serves plain HTTP to anyone who can connect")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address the health and readiness probes bind to")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "address of Go's profiles (/debug/pprof/), for finding where CPU and memory go; off (0) by default, keep it on loopback")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader, so that only one manager writes at a time")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", 200, "requests per second to the API server, sustained (a cold start writes two per client)")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", 400, "requests to the API server allowed in a burst above --kube-api-qps")
	fs.IntVar(&d.Workers, "workers", d.Workers, "DiscoveredIntents written at once")
	fs.IntVar(&d.MaxPendingEntries, "max-pending-entries", d.MaxPendingEntries, "calls, HTTP paths and Kafka topics accepted and not yet written, at most (about 300 bytes each); beyond it agents are told to retry (429) and keep their reports; 0 sets no bound")
	fs.StringVar(&o.agentImage, "agent-image", os.Getenv("AGENT_IMAGE"), "image of the agents the manager deploys, unless IntentMapper names one (env AGENT_IMAGE); the manager's own image when empty")
	fs.StringVar(&d.PodName, "pod-name", d.PodName, "the manager's own pod, for its image and the ingest leader label (env POD_NAME)")
	fs.StringVar(&d.Namespace, "namespace", d.Namespace, "namespace the manager runs in (env POD_NAMESPACE)")
	fs.StringVar(&d.IngestAddr, "ingest-bind-address", d.IngestAddr, "address agents' reports are served on (TLS)")
	fs.StringVar(&d.IngestService, "ingest-service", d.IngestService, "name of the ingest Service, for the self-signed certificate's DNS names")
	fs.StringVar(&d.TLSCertFile, "tls-cert-file", "", "serving certificate for reports; a self-signed one is kept when empty")
	fs.StringVar(&d.TLSKeyFile, "tls-key-file", "", "key of --tls-cert-file")
	fs.StringVar(&d.CertSecret, "tls-secret", d.CertSecret, "Secret holding the self-signed CA and serving certificate")
	fs.StringVar(&d.CAConfigMap, "ca-configmap", d.CAConfigMap, "ConfigMap the CA is published in, for agents")
	fs.StringVar(&d.AgentServiceAccount, "agent-service-account", d.AgentServiceAccount, "namespace/name of the only ServiceAccount allowed to report (NAMESPACE/intent-mapper-agent when empty)")
	fs.BoolVar(&d.AllowUnboundTokens, "allow-unbound-tokens", false, "accept agent tokens bound to no pod and take the report's word for its node (clusters before Kubernetes 1.20 only: any agent may then speak for any node)")
	fs.DurationVar(&d.ClockTolerance, "clock-tolerance", d.ClockTolerance, "how far ahead of the manager's clock an observation may be stamped before its time is clamped")
	fs.StringVar(&d.ManagerServiceAccount, "manager-service-account", envOr("MANAGER_SERVICE_ACCOUNT", d.ManagerServiceAccount), "the manager's own ServiceAccount, in --namespace, given read access to broker logs where spec.kafka names brokers (env MANAGER_SERVICE_ACCOUNT)")
	fs.StringVar(&d.BrokerLogsRole, "broker-logs-role", d.BrokerLogsRole, "ClusterRole granting get pods/log, bound in the namespaces of Kafka brokers")
	fs.Int64Var(&d.MaxReportBytes, "max-report-bytes", d.MaxReportBytes, "largest report accepted, after decompression")
	fs.DurationVar(&d.Flush, "flush-interval", d.Flush, "shortest time between two writes of one DiscoveredIntents")
	fs.DurationVar(&d.Merge.Step, "last-seen-step", d.Merge.Step, "step in which lastSeen moves")
	fs.IntVar(&d.Merge.MaxPaths, "max-paths-per-call", d.Merge.MaxPaths, "HTTP paths listed per call before it is marked truncated")
	fs.IntVar(&d.ObjectBudget, "max-object-bytes", d.ObjectBudget, "size budget of one stored DiscoveredIntents, as the API server returns it: least recently seen paths, then calls, are dropped beyond it")
	fs.DurationVar(&d.Merge.Retention, "retention", 0, "drop calls not seen for this long; 0 keeps them")
	fs.StringVar(&d.Resolve.ClusterDomain, "cluster-domain", d.Resolve.ClusterDomain, "the cluster's DNS domain")
	fs.DurationVar(&d.ShutdownBudget, "shutdown-budget", d.ShutdownBudget, "time a graceful stop may take to write every accepted report before the leader lease is released; keep it under the pod's terminationGracePeriodSeconds")
	fs.DurationVar(&d.Resolve.TombstoneTTL, "tombstone-ttl", d.Resolve.TombstoneTTL, "how long a deleted pod's IP is still attributed to it, for late reports")
	o.zap.BindFlags(fs)
	return o, fs.Parse(args)
}

func runManager(args []string) int {
	o, err := parseManagerFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	gctune.Apply(managerGCPercent)
	if err := startManager(o); err != nil {
		fmt.Fprintln(os.Stderr, "intent-mapper manager:", err)
		return 1
	}
	return 0
}

func startManager(o managerOptions) error {
	cfg := ctrl.GetConfigOrDie()
	cfg.QPS, cfg.Burst = float32(o.kubeAPIQPS), o.kubeAPIBurst
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                controllers.MetricsOptions(o.metricsAddr, o.secureMetrics),
		HealthProbeBindAddress: o.probeAddr,
		PprofBindAddress:       o.pprofAddr,
		LeaderElection:         o.leaderElect,
		LeaderElectionID:       controllers.LeaderElectionID,
		// Stopping, the manager writes what it accepted, then hands the lease over at
		// once instead of leaving the next leader to wait for it to expire.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr.To(o.dataPath.ShutdownBudget + shutdownMargin),
		Cache:                         controllers.CacheOptions(o.dataPath.Namespace),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	dp, err := controllers.SetupDataPath(ctx, mgr, o.dataPath)
	if err != nil {
		return err
	}
	image, err := controllers.AgentImage(ctx, mgr.GetAPIReader(), o.agentImage, o.dataPath.Namespace, o.dataPath.PodName, fallbackAgentImage)
	if err != nil {
		return fmt.Errorf("choosing the agents' image (set --agent-image to name one): %w", err)
	}
	ctrl.Log.Info("agents' image, unless IntentMapper names one", "image", image)
	if err := controllers.SetupIntentMapper(mgr, dp, o.dataPath, image); err != nil {
		return fmt.Errorf("setting up the IntentMapper controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// fallbackAgentImage is the agents' image for a manager run outside a pod.
const fallbackAgentImage = "intent-mapper:latest"

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
