package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ReadFiles reads the policies in a file, or in every .yaml, .yml and .json file under
// a directory.
func ReadFiles(path string) (*Policies, error) {
	pols := &Policies{}
	err := filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if p != path && !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml") && !strings.HasSuffix(p, ".json") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := ParsePolicies(f, pols); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
	return pols, err
}

// DefaultNamespace puts policies that name no namespace in ns, as kubectl apply would.
func (p *Policies) DefaultNamespace(ns string) {
	for i := range p.Network {
		if p.Network[i].Namespace == "" {
			p.Network[i].Namespace = ns
		}
	}
	for _, ap := range p.Authorization {
		if ap.Namespace == "" {
			ap.Namespace = ns
		}
	}
}
