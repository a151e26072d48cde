package kafka

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// maxLogLine bounds one log line; longer lines are skipped.
const maxLogLine = 64 << 10

// LogSource opens a container's log stream, following it, from a time on, each line
// prefixed by its timestamp (RFC 3339, nanoseconds) as the kubelet writes them.
type LogSource interface {
	Open(ctx context.Context, namespace, pod, container string, since time.Time) (io.ReadCloser, error)
}

// KubeLogs opens logs through the API server (pods/log).
type KubeLogs struct{ Client kubernetes.Interface }

// pods/log is granted only in the brokers' namespaces, by RoleBindings of the
// broker-logs ClusterRole that the IntentMapper reconciler keeps.

// Open follows a container's log with timestamps from since.
func (k KubeLogs) Open(ctx context.Context, namespace, pod, container string, since time.Time) (io.ReadCloser, error) {
	opts := &corev1.PodLogOptions{Follow: true, Timestamps: true, Container: container}
	if !since.IsZero() {
		opts.SinceTime = &metav1.Time{Time: since}
	}
	return k.Client.CoreV1().Pods(namespace).GetLogs(pod, opts).Stream(ctx)
}

// Follower follows one broker container's log across disconnects: it reopens from
// the last line it handled (the kubelet's sinceTime has whole seconds), and skips
// what it has handled already, so no line counts twice.
type Follower struct {
	Source                    LogSource
	Namespace, Pod, Container string
	// From is where a new follower starts; the lines before are not read.
	From time.Time
	// Retry is the wait before reopening a stream that ended.
	Retry time.Duration
	// Opened, if set, hears whether each attempt to open the stream worked (nil) or
	// why not.
	Opened func(error)

	last time.Time
}

// Run hands every new line to handle until ctx ends.
func (f *Follower) Run(ctx context.Context, handle func(at time.Time, line []byte)) {
	f.last = f.From
	for ctx.Err() == nil {
		stream, err := f.Source.Open(ctx, f.Namespace, f.Pod, f.Container, f.last.Truncate(time.Second))
		if f.Opened != nil && ctx.Err() == nil {
			f.Opened(err)
		}
		if err == nil {
			f.read(stream, handle)
			_ = stream.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(f.Retry):
		}
	}
}

func (f *Follower) read(stream io.Reader, handle func(time.Time, []byte)) {
	r := bufio.NewReaderSize(stream, maxLogLine)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // drop the rest of an overlong line
				_, err = r.ReadSlice('\n')
			}
			continue
		}
		if len(line) > 0 {
			f.line(line, handle)
		}
		if err != nil {
			return
		}
	}
}

func (f *Follower) line(line []byte, handle func(time.Time, []byte)) {
	at, text := kubeletStamp(line)
	if at.IsZero() || !at.After(f.last) {
		return // not a timestamped line, or one handled before the reconnect
	}
	f.last = at
	handle(at, bytes.TrimRight(text, "\r\n"))
}
