package certs

import (
	"crypto/tls"
	"os"
	"sync"
	"time"
)

// Files serves a certificate the user mounts, reloading it when the files change
// (as a mounted Secret does when it is rotated).
type Files struct {
	CertFile, KeyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
}

// GetCertificate serves the certificate in the files as they are now.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	info, err := os.Stat(f.CertFile)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cert != nil && info.ModTime().Equal(f.modTime) {
		return f.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, err
	}
	f.cert, f.modTime = &cert, info.ModTime()
	return f.cert, nil
}
