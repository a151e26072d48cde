package resolve

import (
	"net/netip"
	"sync"
	"time"
)

// dnsGrace keeps a name for an IP past its TTL: connections outlive the answer that
// opened them, and the agent sees long-lived ones at every scan.
const dnsGrace = time.Hour

type dnsEntry struct {
	name    string
	expires time.Time
}

// dnsNames remembers, per client IP, which name each server IP was resolved from.
type dnsNames struct {
	mu         sync.Mutex
	byClient   map[netip.Addr]map[netip.Addr]dnsEntry
	perClient  int
	maxClients int
}

func newDNSNames(perClient, maxClients int) *dnsNames {
	return &dnsNames{byClient: map[netip.Addr]map[netip.Addr]dnsEntry{}, perClient: perClient, maxClients: maxClients}
}

// record remembers an answer. Beyond the bounds, expired entries go first, then any.
func (d *dnsNames) record(client netip.Addr, name string, ips []netip.Addr, ttl uint32, at time.Time) {
	expires := at.Add(time.Duration(ttl)*time.Second + dnsGrace)
	d.mu.Lock()
	defer d.mu.Unlock()
	names := d.byClient[client]
	if names == nil {
		if len(d.byClient) >= d.maxClients {
			for c := range d.byClient {
				delete(d.byClient, c)
				break
			}
		}
		names = map[netip.Addr]dnsEntry{}
		d.byClient[client] = names
	}
	for _, ip := range ips {
		if _, known := names[ip]; !known && len(names) >= d.perClient {
			evict(names, at)
		}
		names[ip.Unmap()] = dnsEntry{name: name, expires: expires}
	}
}

// evict makes room for one entry: the expired ones go, or else one at random.
func evict(names map[netip.Addr]dnsEntry, now time.Time) {
	before := len(names)
	for ip, e := range names {
		if e.expires.Before(now) {
			delete(names, ip)
		}
	}
	if len(names) < before {
		return
	}
	for ip := range names {
		delete(names, ip)
		return
	}
}

// lookup returns the name the client resolved server from, if still known at t.
func (d *dnsNames) lookup(client, server netip.Addr, at time.Time) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.byClient[client][server]
	if !ok || e.expires.Before(at) {
		return "", false
	}
	return e.name, true
}
