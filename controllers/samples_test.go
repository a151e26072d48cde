package controllers

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

var _ = Describe("config/samples", func() {
	It("holds objects the API server accepts, status included", func() {
		files, err := filepath.Glob(filepath.Join("..", "config", "samples", "discovery_*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(2))
		namespace := newNamespace()
		for _, file := range files {
			raw, err := os.ReadFile(file)
			Expect(err).NotTo(HaveOccurred())
			obj := &unstructured.Unstructured{}
			Expect(yaml.Unmarshal(raw, &obj.Object)).To(Succeed(), file)
			status, hasStatus := obj.Object["status"]
			if obj.GetNamespace() != "" {
				obj.SetNamespace(namespace)
			}

			Expect(k8sClient.Create(ctx, obj)).To(Succeed(), file)
			DeferCleanup(k8sClient.Delete, ctx, obj.DeepCopy())
			if hasStatus {
				Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
					if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
						return err
					}
					obj.Object["status"] = status
					return k8sClient.Status().Update(ctx, obj)
				})).To(Succeed(), file)
			}
		}
	})
})
