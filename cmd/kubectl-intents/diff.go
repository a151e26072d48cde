package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
	"github.com/intent-mapper/intent-mapper/declared"
)

type diffOptions struct {
	files      []string
	since      time.Duration
	apiVersion string
	output     string
}

func diffCommand(e *env) *cobra.Command {
	o := &diffOptions{}
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Compare observed calls with declared ClientIntents; exit 0 when they agree, 1 when they differ",
		Long: "Declared intents come from -f FILE|DIR (ClientIntents YAML or JSON as kept in Git, any version Otterize\n" +
			"serves) or, without -f, from the cluster. With -f, the namespaces compared are those the files name\n" +
			"(objects without one are in -n's or the kubeconfig's), -n's alone, or all with -A.\n" +
			"Every target type is compared: workloads, Services, HTTP paths and methods, Kafka topics and\n" +
			"operations, internet domains, IPs and ports. Nothing declared against observed calls is a difference.\n" +
			"Exit code: 0 when observation and declaration agree, 1 when they differ, 2 on error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := e.diff(cmd, o)
			if o.output == formatJSON && err != nil && !errors.As(err, &exitError{}) {
				_ = json.NewEncoder(e.out).Encode(map[string]string{"error": err.Error()})
				return exitError{code: 2}
			}
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&o.files, "filename", "f", nil, "ClientIntents file or directory (repeatable); the cluster's when none")
	cmd.Flags().DurationVar(&o.since, "since", 0, "count as observed only what was seen since this long ago")
	cmd.Flags().StringVar(&o.apiVersion, "api-version", "", "ClientIntents version to read from the cluster (default: its preferred)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "text or json")
	return cmd
}

func (e *env) diff(cmd *cobra.Command, o *diffOptions) error {
	if o.output != "text" && o.output != formatJSON {
		return fmt.Errorf("-o %q: use text or json", o.output)
	}
	scope, err := e.scope()
	if err != nil {
		return err
	}
	var intents []*declared.Intent
	if len(o.files) > 0 {
		intents, err = readFiles(o.files, &scope)
	} else {
		intents, err = e.clusterIntents(cmd, o.apiVersion, scope)
	}
	if err != nil {
		return err
	}
	items, err := e.discoveredIn(cmd, scope)
	if err != nil {
		return err
	}
	decl := declared.Set{}
	for _, in := range intents {
		decl.Add(in)
	}
	var cutoff time.Time
	if o.since > 0 {
		cutoff = e.now().Add(-o.since)
	}
	r := diffReport{
		Namespaces: scope.names(), Declared: len(intents), Observed: len(items),
		Diff: declared.Compare(declared.Observed(items), decl, cutoff), Gaps: declared.Gaps(items),
	}
	r.Agree = r.Diff.Empty() && (r.Declared > 0 || r.Observed > 0)
	if o.output == formatJSON {
		e.printDiffJSON(r)
	} else {
		e.printDiff(r)
	}
	if !r.Agree {
		return exitError{code: 1}
	}
	return nil
}

// scope is the namespaces compared: all, or a set.
type scope struct {
	all      bool
	explicit bool   // -n was given: files may name no other namespace
	current  string // where objects without a namespace are
	set      map[string]bool
}

