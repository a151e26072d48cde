//go:build tools

// Package tools pins kube-apiserver's main package into this module's graph.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
