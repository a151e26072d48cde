//go:build tools

// Package tools pins etcd's main package into this module's graph.
package tools

import _ "go.etcd.io/etcd/server/v3"
