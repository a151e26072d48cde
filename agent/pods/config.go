// Package pods watches one node's pods from the API server with plain HTTP, so the
// node agent needs no Kubernetes client library: it reads a handful of fields of a
// few hundred pods, and client-go's typed clients and schemes cost it most of its
// memory (issue 17).
package pods

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Where a pod's ServiceAccount credentials are mounted.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Config says how to reach the API server.
type Config struct {
	// Server is the API server's base URL.
	Server string
	TLS    *tls.Config
	// Token is a bearer token; TokenFile, when set, is read at each request instead,
	// since projected tokens rotate.
	Token     string
	TokenFile string
}

// InCluster is the pod's own ServiceAccount, as the kubelet mounts it.
func InCluster() (*Config, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset")
	}
	ca, err := os.ReadFile(filepath.Join(serviceAccountDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	t, err := tlsConfig(ca, nil, nil)
	if err != nil {
		return nil, err
	}
	return &Config{Server: "https://" + net.JoinHostPort(host, port), TLS: t, TokenFile: filepath.Join(serviceAccountDir, "token")}, nil
}

// kubeconfig holds the fields of a kubeconfig file this package reads.
type kubeconfig struct {
	CurrentContext string `yaml:"current-context"`
	Contexts       []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
			User    string `yaml:"user"`
		} `yaml:"context"`
	} `yaml:"contexts"`
	Clusters []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server     string `yaml:"server"`
			CA         string `yaml:"certificate-authority"`
			CAData     string `yaml:"certificate-authority-data"`
			ServerName string `yaml:"tls-server-name"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			Cert      string `yaml:"client-certificate"`
			CertData  string `yaml:"client-certificate-data"`
			Key       string `yaml:"client-key"`
			KeyData   string `yaml:"client-key-data"`
			Token     string `yaml:"token"`
			TokenFile string `yaml:"tokenFile"`
		} `yaml:"user"`
	} `yaml:"users"`
}

// FromKubeconfig reads the current context of a kubeconfig file: server, CA, and a
// client certificate or token. Exec plugins and auth providers are not supported.
func FromKubeconfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(raw, &kc); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, c := range kc.Contexts {
		if c.Name != kc.CurrentContext {
			continue
		}
		cfg := &Config{}
		var ca, cert, key []byte
		var serverName string
		for _, cl := range kc.Clusters {
			if cl.Name == c.Context.Cluster {
				cfg.Server, serverName = cl.Cluster.Server, cl.Cluster.ServerName
				if ca, err = dataOrFile(cl.Cluster.CAData, cl.Cluster.CA, dir); err != nil {
					return nil, err
				}
			}
		}
		for _, u := range kc.Users {
			if u.Name == c.Context.User {
				if cert, err = dataOrFile(u.User.CertData, u.User.Cert, dir); err != nil {
					return nil, err
				}
				if key, err = dataOrFile(u.User.KeyData, u.User.Key, dir); err != nil {
					return nil, err
				}
				cfg.Token, cfg.TokenFile = u.User.Token, resolve(u.User.TokenFile, dir)
			}
		}
		if cfg.Server == "" {
			return nil, fmt.Errorf("kubeconfig %s: context %q names no cluster with a server", path, c.Name)
		}
		if cfg.TLS, err = tlsConfig(ca, cert, key); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		cfg.TLS.ServerName = serverName
		return cfg, nil
	}
	return nil, fmt.Errorf("kubeconfig %s: no context named %q", path, kc.CurrentContext)
}

// dataOrFile is base64 data, or else the file it names (relative to the kubeconfig).
func dataOrFile(data, file, dir string) ([]byte, error) {
	if data != "" {
		return base64.StdEncoding.DecodeString(strings.TrimSpace(data))
	}
	if file == "" {
		return nil, nil
	}
	return os.ReadFile(resolve(file, dir))
}

func resolve(file, dir string) string {
	if file == "" || filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(dir, file)
}

// tlsConfig trusts ca (the system's roots when empty) and presents cert and key if given.
func tlsConfig(ca, cert, key []byte) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(ca) > 0 {
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(ca) {
			return nil, errors.New("no certificate in the CA bundle")
		}
	}
	if len(cert) > 0 || len(key) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}
