package scenario

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// Names the system runs under, as the kustomize install uses them.
const (
	Namespace    = "intent-mapper-system"
	AgentAccount = "intent-mapper-agent"
	IngestHost   = "intent-mapper-ingest.intent-mapper-system.svc"
	Node         = "demo-node"
	// ServiceCIDR is where the API server allocates ClusterIPs: loopback addresses, which
	// the harness's servers also listen on. A client connecting to a ClusterIP then sees
	// it as the remote address of its socket, as it does after kube-proxy's DNAT.
	ServiceCIDR = "127.96.0.0/16"
)

// SystemOptions say where the pieces are.
type SystemOptions struct {
	// Binary is the intent-mapper binary; AgentBinary, when set, is intent-mapper-agent
	// (what the DaemonSet runs), else the agent runs as "Binary agent".
	Binary, AgentBinary string
	// Assets holds kube-apiserver and etcd; CRDs holds the CRD manifests.
	Assets, CRDs string
	// Dir receives the kubeconfig, token, CA and logs.
	Dir string
	// Capture: the agent may open packet sockets (root); without, only /proc is read.
	Capture bool
	// ScrapePort of the sidecars' metrics pages.
	ScrapePort int
	// Log receives progress lines.
	Log io.Writer
	// MetricsAddr, when set, serves the manager's metrics there, in plain HTTP.
	MetricsAddr string
	// ManagerArgs are added to the manager's flags.
	ManagerArgs []string
	// AgentArgs are added to the agent's flags; a flag given again overrides the
	// harness's own (its fast intervals, say).
	AgentArgs []string
	// AgentEnv is added to the agent's environment (GOGC=50, say).
	AgentEnv []string
}

// System is a control plane with intent-mapper's manager and one agent running.
type System struct {
	o          SystemOptions
	env        *envtest.Environment
	Config     *rest.Config
	Client     client.Client
	Kubeconfig string
	ingestAddr string
	manager    *exec.Cmd
	agent      *exec.Cmd
}

// Scheme knows the built-in kinds and intent-mapper's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = discoveryv1alpha1.AddToScheme(s)
	return s
}

// StartSystem starts kube-apiserver and etcd, installs the CRDs, writes a kubeconfig,
// and starts the manager. The agent starts with StartAgent, once pods exist.
func StartSystem(ctx context.Context, o SystemOptions) (*System, error) {
	s := &System{o: o, env: &envtest.Environment{CRDDirectoryPaths: []string{o.CRDs}, ErrorIfCRDPathMissing: true, BinaryAssetsDirectory: o.Assets}}
	s.env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", ServiceCIDR)
	s.logf("starting kube-apiserver and etcd")
	cfg, err := s.env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	s.Config = cfg
	if s.Client, err = client.New(cfg, client.Options{Scheme: Scheme()}); err != nil {
		return s, err
	}
	user, err := s.env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return s, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return s, err
	}
	s.Kubeconfig = filepath.Join(o.Dir, "kubeconfig")
	if err := os.WriteFile(s.Kubeconfig, kubeconfig, 0o600); err != nil {
		return s, err
	}
	s.logf("kubeconfig: %s", s.Kubeconfig)
	if err := s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}); err != nil {
		return s, err
	}
	if err := s.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: AgentAccount, Namespace: Namespace}}); err != nil {
		return s, err
	}
	return s, s.StartManager(ctx)
}

func (s *System) logf(format string, args ...any) {
	if s.o.Log != nil {
		_, _ = fmt.Fprintf(s.o.Log, "==> "+format+"\n", args...)
	}
}

// StartManager starts (or restarts) the manager process and waits for its CA.
func (s *System) StartManager(ctx context.Context) error {
	if s.ingestAddr == "" {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.ingestAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	s.logf("starting the manager (reports on %s)", s.ingestAddr)
	metrics := s.o.MetricsAddr
	if metrics == "" {
		metrics = "0"
	}
	args := append([]string{"manager",
		"--ingest-bind-address", s.ingestAddr, "--metrics-bind-address", metrics, "--metrics-secure=false", "--health-probe-bind-address", "0",
		"--namespace", Namespace, "--agent-service-account", Namespace + "/" + AgentAccount, "--flush-interval", "1s"}, s.o.ManagerArgs...)
	s.manager = s.command(s.o.Binary, "manager", args...)
	if err := s.manager.Start(); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{}
	return poll(ctx, time.Minute, func() bool {
		return s.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: "intent-mapper-ca"}, cm) == nil && cm.Data["ca.crt"] != ""
	})
}

