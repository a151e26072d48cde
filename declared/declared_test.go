package declared

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

func observed() *discoveryv1alpha1.DiscoveredIntents {
	return &discoveryv1alpha1.DiscoveredIntents{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec:       discoveryv1alpha1.DiscoveredIntentsSpec{Workload: discoveryv1alpha1.WorkloadRef{Name: "web", Kind: discoveryv1alpha1.KindDeployment}},
		Status: discoveryv1alpha1.DiscoveredIntentsStatus{Calls: []discoveryv1alpha1.Call{
			{Name: "api", Namespace: "shop", Kind: discoveryv1alpha1.KindDeployment, Type: discoveryv1alpha1.CallHTTP,
				HTTP: []discoveryv1alpha1.HTTPPath{{Path: "/ping", Methods: []string{"HEAD"}}, {Path: "/orders", Methods: []string{"GET", "HEAD"}}}},
			{Name: "legacy-db", Namespace: "infra", Type: discoveryv1alpha1.CallTCP, Ports: []int32{5432}, Services: []string{"legacy-db"}},
			{Name: "kafka", Namespace: "infra", Kind: discoveryv1alpha1.KindStatefulSet, Type: discoveryv1alpha1.CallKafka,
				Kafka: []discoveryv1alpha1.KafkaTopic{{Name: "orders", Operations: []string{"Read", "Write", "DescribeTokens"}}}},
			{Name: "198.51.100.4", Type: discoveryv1alpha1.CallInternet, Ports: []int32{443}},
		}},
	}
}

func TestFromDiscoveredModelsEveryTargetType(t *testing.T) {
	in, gaps := FromDiscovered(observed())
	types := make([]TargetType, 0, len(in.Targets))
	for _, tg := range in.Targets {
		types = append(types, tg.Type)
	}
	if !slices.Equal(types, []TargetType{TargetKubernetes, TargetService, TargetKafka, TargetInternet}) {
		t.Errorf("targets %v", types)
	}
	if got := in.Targets[0].HTTP; len(got) != 1 || got[0].Path != "/orders" || !slices.Equal(got[0].Methods, []string{"GET"}) {
		t.Errorf("HTTP %v", got)
	}
	if got := in.Targets[2].Topics; len(got) != 1 || !slices.Equal(got[0].Operations, []string{"consume", "produce"}) {
		t.Errorf("topics %v", got)
	}
	if got := in.Targets[3].Internet; !slices.Equal(got.IPs, []string{"198.51.100.4"}) || len(got.Domains) != 0 {
		t.Errorf("an internet call known by its IP: %+v", got)
	}
	what := make([]string, 0, len(gaps))
	for _, g := range gaps {
		what = append(what, g.String())
	}
	want := []string{
		"shop/web -> shop/api: HEAD /ping: ClientIntents have no method HEAD: not exported",
		"shop/web -> shop/api: HEAD /orders: ClientIntents have no method HEAD: not exported",
		"shop/web -> infra/kafka: topic orders: ClientIntents have no operation DescribeTokens: not exported",
	}
	if !slices.Equal(what, want) {
		t.Errorf("gaps:\n%s", strings.Join(what, "\n"))
	}
}

func TestTwoKindsOfOneNameExportUnderTheirOwnNames(t *testing.T) {
	deploy := observed()
	sts := observed()
	sts.Name = "web-statefulset"
	sts.Spec.Workload.Kind = discoveryv1alpha1.KindStatefulSet
	names := map[string]string{}
	for _, di := range []*discoveryv1alpha1.DiscoveredIntents{deploy, sts} {
		in, _ := FromDiscovered(di)
		for _, v := range Writable {
			obj, err := Write(in, v)
			if err != nil {
				t.Fatal(err)
			}
			name := obj.(metav1.Object).GetName()
			if other, ok := names[v+"/"+name]; ok {
				t.Errorf("%s: %s and %s both export as %s", v, other, di.Spec.Workload.Kind, name)
			}
			names[v+"/"+name] = string(di.Spec.Workload.Kind)
		}
	}
	if len(names) != 2*len(Writable) {
		t.Errorf("%d names for %d writes", len(names), 2*len(Writable))
	}
}

func TestEveryWrittenVersionReadsBack(t *testing.T) {
	in, _ := FromDiscovered(observed())
	want := Set{}
	want.Add(in)
	if len(want) != 8 {
		t.Fatalf("%d items", len(want))
	}
	for _, v := range Writable {
		obj, err := Write(in, v)
		if err != nil {
			t.Fatal(err)
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Read(&unstructured.Unstructured{Object: m}, "elsewhere")
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		got := Set{}
		got.Add(back)
		for item := range want {
			if !got[item] {
				t.Errorf("%s lost %s", v, item)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d items, want %d", v, len(got), len(want))
		}
	}
	if _, err := Write(in, V1alpha2); err == nil {
		t.Error("v1alpha2 cannot say Service or internet; writing it must be refused")
	}
}

func TestReadRefusesWhatItCannotRead(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a}\nspec: {workload: {name: a}, targets: [{kubernetes: {name: b.c.d}}]}\n",
		"apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a}\nspec: {workload: {name: a}, target: []}\n",
		"apiVersion: k8s.otterize.com/v1alpha3\nkind: ClientIntents\nmetadata: {name: a}\nspec: {service: {name: a}, calls: [{type: internet}]}\n",
		"apiVersion: k8s.otterize.com/v3\nkind: ClientIntents\nmetadata: {name: a}\n",
		"apiVersion: k8s.otterize.com/v2alpha1\nkind: ClientIntents\nmetadata: {name: a}\nspec: {targets: []}\n",
	} {
		objs, err := ParseYAML(strings.NewReader(doc))
		if err != nil || len(objs) != 1 {
			t.Fatalf("%v %d", err, len(objs))
		}
		if _, err := Read(objs[0], "default"); err == nil {
			t.Errorf("read:\n%s", doc)
		}
	}
}

func TestParseFileSaysWhere(t *testing.T) {
	stream := "# a comment\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: k8s.otterize.com/v2beta1\n  kind: ClientIntents\n  metadata: {name: a}\n" +
		"---\n\n{\"apiVersion\": \"k8s.otterize.com/v1alpha3\", \"kind\": \"ClientIntents\", \"metadata\": {\"name\": \"b\"}}\n---\nkind: ConfigMap\n"
	docs, err := ParseFile(strings.NewReader(stream), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	where := make([]string, 0, len(docs))
	for _, d := range docs {
		where = append(where, d.Where()+" "+d.Object.GetName())
	}
	if !slices.Equal(where, []string{"x.yaml:6 a", "x.yaml:11 b"}) {
		t.Errorf("%v", where)
	}
	_, err = ParseFile(strings.NewReader("a: 1\n---\nb: 2\n---\nc: [\n"), "y.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "y.yaml:5: ") {
		t.Errorf("error %v, want y.yaml:5", err)
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add("apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a}\nspec: {workload: {name: a}, targets: [{internet: {ports: [1]}}]}\n")
	f.Add("kind: List\nitems: [{kind: ClientIntents, apiVersion: k8s.otterize.com/v1alpha2, spec: {calls: [{name: x}]}}]\n")
	f.Add("---\n- 1\n---\n")
	f.Fuzz(func(t *testing.T, s string) {
		docs, err := ParseFile(strings.NewReader(s), "f")
		if err != nil {
			return
		}
		for _, d := range docs {
			if in, err := Read(d.Object, "default"); err == nil {
				_ = in.Items()
			}
		}
	})
}