func (s scope) names() []string {
	if s.all {
		return []string{"*"}
	}
	out := make([]string, 0, len(s.set))
	for ns := range s.set {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

func (e *env) scope() (scope, error) {
	ns, explicit, err := e.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return scope{}, err
	}
	return scope{all: e.allNamespaces, explicit: explicit && !e.allNamespaces, current: ns, set: map[string]bool{}}, nil
}

// discoveredIn lists the DiscoveredIntents of the namespaces in scope (the current
// one when no file named any).
func (e *env) discoveredIn(cmd *cobra.Command, s scope) ([]discoveryv1alpha1.DiscoveredIntents, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	namespaces := []string{""}
	if !s.all {
		if len(s.set) == 0 {
			s.set[s.current] = true
		}
		namespaces = s.names()
	}
	var out []discoveryv1alpha1.DiscoveredIntents
	for _, ns := range namespaces {
		list := &discoveryv1alpha1.DiscoveredIntentsList{}
		if err := c.List(cmd.Context(), list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing DiscoveredIntents: %w", err)
		}
		out = append(out, list.Items...)
	}
	return out, nil
}

// clusterIntents reads the ClientIntents of the namespace in scope from the cluster.
func (e *env) clusterIntents(cmd *cobra.Command, apiVersion string, s scope) ([]*declared.Intent, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	if apiVersion == "" {
		if apiVersion, err = e.clusterVersion(); err != nil {
			return nil, err
		}
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	ns := ""
	if !s.all {
		ns = s.current
		s.set[ns] = true
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gv.WithKind(declared.Kind + "List"))
	if err := c.List(cmd.Context(), list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing ClientIntents: %w", err)
	}
	var out []*declared.Intent
	for i := range list.Items {
		o := &list.Items[i]
		in, err := declared.Read(o, o.GetNamespace())
		if err != nil {
			return nil, fmt.Errorf("ClientIntents %s/%s: %w", o.GetNamespace(), o.GetName(), err)
		}
		out = append(out, in)
	}
	return out, nil
}

// readFiles reads ClientIntents from files, and every .yaml, .yml and .json under
// directories. Objects without a namespace are in the current one; with -n, one
// naming another is an error, as kubectl has it. The namespaces named join the scope.
func readFiles(paths []string, s *scope) ([]*declared.Intent, error) {
	var out []*declared.Intent
	for _, path := range paths {
		err := filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if p != path && !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml") && !strings.HasSuffix(p, ".json") {
				return nil
			}
			intents, err := readFile(p, s)
			out = append(out, intents...)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readFile(path string, s *scope) ([]*declared.Intent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	docs, err := declared.ParseFile(f, path)
	if err != nil {
		return nil, err
	}
	var out []*declared.Intent
	for _, d := range docs {
		ns := d.Object.GetNamespace()
		if s.explicit && ns != "" && ns != s.current {
			return nil, fmt.Errorf("%s: the namespace of ClientIntents %s (%s) does not match -n %s", d.Where(), d.Object.GetName(), ns, s.current)
		}
		in, err := declared.Read(d.Object, s.current)
		if err != nil {
			return nil, fmt.Errorf("%s: ClientIntents %s: %w", d.Where(), d.Object.GetName(), err)
		}
		s.set[in.Namespace] = true
		out = append(out, in)
	}
	return out, nil
}

// diffReport is what diff found, as -o json writes it.
type diffReport struct {
	Agree      bool           `json:"agree"`
	Namespaces []string       `json:"namespaces"`
	Declared   int            `json:"declaredClients"`
	Observed   int            `json:"observedClients"`
	Diff       declared.Diff  `json:"-"`
	Gaps       []declared.Gap `json:"-"`
}

func (e *env) printDiffJSON(r diffReport) {
	type unobserved struct {
		Item     string     `json:"item"`
		LastSeen *time.Time `json:"lastSeen"`
	}
	out := struct {
		diffReport
		Undeclared    []string     `json:"undeclared"`
		Unobserved    []unobserved `json:"unobserved"`
		Inexpressible []string     `json:"inexpressible"`
	}{diffReport: r, Undeclared: []string{}, Unobserved: []unobserved{}, Inexpressible: []string{}}
	for _, i := range r.Diff.Undeclared {
		out.Undeclared = append(out.Undeclared, i.String())
	}
	for _, u := range r.Diff.Unobserved {
		out.Unobserved = append(out.Unobserved, unobserved{Item: u.Item.String(), LastSeen: u.LastSeen})
	}
	for _, g := range r.Gaps {
		out.Inexpressible = append(out.Inexpressible, g.String())
	}
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

func (e *env) printDiff(r diffReport) {
	d := r.Diff
	switch {
	case r.Declared == 0 && r.Observed == 0:
		_, _ = fmt.Fprintf(e.out, "nothing to compare: no ClientIntents declared and no calls observed in namespaces %s\n", strings.Join(r.Namespaces, ", "))
	case d.Empty():
		_, _ = fmt.Fprintf(e.out, "observed and declared intents agree (namespaces %s)\n", strings.Join(r.Namespaces, ", "))
	}
	if r.Declared == 0 && r.Observed > 0 {
		_, _ = fmt.Fprintln(e.out, "no ClientIntents declared, but calls were observed:")
	}
	if len(d.Undeclared) > 0 {
		_, _ = fmt.Fprintln(e.out, "observed but not declared (would be blocked if the server were protected):")
		for _, item := range d.Undeclared {
			_, _ = fmt.Fprintf(e.out, "  + %s\n", item)
		}
	}
	if len(d.Unobserved) > 0 {
		_, _ = fmt.Fprintln(e.out, "declared but not observed:")
		for _, u := range d.Unobserved {
			when := "never seen"
			if u.LastSeen != nil {
				when = "last seen " + duration.HumanDuration(e.now().Sub(*u.LastSeen)) + " ago"
			}
			_, _ = fmt.Fprintf(e.out, "  - %s (%s)\n", u.Item, when)
		}
	}
	if len(r.Gaps) > 0 {
		_, _ = fmt.Fprintln(e.out, "observed, but ClientIntents cannot express it (not counted as a difference):")
		for _, g := range r.Gaps {
			_, _ = fmt.Fprintf(e.out, "  ! %s\n", g)
		}
	}
}
