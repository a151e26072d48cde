package controllers

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/controllers/ingest"
	"github.com/intent-mapper/intent-mapper/gctune"
)

// Where the agent finds what it is given.
const (
	agentCADir     = "/var/run/intent-mapper/ca"
	agentTokenDir  = "/var/run/secrets/intent-mapper"
	agentProcRoot  = "/host/proc"
	agentRunDir    = "/run/intent-mapper" // an emptyDir: the root is read-only
	agentHeartbeat = agentRunDir + "/heartbeat"
	agentMetrics   = 9464
	// agentBinary is the agent alone, installed in the manager's image beside it.
	agentBinary = "/intent-mapper-agent"
	// agentMemoryLimitEnv carries the container's memory limit, in bytes, to the agent.
	agentMemoryLimitEnv = gctune.MemoryLimitEnv
	tokenExpirySec      = 600 // the kubelet's shortest; it rotates the file at 80% of that
)

// AgentOptions are what the agent DaemonSet is built from besides IntentMapper's spec.
type AgentOptions struct {
	Namespace      string
	ServiceAccount string
	Image          string // the manager's own image, unless the spec names one
	IngestService  string
	CAConfigMap    string
}

// Labels of what the operator deploys.
const (
	labelName      = "app.kubernetes.io/name"
	labelComponent = "app.kubernetes.io/component"
	projectName    = "intent-mapper"
	agentName      = "agent"
	tokenVolume    = "token"
)

func agentLabels() map[string]string {
	return map[string]string{labelName: projectName, labelComponent: agentName}
}

// defaultAgentResources come from make bench-system's agent run (docs/performance.md):
// about 45 MiB on a quiet node, a 116 MiB peak under a busy node's load; the limit
// leaves room above that peak.
func defaultAgentResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("192Mi")},
	}
}

// agentPodSpec is the agent's pod: on the host's network and PID namespace, with the
// least it needs: NET_RAW for its packet sockets, SYS_PTRACE to read other processes'
// /proc/<pid>/ns/net (a ptrace-mode access check), nothing else, and a read-only root.
func agentPodSpec(spec *discoveryv1alpha1.IntentMapperSpec, o AgentOptions) corev1.PodSpec {
	a := &spec.Agent
	image := a.Image
	if image == "" {
		image = o.Image
	}
	resources := defaultAgentResources()
	if a.Resources != nil {
		resources = *a.Resources
	}
	return corev1.PodSpec{
		ServiceAccountName: o.ServiceAccount,
		HostNetwork:        true,
		HostPID:            true,
		DNSPolicy:          corev1.DNSClusterFirstWithHostNet,
		NodeSelector:       a.NodeSelector,
		Tolerations:        a.Tolerations,
		PriorityClassName:  a.PriorityClassName,
		Containers: []corev1.Container{{
			Name:            agentName,
			Image:           image,
			ImagePullPolicy: agentPullPolicy(a.ImagePullPolicy, image),
			Command:         []string{agentBinary},
			Args:            agentArgs(spec, o),
			Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"},
			}}, {Name: agentMemoryLimitEnv, ValueFrom: &corev1.EnvVarSource{ // the agent's GC keeps below it
				ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: agentName, Resource: "limits.memory", Divisor: resource.MustParse("1")},
			}}},
			Ports:          []corev1.ContainerPort{{Name: "metrics", ContainerPort: agentMetrics}},
			Resources:      resources,
			StartupProbe:   agentProbe(spec, 30), // the mesh source may wait up to 30s for its pod list
			ReadinessProbe: agentProbe(spec, 3),
			LivenessProbe:  agentProbe(spec, 6),
			SecurityContext: &corev1.SecurityContext{
				RunAsUser:                ptr.To[int64](0), // packet sockets need the capability as root in the container
				RunAsNonRoot:             ptr.To(false),
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				Capabilities: &corev1.Capabilities{
					Drop: []corev1.Capability{"ALL"},
					Add:  []corev1.Capability{"NET_RAW", "SYS_PTRACE"},
				},
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "host-proc", MountPath: agentProcRoot, ReadOnly: true},
				{Name: "ca", MountPath: agentCADir, ReadOnly: true},
				{Name: tokenVolume, MountPath: agentTokenDir, ReadOnly: true},
				{Name: "run", MountPath: agentRunDir},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("1Mi"))}}},
			{Name: "host-proc", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/proc", Type: ptr.To(corev1.HostPathDirectory)}}},
			{Name: "ca", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: o.CAConfigMap},
			}}},
			{Name: tokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
				ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: ingest.Audience, ExpirationSeconds: ptr.To[int64](tokenExpirySec), Path: "token"},
			}}}}},
		},
	}
}

