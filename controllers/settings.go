package controllers

import (
	"sync"
	"time"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/pending"
)

// Settings are the manager's tunables: its flags, overridden by IntentMapper's spec
// while one exists. Safe for concurrent use.
type Settings struct {
	mu       sync.RWMutex
	defaults settingsValues
	current  settingsValues
}

type settingsValues struct {
	merge pending.MergeOptions
	flush time.Duration
	kafka []discoveryv1alpha1.KafkaServer
}

// NewSettings starts from the flags' values.
func NewSettings(merge pending.MergeOptions, flush time.Duration) *Settings {
	v := settingsValues{merge: merge, flush: flush}
	return &Settings{defaults: v, current: v}
}

// Get returns the merge options and flush interval in force.
func (s *Settings) Get() (pending.MergeOptions, time.Duration) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current.merge, s.current.flush
}

// Apply takes IntentMapper's spec; nil goes back to the flags.
func (s *Settings) Apply(spec *discoveryv1alpha1.IntentMapperSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.defaults
	if spec != nil {
		if d := spec.Intervals.Flush; d != nil && d.Duration > 0 {
			v.flush = d.Duration
		}
		if d := spec.Intervals.LastSeenStep; d != nil && d.Duration > 0 {
			v.merge.Step = d.Duration
		}
		if spec.Retention != nil {
			v.merge.Retention = spec.Retention.Duration
		}
		if spec.MaxPathsPerCall > 0 {
			v.merge.MaxPaths = int(spec.MaxPathsPerCall)
		}
		v.kafka = spec.Kafka
	}
	s.current = v
}

// KafkaServers returns the Kafka brokers whose logs are read.
func (s *Settings) KafkaServers() []discoveryv1alpha1.KafkaServer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current.kafka
}
