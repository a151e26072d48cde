package v1

import (
	"errors"
	"fmt"
	"time"
)

// Limits on what one report may hold, so a single request cannot exhaust the manager.
const (
	MaxObservations = 200_000
	MaxNameLength   = 253
	MaxPathLength   = 4096
	MaxMethodLength = 32
	MaxAnswerIPs    = 64
)

// Validate reports the first thing wrong with a report, in words an operator can act on.
func (r *Report) Validate() error {
	if r.Version != Version {
		return fmt.Errorf("version %q is not %q", r.Version, Version)
	}
	if r.Node == "" || len(r.Node) > MaxNameLength {
		return errors.New("node must be a node name")
	}
	if n := r.Len(); n > MaxObservations {
		return fmt.Errorf("%d observations, more than %d", n, MaxObservations)
	}
	for i := range r.DNS {
		if err := r.DNS[i].validate(); err != nil {
			return fmt.Errorf("dns[%d]: %w", i, err)
		}
	}
	for i := range r.Connections {
		if err := r.Connections[i].validate(); err != nil {
			return fmt.Errorf("connections[%d]: %w", i, err)
		}
	}
	for i := range r.HTTP {
		if err := r.HTTP[i].validate(); err != nil {
			return fmt.Errorf("http[%d]: %w", i, err)
		}
	}
	for i := range r.Mesh {
		if err := r.Mesh[i].validate(); err != nil {
			return fmt.Errorf("mesh[%d]: %w", i, err)
		}
	}
	return nil
}

func (a *DNSAnswer) validate() error {
	switch {
	case !a.Client.IsValid():
		return errors.New("client address missing")
	case a.Name == "" || len(a.Name) > MaxNameLength:
		return errors.New("name must be a DNS name")
	case len(a.IPs) > MaxAnswerIPs:
		return fmt.Errorf("%d answers, more than %d", len(a.IPs), MaxAnswerIPs)
	}
	for _, ip := range a.IPs {
		if !ip.IsValid() {
			return errors.New("answer address missing")
		}
	}
	return validTime(a.Time)
}

func (c *Connection) validate() error {
	switch {
	case !c.Client.IsValid() || !c.Server.IsValid():
		return errors.New("client and server addresses are required")
	case c.Port == 0:
		return errors.New("server port missing")
	}
	return validTime(c.Time)
}

func (c *HTTPCall) validate() error {
	switch c.Reporter {
	case ReporterSource, ReporterDestination, ReporterWaypoint:
	default:
		return fmt.Errorf("reporter %q is not source, destination or waypoint", c.Reporter)
	}
	if err := c.Source.validate(); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if err := c.Destination.validate(); err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	switch {
	case len(c.Path) > MaxPathLength:
		return fmt.Errorf("path longer than %d", MaxPathLength)
	case len(c.Method) > MaxMethodLength:
		return fmt.Errorf("method longer than %d", MaxMethodLength)
	case len(c.DestinationService) > MaxNameLength:
		return errors.New("destination service name too long")
	case c.Count == 0:
		return errors.New("count must be positive")
	}
	return validTime(c.Time)
}

func (c *MeshCall) validate() error {
	if err := c.Source.validate(); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if err := c.Destination.validate(); err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	if c.Count == 0 {
		return errors.New("count must be positive")
	}
	return validTime(c.Time)
}

func (w Workload) validate() error {
	if w.Name == "" || w.Namespace == "" || len(w.Name) > MaxNameLength || len(w.Namespace) > 63 {
		return errors.New("workload needs a namespace and a name")
	}
	return nil
}

func validTime(t time.Time) error {
	if t.IsZero() {
		return errors.New("time missing")
	}
	return nil
}
