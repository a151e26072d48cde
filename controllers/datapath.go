package controllers

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ctrl "sigs.k8s.io/controller-runtime"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	"github.com/intent-mapper/intent-mapper/controllers/budget"
	"github.com/intent-mapper/intent-mapper/controllers/certs"
	"github.com/intent-mapper/intent-mapper/controllers/enqueue"
	"github.com/intent-mapper/intent-mapper/controllers/ingest"
	"github.com/intent-mapper/intent-mapper/controllers/pending"
	"github.com/intent-mapper/intent-mapper/controllers/resolve"
	"github.com/intent-mapper/intent-mapper/controllers/written"
	"github.com/intent-mapper/intent-mapper/kafka"
)

// DataPathOptions configure the way from agent reports to DiscoveredIntents.
type DataPathOptions struct {
	// Namespace the manager runs in: its certificate Secret and CA ConfigMap live there.
	Namespace string
	// PodName is the manager's own pod, labelled while it leads (empty outside a cluster).
	PodName string
	// IngestAddr is where reports are served, unless IngestListener is set.
	IngestAddr     string
	IngestListener net.Listener
	// IngestService is the ingest Service's name, for the certificate's DNS names.
	IngestService string
	// TLSCertFile and TLSKeyFile name a certificate of the user's; when empty, the
	// manager keeps a self-signed one in CertSecret and publishes its CA in CAConfigMap.
	TLSCertFile, TLSKeyFile string
	CertSecret, CAConfigMap string
	// AgentServiceAccount (namespace/name) is the only identity allowed to report;
	// intent-mapper-agent in Namespace when empty.
	AgentServiceAccount string
	// AllowUnboundTokens takes agents' tokens bound to no pod, and with them the
	// report's word for its node: only for clusters too old to bind tokens to pods.
	AllowUnboundTokens bool
	// ClockTolerance is how far ahead of the manager's clock an observation's time may
	// be before it is clamped to the time the report arrived.
	ClockTolerance time.Duration
	MaxReportBytes int64
	// ManagerServiceAccount is the manager's own ServiceAccount (in Namespace), to
	// which BrokerLogsRole is bound in the namespaces of Kafka brokers.
	ManagerServiceAccount string
	BrokerLogsRole        string
	Flush                 time.Duration
	Merge                 pending.MergeOptions
	Resolve               resolve.Options
	// DeclaredPoll is how often to look for the ClientIntents API.
	DeclaredPoll time.Duration
	// ShutdownBudget is how long a graceful stop may take to write what was accepted;
	// the manager's own grace period and the pod's must be longer.
	ShutdownBudget time.Duration
	// ObjectBudget bounds one stored DiscoveredIntents, in bytes.
	ObjectBudget int
	// Workers write DiscoveredIntents in parallel: a cold start writes every client at once.
	Workers int
	// MaxPendingEntries bounds the calls, paths and topics accepted and not yet written
	// (0: no bound); above it, ingest answers 429 and agents keep their reports.
	MaxPendingEntries int
}

// agentServiceAccount is the agents' identity, namespace/name.
func (o DataPathOptions) agentServiceAccount() string {
	if o.AgentServiceAccount != "" {
		return o.AgentServiceAccount
	}
	return o.Namespace + "/intent-mapper-agent"
}

// DefaultDataPathOptions are the manager's defaults.
func DefaultDataPathOptions() DataPathOptions {
	return DataPathOptions{
		Namespace:             "intent-mapper-system",
		IngestAddr:            ":9443",
		IngestService:         "intent-mapper-ingest",
		CertSecret:            "intent-mapper-ingest-tls",
		CAConfigMap:           "intent-mapper-ca",
		MaxReportBytes:        ingest.DefaultMaxBody,
		ClockTolerance:        time.Minute,
		ManagerServiceAccount: "intent-mapper-controller-manager",
		BrokerLogsRole:        DefaultBrokerLogsRole,
		Flush:                 5 * time.Second,
		Merge:                 pending.MergeOptions{Step: time.Minute, MaxPaths: 100},
		Resolve:               resolve.DefaultOptions(),
		DeclaredPoll:          30 * time.Second,
		ShutdownBudget:        20 * time.Second,
		ObjectBudget:          budget.Default,
		Workers:               16,
		MaxPendingEntries:     50_000,
	}
}

// DataPath is the running data path.
type DataPath struct {
	Pending  *pending.Store
	Resolver *resolve.Resolver
	Ingest   *ingest.Server
	// Settings take IntentMapper's spec over the flags.
	Settings *Settings
	// Kafka follows the brokers' logs.
	Kafka *kafka.Watcher
}

