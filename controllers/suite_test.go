package controllers

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

var (
	ctx       context.Context
	cancel    context.CancelFunc
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	scheme    = runtime.NewScheme()
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	// Two loaded cores can take more than Gomega's default second to reconcile.
	SetDefaultEventuallyTimeout(15 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	ctx, cancel = context.WithCancel(context.TODO())

	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(discoveryv1alpha1.AddToScheme(scheme))
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: envtestAssets(),
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: managerNamespace}})).To(Succeed())
	startManager()
})

var _ = AfterSuite(func() {
	stopManager()
	cancel()
	Expect(testEnv.Stop()).To(Succeed())
})

// The manager under test: the same data path main sets up, with its ingest server on
// a loopback port and short intervals.
const (
	managerNamespace = "intent-mapper-system"
	agentAccount     = "intent-mapper-agent"
	ingestHost       = "intent-mapper-ingest.intent-mapper-system.svc"
	testFlush        = 300 * time.Millisecond
	testDeclaredPoll = 300 * time.Millisecond
)

var (
	ingestAddr  string
	dataPath    *DataPath
	stopManager func()
)

func startManager() {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      CacheOptions(managerNamespace),
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}, // restarted in one process
	})
	Expect(err).NotTo(HaveOccurred())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	ingestAddr = ln.Addr().String()

	opts := DefaultDataPathOptions()
	opts.IngestListener = ln
	opts.Flush = testFlush
	opts.DeclaredPoll = testDeclaredPoll
	opts.AgentServiceAccount = managerNamespace + "/" + agentAccount
	mgrCtx, mgrCancel := context.WithCancel(ctx)
	dataPath, err = SetupDataPath(mgrCtx, mgr, opts)
	Expect(err).NotTo(HaveOccurred())
	Expect(SetupIntentMapper(mgr, dataPath, opts, "intent-mapper:test")).To(Succeed())

	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	stopManager = func() {
		mgrCancel()
		Eventually(done).WithTimeout(30 * time.Second).Should(BeClosed())
	}
}

// envtestAssets finds the kube-apiserver and etcd that `make envtest-assets` builds,
// unless KUBEBUILDER_ASSETS already points somewhere.
func envtestAssets() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	dir, err := filepath.Abs(filepath.Join("..", "bin", "k8s"))
	Expect(err).NotTo(HaveOccurred())
	_, err = os.Stat(filepath.Join(dir, "kube-apiserver"))
	Expect(err).NotTo(HaveOccurred(), "no kube-apiserver in %s: run `make envtest-assets`", dir)
	return dir
}
