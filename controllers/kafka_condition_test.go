package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// A broker whose log cannot be read (a pod with a sidecar and no container named)
// shows on IntentMapper, and goes away when it is read again.
func TestKafkaLogsCondition(t *testing.T) {
	im := &discoveryv1alpha1.IntentMapper{}
	im.Generation = 3
	var problems []string
	report := func() []string { return problems }

	reconcileKafkaCondition(im, report)
	if c := meta.FindStatusCondition(im.Status.Conditions, ConditionKafkaLogs); c != nil {
		t.Fatalf("a condition without brokers listed: %+v", c)
	}

	im.Spec.Kafka = []discoveryv1alpha1.KafkaServer{{Namespace: "kafka", Name: "broker"}}
	problems = []string{`kafka/broker-0: pod kafka/broker-0 has containers [server istio-proxy audit] : name the broker's in spec.kafka's container`}
	reconcileKafkaCondition(im, report)
	c := meta.FindStatusCondition(im.Status.Conditions, ConditionKafkaLogs)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "Unreadable" || c.Message != problems[0] || c.ObservedGeneration != 3 {
		t.Fatalf("condition %+v", c)
	}

	problems = nil
	reconcileKafkaCondition(im, report)
	if c := meta.FindStatusCondition(im.Status.Conditions, ConditionKafkaLogs); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("condition %+v after recovery", c)
	}
}
