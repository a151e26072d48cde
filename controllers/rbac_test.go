package controllers

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// applyRBAC applies the ServiceAccounts and roles config/default installs.
func applyRBAC() {
	var rbac []*unstructured.Unstructured
	for _, o := range kustomizeBuild("../config/default") {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			rbac = append(rbac, o)
		}
	}
	apply(rbac)
}

// bindClusterRole binds a ClusterRole to a ServiceAccount cluster-wide.
func bindClusterRole(role, namespace, account string) {
	token(namespace, account, "") // makes the ServiceAccount
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role + "-" + namespace + "-" + account},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: account}},
	}
	Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, crb))).To(Succeed())
}

// mayDo asks the API server's authorizer whether a ServiceAccount may do something.
func mayDo(namespace, account string, attrs *authorizationv1.ResourceAttributes, path string) bool {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               "system:serviceaccount:" + namespace + ":" + account,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
		ResourceAttributes: attrs,
	}}
	if path != "" {
		sar.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: path, Verb: "get"}
	}
	Expect(k8sClient.Create(ctx, sar)).To(Succeed())
	return sar.Status.Allowed
}

var _ = Describe("the manager's metrics", func() {
	It("are served over HTTPS to callers bound to metrics-reader, and to no one else", func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		addr := ln.Addr().String()
		Expect(ln.Close()).To(Succeed())
		httpClient, err := rest.HTTPClientFor(cfg)
		Expect(err).NotTo(HaveOccurred())
		srv, err := metricsserver.NewServer(MetricsOptions(addr, true), cfg, httpClient)
		Expect(err).NotTo(HaveOccurred())
		sctx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() { defer GinkgoRecover(); Expect(srv.Start(sctx)).To(Succeed()) }()

		scrape := func(bearer string) (int, string) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
			Expect(err).NotTo(HaveOccurred())
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			// The test checks who is let in, not the self-signed certificate.
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
			var resp *http.Response
			Eventually(func() error { resp, err = c.Do(req); return err }).Should(Succeed())
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		namespace := newNamespace()
		applyRBAC()
		bindClusterRole("intent-mapper-metrics-reader", namespace, "prometheus")
		Eventually(func() bool { return mayDo(namespace, "prometheus", nil, "/metrics") }).Should(BeTrue())

		status, _ := scrape("")
		Expect(status).To(Equal(http.StatusUnauthorized), "no token")
		status, _ = scrape(token(namespace, "stranger", ""))
		Expect(status).To(Equal(http.StatusForbidden), "a ServiceAccount not bound to metrics-reader")
		status, body := scrape(token(namespace, "prometheus", ""))
		Expect(status).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring("# TYPE "))
	})
})

var _ = Describe("the manager's access to broker logs", func() {
	const managerAccount = "intent-mapper-controller-manager"
	podLogs := func(namespace string) *authorizationv1.ResourceAttributes {
		return &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: "get", Resource: "pods", Subresource: "log"}
	}

	It("reaches pods/log in the namespaces spec.kafka names and nowhere else", func() {
		By("installing the RBAC of config/default")
		applyRBAC()
		elsewhere, brokers := newNamespace(), newNamespace()
		Eventually(func() bool {
			return mayDo(managerNamespace, managerAccount, &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"}, "")
		}).Should(BeTrue(), "the manager's role is in force")
		Expect(mayDo(managerNamespace, managerAccount, podLogs(brokers), "")).To(BeFalse(), "no broker named yet")

		By("naming a broker namespace in IntentMapper")
		im := &discoveryv1alpha1.IntentMapper{ObjectMeta: metav1.ObjectMeta{Name: discoveryv1alpha1.SingletonName}}
		im.Spec.Kafka = []discoveryv1alpha1.KafkaServer{{Namespace: brokers, Name: "kafka"}}
		Expect(k8sClient.Create(ctx, im)).To(Succeed())
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, im))).To(Succeed())
			Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(im), im) }).Should(MatchError(ContainSubstring("not found")))
		})
		Eventually(func() bool { return mayDo(managerNamespace, managerAccount, podLogs(brokers), "") }).Should(BeTrue())
		Expect(mayDo(managerNamespace, managerAccount, podLogs(elsewhere), "")).To(BeFalse())
		Expect(mayDo(managerNamespace, managerAccount, podLogs(managerNamespace), "")).To(BeFalse())

		By("the manager's own role binding broker-logs, but not a role it does not hold")
		asManager := rest.CopyConfig(cfg)
		asManager.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + managerNamespace + ":" + managerAccount,
			Groups: []string{"system:serviceaccounts", "system:authenticated"}}
		mc, err := client.New(asManager, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		binding := func(role string) *rbacv1.RoleBinding {
			return &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "try-" + role, Namespace: elsewhere},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: managerNamespace, Name: managerAccount}},
			}
		}
		Expect(mc.Create(ctx, binding(DefaultBrokerLogsRole))).To(Succeed())
		Expect(mc.Create(ctx, binding("cluster-admin"))).NotTo(Succeed(), "bind is granted on broker-logs alone")

		By("dropping the broker namespace from IntentMapper")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(im), im)).To(Succeed())
		before := im.DeepCopy()
		im.Spec.Kafka = nil
		Expect(k8sClient.Patch(ctx, im, client.MergeFrom(before))).To(Succeed())
		Eventually(func() bool { return mayDo(managerNamespace, managerAccount, podLogs(brokers), "") }).Should(BeFalse())
	})
})