// agentPullPolicy is the spec's, else Kubernetes' own default written out, so that
// the DaemonSet shows what runs: Always for an untagged or :latest image,
// IfNotPresent for any other tag or a digest.
func agentPullPolicy(p corev1.PullPolicy, image string) corev1.PullPolicy {
	if p != "" {
		return p
	}
	if strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	name := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(name, ":"); i < 0 || name[i+1:] == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// agentProbe runs `intent-mapper-agent probe` in the container: it checks that the
// report loop beat lately, and opens no port on the node's addresses (the agent runs
// on the host network). A beat may lag a report interval plus one send's timeout.
func agentProbe(spec *discoveryv1alpha1.IntentMapperSpec, failures int32) *corev1.Probe {
	interval, _ := time.ParseDuration(duration(spec.Intervals.Report, 10*time.Second))
	maxAge := 2*interval + 45*time.Second
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{
			agentBinary, "probe", "--heartbeat-file=" + agentHeartbeat, "--max-age=" + maxAge.String(),
		}}},
		PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: failures,
	}
}

func agentArgs(spec *discoveryv1alpha1.IntentMapperSpec, o AgentOptions) []string {
	src := spec.Agent.Sources
	iv := spec.Intervals
	args := []string{
		"--node=$(NODE_NAME)",
		fmt.Sprintf("--manager-url=https://%s.%s.svc:9443%s", o.IngestService, o.Namespace, ingest.Path),
		"--ca-file=" + agentCADir + "/ca.crt",
		"--token-file=" + agentTokenDir + "/token",
		"--proc-root=" + agentProcRoot,
		"--heartbeat-file=" + agentHeartbeat,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", agentMetrics), // the node's addresses get no unauthenticated metrics
		"--report-interval=" + duration(iv.Report, 10*time.Second),
		"--scan-interval=" + duration(iv.Scan, 30*time.Second),
		"--scrape-interval=" + duration(iv.Scrape, 15*time.Second),
		fmt.Sprintf("--dns=%t", on(src.DNS, true)),
		fmt.Sprintf("--connections=%t", on(src.Connections, true)),
		fmt.Sprintf("--istio=%t", on(src.Istio, true)),
		fmt.Sprintf("--ambient=%t", on(src.Ambient, false)),
	}
	if len(spec.Agent.Interfaces) > 0 {
		args = append(args, "--interfaces="+strings.Join(spec.Agent.Interfaces, ","))
	}
	return args
}

func duration(d *metav1.Duration, byDefault time.Duration) string {
	if d == nil || d.Duration <= 0 {
		return byDefault.String()
	}
	return d.Duration.String()
}

func on(v *bool, byDefault bool) bool {
	if v == nil {
		return byDefault
	}
	return *v
}

// desiredDaemonSet writes the agent DaemonSet's spec into ds, leaving what the API
// server defaults alone.
func desiredDaemonSet(ds *appsv1.DaemonSet, spec *discoveryv1alpha1.IntentMapperSpec, o AgentOptions) {
	ds.Labels = agentLabels()
	ds.Spec.Selector = &metav1.LabelSelector{MatchLabels: agentLabels()}
	ds.Spec.Template.Labels = agentLabels()
	ds.Spec.Template.Spec = agentPodSpec(spec, o)
	ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}
}
