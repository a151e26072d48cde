package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/intent-mapper/intent-mapper/declared"
)

func diffCommand(e *env) *cobra.Command {
	var (
		file       string
		since      time.Duration
		apiVersion string
	)
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Compare observed calls with declared ClientIntents; exit 0 when they agree, 1 when they differ",
		Long: "Declared intents come from -f FILE|DIR (ClientIntents YAML as kept in Git) or, without -f, from the cluster.\n" +
			"Exit code: 0 when observation and declaration agree, 1 when they differ, 2 on error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			items, err := e.discovered(cmd.Context())
			if err != nil {
				return err
			}
			objs, err := e.declaredObjects(cmd, file, apiVersion)
			if err != nil {
				return err
			}
			decl, err := declared.Declarations(objs)
			if err != nil {
				return err
			}
			var cutoff time.Time
			if since > 0 {
				cutoff = e.now().Add(-since)
			}
			d := declared.Compare(declared.Observed(items), inScope(decl, e), cutoff)
			e.printDiff(d)
			if !d.Empty() {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "ClientIntents YAML file or directory; the cluster's when empty")
	cmd.Flags().DurationVar(&since, "since", 0, "count as observed only what was seen since this long ago")
	cmd.Flags().StringVar(&apiVersion, "api-version", declared.V1alpha3, "ClientIntents version to read from the cluster")
	return cmd
}

// inScope keeps declarations of the namespace in scope.
func inScope(decl declared.Set, e *env) declared.Set {
	ns, err := e.namespace()
	if err != nil || ns == "" {
		return decl
	}
	out := declared.Set{}
	for item := range decl {
		if strings.HasPrefix(item.Client, ns+"/") {
			out[item] = true
		}
	}
	return out
}

func (e *env) declaredObjects(cmd *cobra.Command, file, apiVersion string) ([]*unstructured.Unstructured, error) {
	if file != "" {
		return readFiles(file)
	}
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	ns, err := e.namespace()
	if err != nil {
		return nil, err
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gv.WithKind(declared.Kind + "List"))
	if err := c.List(cmd.Context(), list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing ClientIntents: %w", err)
	}
	out := make([]*unstructured.Unstructured, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// readFiles reads ClientIntents from a file, or every .yaml, .yml and .json under a directory.
func readFiles(path string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	err := filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if p != path && !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml") && !strings.HasSuffix(p, ".json") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		objs, err := declared.ParseYAML(f)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, objs...)
		return nil
	})
	return out, err
}

func (e *env) printDiff(d declared.Diff) {
	if d.Empty() {
		_, _ = fmt.Fprintln(e.out, "observed and declared intents agree")
		return
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
}
