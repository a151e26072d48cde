// Package v1alpha1 holds the discovery.intentmapper.io/v1alpha1 API: DiscoveredIntents,
// the calls observed per client workload, and IntentMapper, the operator's configuration.
// +kubebuilder:object:generate=true
// +groupName=discovery.intentmapper.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "discovery.intentmapper.io", Version: "v1alpha1"}

	// SchemeBuilder registers this package's types with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&DiscoveredIntents{}, &DiscoveredIntentsList{},
		&IntentMapper{}, &IntentMapperList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
