package controllers

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/certs"
)

// testNode is the node the test's pods run on and its agent reports from.
const testNode = "node-a"

// ownerRef makes obj the controller of what it is set on.
func ownerRef(obj client.Object, kind, apiVersion string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: obj.GetName(), UID: obj.GetUID(), Controller: ptr.To(true)}}
}

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
}

// createPod creates a running pod with an IP, as the kubelet would report it.
func createPod(namespace, name, ip string, labels map[string]string, owners []metav1.OwnerReference) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels, OwnerReferences: owners},
		Spec: corev1.PodSpec{NodeName: testNode, Containers: []corev1.Container{{
			Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{ContainerPort: 80}},
		}}},
	}
	Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())
	waitResolvable(ip)
	return pod
}

// waitResolvable waits until the resolver has seen the pod with ip.
func waitResolvable(ip string) {
	addr := netip.MustParseAddr(ip)
	Eventually(func() bool {
		_, ok := dataPath.Resolver.WorkloadAt(addr, time.Now())
		return ok
	}).Should(BeTrue(), "resolver never saw a pod with IP %s", ip)
}

// createDeployment creates Deployment → ReplicaSet → Pod, as the controllers would.
func createDeployment(namespace, name, ip string) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name),
		},
	}
	Expect(k8sClient.Create(ctx, d)).To(Succeed())
	const hash = "5d8f7c9b4"
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-" + hash, Namespace: namespace, OwnerReferences: ownerRef(d, "Deployment", "apps/v1")},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name),
		},
	}
	Expect(k8sClient.Create(ctx, rs)).To(Succeed())
	labels := map[string]string{"app": name, "pod-template-hash": hash}
	createPod(namespace, rs.Name+"-x7k2p", ip, labels, ownerRef(rs, "ReplicaSet", "apps/v1"))
}

// createService creates a ClusterIP Service selecting app=name; the API server picks the IP.
func createService(namespace, name string, port int32) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Port: port}},
		},
	}
	Expect(k8sClient.Create(ctx, svc)).To(Succeed())
	Expect(svc.Spec.ClusterIP).NotTo(BeEmpty())
	return svc
}

// createCronJobPod creates CronJob → Job → Pod.
func createCronJobPod(namespace, name, ip string) *corev1.Pod {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: restartNever(podTemplate(name))},
		}},
	}
	Expect(k8sClient.Create(ctx, cj)).To(Succeed())
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-29012345", Namespace: namespace, OwnerReferences: ownerRef(cj, "CronJob", "batch/v1")},
		Spec:       batchv1.JobSpec{Template: restartNever(podTemplate(name))},
	}
	job.Spec.Template.Labels = map[string]string{"app": name, "batch.kubernetes.io/job-name": job.Name}
	Expect(k8sClient.Create(ctx, job)).To(Succeed())
	return createPod(namespace, job.Name+"-q8w2z", ip, map[string]string{"app": name}, ownerRef(job, "Job", "batch/v1"))
}

func restartNever(t corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return t
}

// token asks the API server for a token of a ServiceAccount bound to no pod.
func token(namespace, account, audience string) string {
	return requestToken(namespace, account, audience, nil)
}

// requestToken asks the API server for a token of a ServiceAccount, bound to a pod
// when bound is set, as the kubelet's projected volume does.
func requestToken(namespace, account, audience string, bound *corev1.Pod) string {
	cs, err := kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: account, Namespace: namespace}}
	if err := k8sClient.Create(ctx, sa); err != nil {
		Expect(client.IgnoreAlreadyExists(err)).To(Succeed())
	}
	spec := authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}
	if audience != "" { // none: the API server's own
		spec.Audiences = []string{audience}
	}
	if bound != nil {
		spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: bound.Name, UID: bound.UID}
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, account, &authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

// agentPod is the agent's pod on a node, created once: the pod its tokens are bound to.
func agentPod(node string) *corev1.Pod {
	pod := &corev1.Pod{}
	key := client.ObjectKey{Namespace: managerNamespace, Name: "agent-" + node}
	if err := k8sClient.Get(ctx, key, pod); err == nil {
		return pod
	}
	token(managerNamespace, agentAccount, "intent-mapper") // makes the ServiceAccount
	pod = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: agentAccount, HostNetwork: true,
			Containers: []corev1.Container{{Name: "agent", Image: "intent-mapper:test"}}},
	}
	Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	return pod
}

// agentTokenOn is a token of the agent's pod on node, as its projected volume holds.
func agentTokenOn(node string) string {
	return requestToken(managerNamespace, agentAccount, "intent-mapper", agentPod(node))
}

// agentToken is the token of the agent on the test's node.
func agentToken() string { return agentTokenOn(testNode) }

// ingestClient trusts only the CA the manager published, as an agent does.
func ingestClient() *http.Client {
	cm := &corev1.ConfigMap{}
	Eventually(func() error {
		return k8sClient.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: "intent-mapper-ca"}, cm)
	}).Should(Succeed())
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM([]byte(cm.Data[certs.CAKey]))).To(BeTrue())
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: ingestHost, MinVersion: tls.VersionTLS12},
	}}
}

// post sends a body to the ingest endpoint and returns the status code.
func post(body []byte, bearer string, gzipped bool) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+ingestAddr+"/v1/reports", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	var resp *http.Response
	Eventually(func() error { // the server starts with the manager
		resp, err = ingestClient().Do(req.Clone(ctx))
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}).Should(Succeed())
	return resp.StatusCode
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	Expect(err).NotTo(HaveOccurred())
	Expect(zw.Close()).To(Succeed())
	return buf.Bytes()
}

func reportJSON(rep *reportv1.Report) []byte {
	rep.Version, rep.Node, rep.AgentTime = reportv1.Version, testNode, time.Now()
	b, err := json.Marshal(rep)
	Expect(err).NotTo(HaveOccurred())
	return b
}

// send posts a report the way the agent does (gzip, its token) and expects it taken.
func send(rep *reportv1.Report) {
	Expect(post(gzipped(reportJSON(rep)), agentToken(), true)).To(Equal(http.StatusAccepted))
}

func conn(from, to string, port uint16, at time.Time) reportv1.Connection {
	return reportv1.Connection{Client: netip.MustParseAddr(from), Server: netip.MustParseAddr(to), Port: port, Time: at}
}

// intents returns the DiscoveredIntents of a client, as kubectl get would.
func intents(g Gomega, namespace, name string) *discoveryv1alpha1.DiscoveredIntents {
	di := &discoveryv1alpha1.DiscoveredIntents{}
	g.ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, di)).To(Succeed())
	return di
}

// callTo returns a client's call to a server, or fails.
func callTo(g Gomega, di *discoveryv1alpha1.DiscoveredIntents, namespace, name string) discoveryv1alpha1.Call {
	c := di.Status.Find(namespace, name)
	g.ExpectWithOffset(1, c).NotTo(BeNil(), fmt.Sprintf("no call to %s/%s in %v", namespace, name, di.Status.Calls))
	return *c
}
