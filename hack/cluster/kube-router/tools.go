//go:build tools

// Package tools pins kube-router's main package into this module's graph (test use only:
// v2.1.0 has reported security flaws).
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