// SetupDataPath adds the ingest server, the resolver and the DiscoveredIntents
// reconciler to the manager.
func SetupDataPath(ctx context.Context, mgr ctrl.Manager, o DataPathOptions) (*DataPath, error) {
	o.AgentServiceAccount = o.agentServiceAccount()
	// Ingest and the declarations watch ask for reconciles through a queue that never
	// makes them wait: a burst of events is coalesced, one request per object.
	queue := &enqueue.Queue{}
	store := pending.NewStore(func(k pending.Key) { queue.Add(k.Namespace, k.Name) })
	store.Bound(o.MaxPendingEntries)
	resolver, err := resolve.NewForManager(ctx, mgr, o.Resolve)
	if err != nil {
		return nil, fmt.Errorf("setting up the resolver: %w", err)
	}
	times := ingest.Window{Ahead: o.ClockTolerance, MaxAge: o.Resolve.TombstoneTTL}
	getCert, err := certificateSource(mgr, o)
	if err != nil {
		return nil, err
	}
	server := &ingest.Server{
		Addr:           o.IngestAddr,
		Listener:       o.IngestListener,
		GetCertificate: getCert,
		Auth: &ingest.Authenticator{
			Client: mgr.GetClient(), ServiceAccount: o.AgentServiceAccount, AllowUnbound: o.AllowUnboundTokens,
			MaxEntries: 4096, Now: time.Now,
		},
		MaxBody: o.MaxReportBytes,
		Times:   times,
		Sink: func(rep *reportv1.Report) {
			var calls []resolve.Call
			resolver.Resolve(rep, func(c resolve.Call) { calls = append(calls, c) })
			store.AddAll(calls)
		},
		Backlog: store,
		Log:     mgr.GetLogger().WithName("ingest"),
	}
	if err := mgr.Add(server); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("ingest", server.Ready); err != nil {
		return nil, err
	}
	if err := mgr.Add(&ingestLeader{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Server: server, Elected: mgr.Elected(),
		Namespace: o.Namespace, Pod: o.PodName, Retry: 2 * time.Second,
	}); err != nil {
		return nil, err
	}
	if err := mgr.Add(&ownedByDeployment{
		Reader: mgr.GetAPIReader(), Client: mgr.GetClient(), Namespace: o.Namespace, Pod: o.PodName,
		Objects: managerObjects(o), Every: time.Minute, Log: mgr.GetLogger().WithName("owned-by-deployment"),
	}); err != nil {
		return nil, err
	}
	settings := NewSettings(o.Merge, o.Flush)
	watch, err := NewDeclaredWatch(mgr, queue, o.DeclaredPoll)
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(watch); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, err
	}
	brokers := &kafka.Watcher{
		Client: mgr.GetClient(), Pods: mgr.GetAPIReader(), Source: kafka.KubeLogs{Client: cs},
		Recorder: &kafka.Recorder{Resolver: resolver, Add: func(c resolve.Call) {
			if t, ok := times.Time(c.Time, time.Now()); ok {
				c.Time = t
				store.Add(c)
			}
		}},
		Servers: settings.KafkaServers, Every: 15 * time.Second,
	}
	if err := mgr.Add(brokers); err != nil {
		return nil, err
	}
	reconciler := &DiscoveredIntentsReconciler{
		Client: mgr.GetClient(), Pending: store, Queue: queue, Settings: settings, Declared: watch, Now: time.Now,
		SizeBudget: o.ObjectBudget, Workers: o.Workers, Written: &written.Store{}, APIReader: mgr.GetAPIReader(),
	}
	if err := reconciler.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the DiscoveredIntents controller: %w", err)
	}
	if err := mgr.Add(&drainer{ingest: server, reconciler: reconciler, reader: mgr.GetAPIReader(), budget: o.ShutdownBudget}); err != nil {
		return nil, err
	}
	return &DataPath{Pending: store, Resolver: resolver, Ingest: server, Settings: settings, Kafka: brokers}, nil
}

// certificateSource serves the user's certificate files, or a self-signed certificate
// that the manager keeps and renews.
func certificateSource(mgr ctrl.Manager, o DataPathOptions) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	if o.TLSCertFile != "" || o.TLSKeyFile != "" {
		files := &certs.Files{CertFile: o.TLSCertFile, KeyFile: o.TLSKeyFile}
		if _, err := files.GetCertificate(nil); err != nil {
			return nil, fmt.Errorf("loading the ingest certificate: %w", err)
		}
		return files.GetCertificate, nil
	}
	svc, ns := o.IngestService, o.Namespace
	self := &certs.SelfSigned{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(),
		Namespace: ns, SecretName: o.CertSecret, ConfigMapName: o.CAConfigMap,
		DNSNames:   []string{svc + "." + ns + ".svc", svc + "." + ns + ".svc." + o.Resolve.ClusterDomain, svc + "." + ns, svc},
		CALifetime: 5 * 365 * 24 * time.Hour, CertLifetime: 90 * 24 * time.Hour, Check: time.Hour,
		Elected: mgr.Elected(),
	}
	return self.GetCertificate, mgr.Add(self)
}

// CacheOptions are the manager's caches: objects are kept without managedFields (the
// resolver never reads them), pods only with the fields the manager reads (slimPod), and
// the kinds the manager only deploys are watched in its own namespace alone, which is
// all its Role allows; of RoleBindings, only its own.
func CacheOptions(namespace string) cache.Options {
	own := map[string]cache.Config{namespace: {}}
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.DaemonSet{}:      {Namespaces: own},
			&corev1.ServiceAccount{}: {Namespaces: own},
			&rbacv1.RoleBinding{}:    {Label: labels.SelectorFromSet(brokerLogsLabels())},
			&corev1.Pod{}:            {Transform: slimPod},
		},
	}
}

// SetupIntentMapper adds the IntentMapper reconciler, which deploys the agents and
// hands IntentMapper's settings to the data path.
func SetupIntentMapper(mgr ctrl.Manager, dp *DataPath, o DataPathOptions, image string) error {
	sa := o.agentServiceAccount()
	account := sa[strings.LastIndex(sa, "/")+1:]
	return (&IntentMapperReconciler{
		Client:        mgr.GetClient(),
		Settings:      dp.Settings,
		Reports:       dp.Ingest,
		KafkaProblems: dp.Kafka.Problems,
		Agent: AgentOptions{
			Namespace: o.Namespace, ServiceAccount: account, Image: image,
			IngestService: o.IngestService, CAConfigMap: o.CAConfigMap,
		},
		BrokerLogs: BrokerLogsAccess{ClusterRole: o.BrokerLogsRole, Namespace: o.Namespace, ServiceAccount: o.ManagerServiceAccount},
	}).SetupWithManager(mgr)
}