// IngestAddr is where the manager takes reports.
func (s *System) IngestAddr() string { return s.ingestAddr }

// ManagerPID is the manager process's ID.
func (s *System) ManagerPID() int { return s.manager.Process.Pid }

// AgentPID is the agent process's ID, once StartAgent has started it.
func (s *System) AgentPID() int { return s.agent.Process.Pid }

// AgentToken asks the API server for a token of the agent's ServiceAccount, bound to
// the agent's pod on Node, as the kubelet's projected volume holds it: the manager
// takes the reporting node from that binding.
func (s *System) AgentToken(ctx context.Context) (string, error) {
	return s.AgentTokenOn(ctx, Node)
}

// AgentTokenOn is the token of an agent on node, bound to its pod there.
func (s *System) AgentTokenOn(ctx context.Context, node string) (string, error) {
	pod, err := s.agentPod(ctx, node)
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(Namespace).CreateToken(ctx, AgentAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{"intent-mapper"}, ExpirationSeconds: ptr.To[int64](24 * 3600),
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// agentPod is the pod an agent on node stands for, made once: no kubelet runs it.
func (s *System) agentPod(ctx context.Context, node string) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "intent-mapper-agent-" + node, Namespace: Namespace},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: AgentAccount, HostNetwork: true,
			Containers: []corev1.Container{{Name: "agent", Image: "intent-mapper:demo"}}},
	}
	err := s.Client.Create(ctx, pod)
	if apierrors.IsAlreadyExists(err) {
		err = s.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod)
	}
	return pod, err
}

// KillManager kills the manager at once, as a crash would.
func (s *System) KillManager() {
	if s.manager != nil && s.manager.Process != nil {
		_ = s.manager.Process.Kill()
		_ = s.manager.Wait()
	}
}

// TerminateManager stops the manager as a rollout or an eviction does: SIGTERM, then
// SIGKILL if it is still running after grace. It returns the process's exit error.
func (s *System) TerminateManager(grace time.Duration) error {
	if s.manager == nil || s.manager.Process == nil {
		return nil
	}
	if err := s.manager.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- s.manager.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		_ = s.manager.Process.Kill()
		return fmt.Errorf("still running %v after SIGTERM: killed (%v)", grace, <-done)
	}
}

// StartAgent starts the agent with a token the API server issues for it and the CA
// the manager published.
func (s *System) StartAgent(ctx context.Context) error {
	token, err := s.AgentToken(ctx)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: "intent-mapper-ca"}, cm); err != nil {
		return err
	}
	tokenFile, ca := filepath.Join(s.o.Dir, "token"), filepath.Join(s.o.Dir, "ca.crt")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(ca, []byte(cm.Data["ca.crt"]), 0o600); err != nil {
		return err
	}
	args := []string{"--node", Node, "--interfaces", "lo",
		"--manager-url", "https://" + s.ingestAddr + "/v1/reports", "--manager-server-name", IngestHost,
		"--ca-file", ca, "--token-file", tokenFile, "--report-interval", "1s", "--scan-interval", "2s",
		"--istio", "--kubeconfig", s.Kubeconfig, "--scrape-interval", "2s",
		"--scrape-port", strconv.Itoa(s.o.ScrapePort), "--scrape-fallback-port", "0", "--metrics-bind-address", "0"}
	if !s.o.Capture {
		args = append(args, "--dns=false", "--syn=false")
	}
	args = append(args, s.o.AgentArgs...)
	s.logf("starting the agent on node %s", Node)
	binary := s.o.AgentBinary
	if binary == "" {
		binary, args = s.o.Binary, append([]string{"agent"}, args...)
	}
	s.agent = s.command(binary, "agent", args...)
	s.agent.Env = append(s.agent.Env, s.o.AgentEnv...)
	return s.agent.Start()
}

func (s *System) command(binary, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.Kubeconfig)
	if log, err := os.OpenFile(filepath.Join(s.o.Dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		cmd.Stdout, cmd.Stderr = log, log
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the demo
	return cmd
}

// Stop stops the agent, the manager and the control plane.
func (s *System) Stop() {
	for _, cmd := range []*exec.Cmd{s.agent, s.manager} {
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
	}
	if s.env != nil {
		_ = s.env.Stop()
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// poll checks cond every 200 ms until it holds, ctx ends, or the limit passes.
func poll(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
