package pods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intent-mapper/intent-mapper/agent/metrics"
)

var watchErrors = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "intentmapper_agent_pod_watch_errors_total",
	Help: "Failed lists or watches of this node's pods (each is retried with backoff).",
})

func init() { metrics.Registry.MustRegister(watchErrors) }

// Pod is what the agent reads of a pod.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	Running         bool
	// IP is the pod's IP; invalid until one is assigned.
	IP netip.Addr
}

// The wire forms: only the fields read are decoded.
type (
	wireMeta struct {
		Name, Namespace, UID, ResourceVersion, Continue string
		Labels                                          map[string]string
	}
	wirePod struct {
		Metadata wireMeta
		Status   struct{ Phase, PodIP string }
	}
	wireList struct {
		Metadata wireMeta
		Items    []wirePod
	}
	wireEvent struct {
		Type   string
		Object json.RawMessage
	}
	// wireStatus is the object of an ERROR event.
	wireStatus struct {
		Code    int
		Reason  string
		Message string
	}
)

func (p *wirePod) pod() Pod {
	ip, _ := netip.ParseAddr(p.Status.PodIP)
	return Pod{Namespace: p.Metadata.Namespace, Name: p.Metadata.Name, Labels: p.Metadata.Labels, Running: p.Status.Phase == "Running", IP: ip}
}

// errExpired: the resource version watched from is too old; list again.
var errExpired = errors.New("resource version expired")

// How long a watch lasts before it is renewed, and the longest wait between retries.
const (
	watchSeconds = 300
	maxBackoff   = 30 * time.Second
)

// Watcher keeps the pods of one node, listed and then watched.
type Watcher struct {
	cfg    *Config
	client *http.Client
	node   string
	gone   func(Pod)
	// pageSize bounds the pods of one list response.
	pageSize int

	mu     sync.Mutex
	pods   map[string]Pod // by UID
	synced chan struct{}
	once   sync.Once
}

// NewWatcher watches node's pods (and only those: a field selector on spec.nodeName);
// gone is called with each pod deleted (or found missing at a new list).
func NewWatcher(cfg *Config, node string, gone func(Pod)) *Watcher {
	return &Watcher{cfg: cfg, client: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg.TLS, Proxy: http.ProxyFromEnvironment}},
		node: node, gone: gone, pageSize: 500, pods: map[string]Pod{}, synced: make(chan struct{})}
}

// Run lists and watches until ctx ends, retrying with backoff on errors.
func (w *Watcher) Run(ctx context.Context) {
	delay := time.Second
	for ctx.Err() == nil {
		err := w.listAndWatch(ctx)
		if err == nil || ctx.Err() != nil {
			delay = time.Second
			continue
		}
		watchErrors.Inc()
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, maxBackoff)
	}
}

// WaitSynced waits for the first list; false if ctx ends first.
func (w *Watcher) WaitSynced(ctx context.Context) bool {
	select {
	case <-w.synced:
		return true
	case <-ctx.Done():
		return false
	}
}

// List returns the node's pods, in no order.
func (w *Watcher) List() []Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Pod, 0, len(w.pods))
	for _, p := range w.pods {
		out = append(out, p)
	}
	return out
}

// listAndWatch lists, then watches from the list's version until the version
// expires (nil: list again) or an error.
func (w *Watcher) listAndWatch(ctx context.Context) error {
	rv, err := w.list(ctx)
	for err == nil {
		rv, err = w.watch(ctx, rv)
	}
	if errors.Is(err, errExpired) {
		return nil
	}
	return err
}

