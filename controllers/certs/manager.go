package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Keys in the Secret and the ConfigMap.
const (
	CAKey   = "ca.crt"
	caKey   = "ca.key"
	certKey = corev1.TLSCertKey
	keyKey  = corev1.TLSPrivateKeyKey
)

// +kubebuilder:rbac:groups="",namespace=system,resources=secrets;configmaps,verbs=get;create;update

// SelfSigned keeps a CA and a serving certificate in a Secret, renews them before they
// expire, and publishes the CA in a ConfigMap that agents mount.
type SelfSigned struct {
	// Client writes; Reader reads directly from the API server, so that no cache of
	// every Secret in the cluster is needed.
	Client        client.Client
	Reader        client.Reader
	Namespace     string
	SecretName    string
	ConfigMapName string
	DNSNames      []string
	CALifetime    time.Duration
	CertLifetime  time.Duration
	// Check is how often to check for renewal.
	Check time.Duration
	// Elected closes when this replica leads; until then it only loads the Secret the
	// leader keeps, so that it can answer TLS while not leading. Nil: always leads.
	Elected <-chan struct{}

	current atomic.Pointer[tls.Certificate]
}

// GetCertificate serves the current certificate to TLS handshakes.
func (s *SelfSigned) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.current.Load(); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("no serving certificate yet")
}

// Start renews (when leading) or follows the leader's Secret until ctx ends.
func (s *SelfSigned) Start(ctx context.Context) error {
	for {
		wait := s.Check
		if s.leading() {
			if err := s.Ensure(ctx, time.Now()); err != nil {
				logf.FromContext(ctx).Error(err, "keeping the ingest certificate")
			}
		} else {
			if err := s.Load(ctx); err != nil {
				logf.FromContext(ctx).V(1).Info("no ingest certificate to follow yet", "reason", err.Error())
			}
			wait = min(wait, followEvery)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-s.Elected:
			timer.Stop()
			s.Elected = nil // closed: this replica leads from now on
		}
	}
}

// followEvery is how often a replica that does not lead reloads the leader's Secret.
const followEvery = time.Minute

func (s *SelfSigned) leading() bool {
	if s.Elected == nil {
		return true
	}
	select {
	case <-s.Elected:
		return true
	default:
		return false
	}
}

// NeedLeaderElection: every replica serves TLS; only the leader writes (see Elected).
func (s *SelfSigned) NeedLeaderElection() bool { return false }

// Load serves the certificate the Secret holds, without writing anything.
func (s *SelfSigned) Load(ctx context.Context) error {
	secret := &corev1.Secret{}
	if err := s.Reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.SecretName}, secret); err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(secret.Data[certKey], secret.Data[keyKey])
	if err != nil {
		return fmt.Errorf("secret %s: %w", s.SecretName, err)
	}
	s.current.Store(&cert)
	return nil
}

// Ensure makes the Secret hold a fresh CA and serving certificate, the ConfigMap the
// CA, and the server the certificate.
func (s *SelfSigned) Ensure(ctx context.Context, now time.Time) error {
	secret := &corev1.Secret{}
	err := s.Reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.SecretName}, secret)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	exists := err == nil
	ca := keyPair{secret.Data[CAKey], secret.Data[caKey]}
	serving := keyPair{secret.Data[certKey], secret.Data[keyKey]}
	caBundle := ca.certPEM

	renewed := false
	if !fresh(ca, now) {
		if ca, err = newCA("intent-mapper-ca", now, s.CALifetime); err != nil {
			return err
		}
		caBundle = append(append([]byte{}, ca.certPEM...), secret.Data[CAKey]...) // old CA trusted until agents reload
		renewed = true
	}
	if renewed || !fresh(serving, now) {
		if serving, err = newServing(ca, s.DNSNames, now, s.CertLifetime); err != nil {
			return err
		}
		renewed = true
	}
	if renewed {
		secret.Name, secret.Namespace, secret.Type = s.SecretName, s.Namespace, corev1.SecretTypeTLS
		secret.Data = map[string][]byte{CAKey: ca.certPEM, caKey: ca.keyPEM, certKey: serving.certPEM, keyKey: serving.keyPEM}
		if err := s.write(ctx, secret, exists); err != nil {
			return fmt.Errorf("writing Secret %s: %w", s.SecretName, err)
		}
	}
	if err := s.publishCA(ctx, caBundle); err != nil {
		return fmt.Errorf("publishing the CA in ConfigMap %s: %w", s.ConfigMapName, err)
	}
	cert, err := tls.X509KeyPair(serving.certPEM, serving.keyPEM)
	if err != nil {
		return err
	}
	s.current.Store(&cert)
	return nil
}

func (s *SelfSigned) publishCA(ctx context.Context, caPEM []byte) error {
	cm := &corev1.ConfigMap{}
	err := s.Reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.ConfigMapName}, cm)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err == nil && cm.Data[CAKey] == string(caPEM) {
		return nil
	}
	exists := err == nil
	cm.ObjectMeta = metav1.ObjectMeta{Name: s.ConfigMapName, Namespace: s.Namespace, ResourceVersion: cm.ResourceVersion, Labels: cm.Labels}
	cm.Data = map[string]string{CAKey: string(caPEM)}
	return s.write(ctx, cm, exists)
}

func (s *SelfSigned) write(ctx context.Context, obj client.Object, exists bool) error {
	if exists {
		return s.Client.Update(ctx, obj)
	}
	return s.Client.Create(ctx, obj)
}
