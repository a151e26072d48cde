package controllers

import (
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportv1 "github.com/intent-mapper/intent-mapper/api/report/v1"
	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

var _ = Describe("IntentMapper", Ordered, func() {
	var im *discoveryv1alpha1.IntentMapper
	agentKey := client.ObjectKey{Namespace: managerNamespace, Name: agentAccount}
	daemonSet := func(g Gomega) *appsv1.DaemonSet {
		ds := &appsv1.DaemonSet{}
		g.ExpectWithOffset(1, k8sClient.Get(ctx, agentKey, ds)).To(Succeed())
		return ds
	}

	BeforeAll(func() {
		im = &discoveryv1alpha1.IntentMapper{ObjectMeta: metav1.ObjectMeta{Name: discoveryv1alpha1.SingletonName}}
		im.Spec.Agent.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		Expect(k8sClient.Create(ctx, im)).To(Succeed())
	})
	AfterAll(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, im))).To(Succeed())
	})

	It("deploys the agents with the least they need", func() {
		Eventually(func(g Gomega) {
			ds := daemonSet(g)
			pod := ds.Spec.Template.Spec
			g.Expect(pod.HostNetwork).To(BeTrue())
			g.Expect(pod.HostPID).To(BeTrue())
			g.Expect(pod.DNSPolicy).To(Equal(corev1.DNSClusterFirstWithHostNet))
			g.Expect(pod.ServiceAccountName).To(Equal(agentAccount))
			g.Expect(pod.Tolerations).To(HaveLen(1))
			c := pod.Containers[0]
			g.Expect(c.Image).To(Equal("intent-mapper:test"))
			g.Expect(c.ImagePullPolicy).To(Equal(corev1.PullIfNotPresent), "Kubernetes' rule for a tagged image, written out")
			g.Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
			g.Expect(c.SecurityContext.Capabilities.Add).To(ConsistOf(corev1.Capability("NET_RAW"), corev1.Capability("SYS_PTRACE")))
			g.Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
			g.Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
			g.Expect(c.VolumeMounts).To(ContainElement(corev1.VolumeMount{Name: "host-proc", MountPath: "/host/proc", ReadOnly: true}))
			g.Expect(c.Resources.Limits.Memory().String()).To(Equal("192Mi"))
			g.Expect(c.Env).To(ContainElement(HaveField("ValueFrom.ResourceFieldRef", HaveValue(And(
				HaveField("Resource", "limits.memory"), HaveField("Divisor.String()", "1"))))), "the agent's GC learns the limit, in bytes")
			for _, probe := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				g.Expect(probe).NotTo(BeNil())
				g.Expect(probe.HTTPGet).To(BeNil(), "the agent is on the host network: no probe port on the node's addresses")
				g.Expect(probe.Exec.Command).To(Equal([]string{"/intent-mapper-agent", "probe", "--heartbeat-file=/run/intent-mapper/heartbeat", "--max-age=1m5s"}))
			}
			g.Expect(c.Command).To(Equal([]string{"/intent-mapper-agent"}), "the agent-only binary: a node pays for no manager code")
			g.Expect(c.Args).To(ContainElement("--heartbeat-file=/run/intent-mapper/heartbeat"))
			g.Expect(c.VolumeMounts).To(ContainElement(corev1.VolumeMount{Name: "run", MountPath: "/run/intent-mapper"}))
			g.Expect(c.Args).To(ContainElements("--proc-root=/host/proc", "--report-interval=10s", "--istio=true", "--ambient=false"))
			var token *corev1.ServiceAccountTokenProjection
			for _, v := range pod.Volumes {
				if v.Projected != nil {
					token = v.Projected.Sources[0].ServiceAccountToken
				}
			}
			g.Expect(token).NotTo(BeNil())
			g.Expect(token.Audience).To(Equal("intent-mapper"))
			g.Expect(token.ExpirationSeconds).To(HaveValue(BeNumerically("==", 600)), "short-lived, rotated by the kubelet")
			g.Expect(c.Args).To(ContainElement("--metrics-bind-address=127.0.0.1:9464"), "no unauthenticated metrics on the node's addresses")
			g.Expect(metav1.IsControlledBy(ds, im)).To(BeTrue())

			sa, svc := &corev1.ServiceAccount{}, &corev1.Service{}
			g.Expect(k8sClient.Get(ctx, agentKey, sa)).To(Succeed())
			g.Expect(metav1.IsControlledBy(sa, im)).To(BeTrue())
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: "intent-mapper-ingest"}, svc)).To(Succeed())
			g.Expect(metav1.IsControlledBy(svc, im)).To(BeTrue())
			g.Expect(svc.Spec.Selector).To(HaveKeyWithValue(LabelIngestLeader, "true"), "reports go to the leader alone")
		}).Should(Succeed())
	})

	It("writes the agents' pull policy it is given, and the CRD refuses one Kubernetes does not know", func() {
		setPolicy := func(p corev1.PullPolicy) error {
			return retry.RetryOnConflict(retry.DefaultRetry, func() error {
				Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(im), im)).To(Succeed())
				im.Spec.Agent.ImagePullPolicy = p
				return k8sClient.Update(ctx, im)
			})
		}
		Expect(setPolicy(corev1.PullNever)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(daemonSet(g).Spec.Template.Spec.Containers[0].ImagePullPolicy).To(Equal(corev1.PullNever))
		}).Should(Succeed())
		Expect(setPolicy("Sometimes")).To(MatchError(ContainSubstring("imagePullPolicy")))
		Expect(setPolicy("")).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(daemonSet(g).Spec.Template.Spec.Containers[0].ImagePullPolicy).To(Equal(corev1.PullIfNotPresent))
		}).Should(Succeed())
	})

	It("reports the agents as the DaemonSet counts them", func() {
		setStatus := func(desired, ready int32) {
			Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
				ds := daemonSet(Default)
				ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: desired, CurrentNumberScheduled: desired, UpdatedNumberScheduled: desired,
					NumberReady: ready, NumberAvailable: ready, ObservedGeneration: ds.Generation}
				return k8sClient.Status().Update(ctx, ds)
			})).To(Succeed())
		}
		expect := func(desired, ready int32, available metav1.ConditionStatus) {
			Eventually(func(g Gomega) {
				got := &discoveryv1alpha1.IntentMapper{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(im), got)).To(Succeed())
				g.Expect(got.Status.DesiredAgents).To(Equal(desired))
				g.Expect(got.Status.ReadyAgents).To(Equal(ready))
				g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
				g.Expect(meta.FindStatusCondition(got.Status.Conditions, ConditionAvailable).Status).To(Equal(available))
				g.Expect(meta.IsStatusConditionFalse(got.Status.Conditions, ConditionDegraded)).To(BeTrue())
				g.Expect(meta.IsStatusConditionFalse(got.Status.Conditions, ConditionProgressing)).To(BeTrue())
			}).Should(Succeed())
		}
		setStatus(3, 2)
		expect(3, 2, metav1.ConditionFalse)
		setStatus(3, 3)
		expect(3, 3, metav1.ConditionTrue)
	})

	It("tells agents that run from agents that report", func() {
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(im), im)).To(Succeed())
			im.Spec.Intervals.Report = &metav1.Duration{Duration: time.Second} // a window of 3s
			return k8sClient.Update(ctx, im)
		})).To(Succeed())
		for _, node := range []string{"node-a", "node-b"} {
			pod := agentPod(node) // the pod its tokens are bound to, labelled as the DaemonSet's
			unlabelled := client.MergeFrom(pod.DeepCopy())
			pod.Labels = agentLabels()
			Expect(k8sClient.Patch(ctx, pod, unlabelled)).To(Succeed())
			DeferCleanup(func() {
				labelled := client.MergeFrom(pod.DeepCopy())
				pod.Labels = nil
				Expect(k8sClient.Patch(ctx, pod, labelled)).To(Succeed())
			})
		}
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			ds := daemonSet(Default)
			ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, UpdatedNumberScheduled: 2,
				NumberReady: 2, NumberAvailable: 2, ObservedGeneration: ds.Generation}
			return k8sClient.Status().Update(ctx, ds)
		})).To(Succeed())
		get := func(g Gomega) *discoveryv1alpha1.IntentMapper {
			got := &discoveryv1alpha1.IntentMapper{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(im), got)).To(Succeed())
			return got
		}

		By("agents Ready, but silent")
		Eventually(func(g Gomega) {
			got := get(g)
			g.Expect(got.Status.ReadyAgents).To(Equal(int32(2)))
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, ConditionAvailable)).To(BeTrue())
			g.Expect(got.Status.ReportingAgents).To(BeZero())
			c := meta.FindStatusCondition(got.Status.Conditions, ConditionAgentsReporting)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal("AgentsSilent"))
			g.Expect(c.Message).To(HavePrefix("0 of 2 agents reported in the last 3s; silent: node-a, node-b"))
			g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
		}).Should(Succeed())

		By("one agent reporting")
		reportFrom := func(node string) {
			body, err := json.Marshal(&reportv1.Report{Version: reportv1.Version, Node: node, AgentTime: time.Now()})
			Expect(err).NotTo(HaveOccurred())
			Expect(post(body, agentTokenOn(node), false)).To(Equal(http.StatusAccepted))
		}
		Eventually(func(g Gomega) {
			reportFrom("node-a")
			c := meta.FindStatusCondition(get(g).Status.Conditions, ConditionAgentsReporting)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(HavePrefix("1 of 2 agents reported in the last 3s; silent: node-b"))
		}).Should(Succeed())

		By("both reporting")
		Eventually(func(g Gomega) {
			reportFrom("node-a")
			reportFrom("node-b")
			got := get(g)
			g.Expect(got.Status.ReportingAgents).To(Equal(int32(2)))
			c := meta.FindStatusCondition(got.Status.Conditions, ConditionAgentsReporting)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal("AgentsReporting"))
		}).Should(Succeed())
	})

	It("rolls the agents when the spec changes, and puts back a hand edit", func() {
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(im), im)).To(Succeed())
			im.Spec.Intervals.Report = &metav1.Duration{Duration: 30 * time.Second}
			im.Spec.Agent.Sources.Ambient = ptr.To(true)
			return k8sClient.Update(ctx, im)
		})).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(daemonSet(g).Spec.Template.Spec.Containers[0].Args).To(ContainElements("--report-interval=30s", "--ambient=true"))
		}).Should(Succeed())

		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			ds := daemonSet(Default)
			ds.Spec.Template.Spec.HostPID = false
			ds.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add = append(ds.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add, "SYS_ADMIN")
			return k8sClient.Update(ctx, ds)
		})).To(Succeed())
		Eventually(func(g Gomega) {
			pod := daemonSet(g).Spec.Template.Spec
			g.Expect(pod.HostPID).To(BeTrue())
			g.Expect(pod.Containers[0].SecurityContext.Capabilities.Add).To(ConsistOf(corev1.Capability("NET_RAW"), corev1.Capability("SYS_PTRACE")))
		}).Should(Succeed())
	})

	It("hands its settings to the manager", func() {
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(im), im)).To(Succeed())
			im.Spec.MaxPathsPerCall = 7
			im.Spec.Intervals.LastSeenStep = &metav1.Duration{Duration: 10 * time.Minute}
			return k8sClient.Update(ctx, im)
		})).To(Succeed())
		Eventually(func(g Gomega) {
			merge, _ := dataPath.Settings.Get()
			g.Expect(merge.MaxPaths).To(Equal(7))
			g.Expect(merge.Step).To(Equal(10 * time.Minute))
		}).Should(Succeed())
	})

	It("keeps an installer's labels on the ServiceAccount and Service it adopts", func() {
		// Helm installs both from the chart and deletes only what its label says is the release's.
		for _, obj := range []client.Object{&corev1.ServiceAccount{}, &corev1.Service{}} {
			key := client.ObjectKey{Namespace: managerNamespace, Name: agentAccount}
			if _, ok := obj.(*corev1.Service); ok {
				key.Name = "intent-mapper-ingest"
			}
			Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
				Expect(k8sClient.Get(ctx, key, obj)).To(Succeed())
				labels := obj.GetLabels()
				labels["app.kubernetes.io/managed-by"] = "Helm"
				delete(labels, labelComponent) // the reconciler puts its own back
				obj.SetLabels(labels)
				return k8sClient.Update(ctx, obj)
			})).To(Succeed())
			Eventually(func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, key, obj)).To(Succeed())
				g.Expect(obj.GetLabels()).To(HaveKey(labelComponent), "reconciled again")
				g.Expect(obj.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"))
			}).Should(Succeed(), "%T %s", obj, key)
		}
	})

	It("owns only what it created: deleting it leaves DiscoveredIntents alone", func() {
		namespace := newNamespace()
		di := newDiscoveredIntents(namespace)
		Expect(k8sClient.Create(ctx, di)).To(Succeed())
		Expect(k8sClient.Delete(ctx, im)).To(Succeed())
		Eventually(func(g Gomega) {
			merge, _ := dataPath.Settings.Get()
			g.Expect(merge.MaxPaths).To(Equal(100), "the flags rule again")
		}).Should(Succeed())
		// envtest runs no garbage collector: the owner references are what it would follow.
		ds := daemonSet(Default)
		Expect(ds.OwnerReferences).To(ConsistOf(HaveField("UID", im.UID)))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(di), di)).To(Succeed())
		Expect(di.OwnerReferences).To(BeEmpty())
	})
})