// list reads every pod of the node, a page at a time, and replaces the set.
func (w *Watcher) list(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fresh := map[string]Pod{}
	q := w.query()
	q.Set("limit", fmt.Sprint(w.pageSize))
	for {
		var page wireList
		if err := w.get(ctx, q, func(body io.Reader) error { return json.NewDecoder(body).Decode(&page) }); err != nil {
			return "", fmt.Errorf("listing pods: %w", err)
		}
		for i := range page.Items {
			fresh[page.Items[i].Metadata.UID] = page.Items[i].pod()
		}
		if page.Metadata.Continue == "" {
			w.replace(fresh)
			return page.Metadata.ResourceVersion, nil
		}
		q.Set("continue", page.Metadata.Continue)
	}
}

// watch follows changes from version rv; it returns the last version seen when the
// server ends the watch.
func (w *Watcher) watch(ctx context.Context, rv string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, watchSeconds*time.Second+time.Minute) // a stalled connection
	defer cancel()
	q := w.query()
	q.Set("watch", "true")
	q.Set("resourceVersion", rv)
	q.Set("allowWatchBookmarks", "true")
	q.Set("timeoutSeconds", fmt.Sprint(watchSeconds))
	err := w.get(ctx, q, func(body io.Reader) (err error) {
		rv, err = w.follow(body, rv)
		return err
	})
	return rv, err
}

// follow applies a stream of watch events; it returns the last version seen.
func (w *Watcher) follow(r io.Reader, rv string) (string, error) {
	dec := json.NewDecoder(r)
	for {
		var ev wireEvent
		if err := dec.Decode(&ev); errors.Is(err, io.EOF) {
			return rv, nil
		} else if err != nil {
			return rv, fmt.Errorf("watching pods: %w", err)
		}
		if ev.Type == "ERROR" {
			var st wireStatus
			_ = json.Unmarshal(ev.Object, &st)
			if st.Code == http.StatusGone {
				return rv, errExpired
			}
			return rv, fmt.Errorf("watching pods: %d %s: %s", st.Code, st.Reason, st.Message)
		}
		var p wirePod
		if err := json.Unmarshal(ev.Object, &p); err != nil {
			return rv, fmt.Errorf("watching pods: %s event: %w", ev.Type, err)
		}
		switch ev.Type {
		case "ADDED", "MODIFIED":
			w.set(p.Metadata.UID, p.pod())
		case "DELETED":
			w.remove(p.Metadata.UID)
		case "BOOKMARK":
		default:
			return rv, fmt.Errorf("watching pods: unknown event type %q", ev.Type)
		}
		if p.Metadata.ResourceVersion != "" {
			rv = p.Metadata.ResourceVersion
		}
	}
}

func (w *Watcher) query() url.Values {
	return url.Values{"fieldSelector": {"spec.nodeName=" + w.node}}
}

// get requests the node's pods with q and hands read the body of a 200 answer.
func (w *Watcher) get(ctx context.Context, q url.Values, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(w.cfg.Server, "/")+"/api/v1/pods?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	token := w.cfg.Token
	if w.cfg.TokenFile != "" {
		raw, err := os.ReadFile(w.cfg.TokenFile)
		if err != nil {
			return err
		}
		token = strings.TrimSpace(string(raw))
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusGone {
		return errExpired
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return read(resp.Body)
}

func (w *Watcher) replace(fresh map[string]Pod) {
	w.mu.Lock()
	var gone []Pod
	for uid, p := range w.pods {
		if _, ok := fresh[uid]; !ok {
			gone = append(gone, p)
		}
	}
	w.pods = fresh
	w.mu.Unlock()
	w.once.Do(func() { close(w.synced) })
	w.report(gone...)
}

func (w *Watcher) set(uid string, p Pod) {
	w.mu.Lock()
	w.pods[uid] = p
	w.mu.Unlock()
}

func (w *Watcher) remove(uid string) {
	w.mu.Lock()
	p, ok := w.pods[uid]
	delete(w.pods, uid)
	w.mu.Unlock()
	if ok {
		w.report(p)
	}
}

func (w *Watcher) report(gone ...Pod) {
	if w.gone == nil {
		return
	}
	for _, p := range gone {
		w.gone(p)
	}
}
