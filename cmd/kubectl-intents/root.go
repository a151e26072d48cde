package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	discoveryv1alpha1 "github.com/intent-mapper/intent-mapper/api/v1alpha1"
)

// exitError carries an exit code: diff exits 1 when observation and declaration differ.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// env is what every command works with.
type env struct {
	flags         *genericclioptions.ConfigFlags
	allNamespaces bool
	in            io.Reader
	out, errOut   io.Writer
	now           func() time.Time
}

func run(args []string, in io.Reader, out, errOut io.Writer) int {
	return runAt(args, in, out, errOut, time.Now)
}

// runAt runs the plugin with a clock, so that --since is testable.
func runAt(args []string, in io.Reader, out, errOut io.Writer, now func() time.Time) int {
	e := &env{flags: genericclioptions.NewConfigFlags(true), in: in, out: out, errOut: errOut, now: now}
	root := &cobra.Command{
		Use:           "kubectl-intents",
		Short:         "Read, export, diff, draw and reset the calls intent-mapper discovered",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	e.flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().BoolVarP(&e.allNamespaces, "all-namespaces", "A", false, "every namespace")
	root.AddCommand(listCommand(e), exportCommand(e), diffCommand(e), visualizeCommand(e), resetCommand(e))
	root.AddCommand(previewCommand(e))
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	err := root.Execute()
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	}
	_, _ = fmt.Fprintln(errOut, "error:", err)
	return 2
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = discoveryv1alpha1.AddToScheme(s)
	return s
}

func (e *env) client() (client.Client, error) {
	cfg, err := e.flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme()})
}

// namespace is the namespace to work in: -n, the kubeconfig's, or all with -A ("").
func (e *env) namespace() (string, error) {
	if e.allNamespaces {
		return "", nil
	}
	ns, _, err := e.flags.ToRawKubeConfigLoader().Namespace()
	return ns, err
}

// discovered lists the DiscoveredIntents in scope, sorted by namespace and name.
func (e *env) discovered(ctx context.Context) ([]discoveryv1alpha1.DiscoveredIntents, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	ns, err := e.namespace()
	if err != nil {
		return nil, err
	}
	list := &discoveryv1alpha1.DiscoveredIntentsList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing DiscoveredIntents: %w", err)
	}
	return list.Items, nil
}

// sinceFilter keeps the calls (and paths) seen since now-d; d zero keeps all.
func sinceFilter(items []discoveryv1alpha1.DiscoveredIntents, d time.Duration, now time.Time) []discoveryv1alpha1.DiscoveredIntents {
	if d <= 0 {
		return items
	}
	cutoff := now.Add(-d)
	var out []discoveryv1alpha1.DiscoveredIntents
	for _, di := range items {
		var calls []discoveryv1alpha1.Call
		for _, c := range di.Status.Calls {
			if c.LastSeen == nil || c.LastSeen.Time.Before(cutoff) {
				continue
			}
			var paths []discoveryv1alpha1.HTTPPath
			for _, p := range c.HTTP {
				if p.LastSeen != nil && !p.LastSeen.Time.Before(cutoff) {
					paths = append(paths, p)
				}
			}
			c.HTTP = paths
			calls = append(calls, c)
		}
		if len(calls) > 0 {
			di.Status.Calls = calls
			out = append(out, di)
		}
	}
	return out
}
