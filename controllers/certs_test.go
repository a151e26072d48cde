package controllers

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/intent-mapper/intent-mapper/controllers/certs"
)

// caCerts reads the certificates of a PEM bundle.
func caCerts(bundle string) []*x509.Certificate {
	var out []*x509.Certificate
	rest := []byte(bundle)
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return out
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		Expect(err).NotTo(HaveOccurred())
		out = append(out, cert)
	}
}

var _ = Describe("the ingest certificate", func() {
	It("is made, kept while fresh, renewed before expiry, and its CA published", func() {
		namespace := newNamespace()
		s := &certs.SelfSigned{
			Client: k8sClient, Reader: k8sClient, Namespace: namespace,
			SecretName: "tls", ConfigMapName: "ca", DNSNames: []string{"ingest." + namespace + ".svc"},
			CALifetime: 365 * 24 * time.Hour, CertLifetime: 90 * 24 * time.Hour,
		}
		now := time.Now()
		Expect(s.Ensure(ctx, now)).To(Succeed())
		secret, cm := &corev1.Secret{}, &corev1.ConfigMap{}
		read := func() {
			Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "tls"}, secret)).To(Succeed())
			Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "ca"}, cm)).To(Succeed())
		}
		read()
		serving, err := s.GetCertificate(nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(serving.Leaf.DNSNames).To(ConsistOf("ingest." + namespace + ".svc"))
		cas := caCerts(cm.Data[certs.CAKey])
		Expect(cas).To(HaveLen(1))
		Expect(serving.Leaf.CheckSignatureFrom(cas[0])).To(Succeed(), "agents trusting the published CA trust the server")

		By("keeping a fresh certificate")
		version := secret.ResourceVersion
		Expect(s.Ensure(ctx, now.Add(24*time.Hour))).To(Succeed())
		read()
		Expect(secret.ResourceVersion).To(Equal(version))

		By("renewing the serving certificate with a third of its life left")
		Expect(s.Ensure(ctx, now.Add(70*24*time.Hour))).To(Succeed())
		renewed, err := s.GetCertificate(nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(renewed.Leaf.SerialNumber).NotTo(Equal(serving.Leaf.SerialNumber))
		Expect(renewed.Leaf.CheckSignatureFrom(cas[0])).To(Succeed(), "same CA")

		By("rotating the CA, publishing old and new while agents reload")
		Expect(s.Ensure(ctx, now.Add(300*24*time.Hour))).To(Succeed())
		read()
		bundle := caCerts(cm.Data[certs.CAKey])
		Expect(bundle).To(HaveLen(2))
		Expect(bundle[1].Equal(cas[0])).To(BeTrue())
		rotated, err := s.GetCertificate(nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(rotated.Leaf.CheckSignatureFrom(bundle[0])).To(Succeed())
	})

	It("can be the user's own, reloaded when the files change", func() {
		namespace := newNamespace()
		dir := GinkgoT().TempDir()
		write := func(name string) string {
			s := &certs.SelfSigned{Client: k8sClient, Reader: k8sClient, Namespace: namespace, SecretName: name, ConfigMapName: name,
				DNSNames: []string{name + ".example"}, CALifetime: time.Hour, CertLifetime: time.Hour}
			Expect(s.Ensure(ctx, time.Now())).To(Succeed())
			secret := &corev1.Secret{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "tls.crt"), secret.Data[corev1.TLSCertKey], 0o600)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "tls.key"), secret.Data[corev1.TLSPrivateKeyKey], 0o600)).To(Succeed())
			return name + ".example"
		}
		files := &certs.Files{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
		first := write("first")
		cert, err := files.GetCertificate(nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(cert.Leaf.DNSNames).To(ConsistOf(first))

		second := write("second")
		later := time.Now().Add(time.Minute)
		Expect(os.Chtimes(files.CertFile, later, later)).To(Succeed())
		cert, err = files.GetCertificate(nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(cert.Leaf.DNSNames).To(ConsistOf(second))
	})
})
