// Package certs gives the ingest server a TLS certificate: a self-signed CA and a
// serving certificate kept in a Secret, the CA published in a ConfigMap for agents,
// and renewal before expiry; or a certificate the user mounts from files.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// keyPair is a certificate with its key, in PEM.
type keyPair struct {
	certPEM []byte
	keyPEM  []byte
}

// newKey makes a P-256 key and a random 128-bit serial number for its certificate.
func newKey() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return key, serial, err
}

// newCA makes a self-signed CA valid for lifetime from now.
func newCA(commonName string, now time.Time, lifetime time.Duration) (keyPair, error) {
	key, serial, err := newKey()
	if err != nil {
		return keyPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return sign(tmpl, tmpl, key, key)
}

// newServing makes a serving certificate for dnsNames, signed by ca.
func newServing(ca keyPair, dnsNames []string, now time.Time, lifetime time.Duration) (keyPair, error) {
	caCert, caKey, err := parse(ca)
	if err != nil {
		return keyPair{}, fmt.Errorf("reading the CA: %w", err)
	}
	key, serial, err := newKey()
	if err != nil {
		return keyPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     dnsNames,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return sign(tmpl, caCert, key, caKey)
}

func sign(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) (keyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return keyPair{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func parse(kp keyPair) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certBlock, _ := pem.Decode(kp.certPEM)
	keyBlock, _ := pem.Decode(kp.keyPEM)
	if certBlock == nil || keyBlock == nil {
		return nil, nil, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// fresh reports whether a certificate is valid at now and will stay so for more than
// a third of its lifetime: renewal starts with a third left.
func fresh(kp keyPair, now time.Time) bool {
	cert, _, err := parse(kp)
	if err != nil {
		return false
	}
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	return now.After(cert.NotBefore) && cert.NotAfter.Sub(now) > lifetime/3
}
