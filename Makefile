# intent-mapper: build, generate, test.

VERSION ?= 0.1.0
IMG ?= intent-mapper:$(VERSION)
LOCALBIN ?= $(CURDIR)/bin
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s

CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
KUSTOMIZE_VERSION ?= v5.8.1

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)

# Generated files that verify-gen keeps current.
GENERATED := api config bundle bundle.Dockerfile charts

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC (manager's and agent's) from the markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/...;./controllers/...;./kafka/..." output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=agent-role paths="./agent/..." output:rbac:artifacts:config=config/rbac/agent

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: test
test: manifests generate helm vet envtest-assets ## Run every test against a real kube-apiserver and etcd.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./... -count=1
	cd test/helm && KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./... -count=1

.PHONY: bench
bench: ## Run every benchmark beside its baseline; print the table, write bench/.
	go test ./... -run '^$$' -bench . -benchmem -count 1 | tee /dev/stderr | go run ./hack/benchtable bench

.PHONY: bench-system
bench-system: envtest-assets ## System runs at scale against a real API server (minutes): ingest load, scale, churn.
	INTENT_MAPPER_SYSTEM=1 KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./test/system -run TestSystem -count=1 -v -timeout 60m

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...
	cd test/helm && $(GOLANGCI_LINT) run ./...

.PHONY: bundle
bundle: manifests ## Generate the OLM bundle (bundle/, bundle.Dockerfile) for VERSION and IMG.
	go run ./hack/bundle --version $(VERSION) --image $(IMG)

.PHONY: helm
helm: manifests ## Generate the Helm chart (charts/intent-mapper) from config/ for VERSION.
	go run ./hack/helmchart --version $(VERSION)

.PHONY: verify-gen
verify-gen: manifests generate bundle helm ## Fail when generated files (CRDs, RBAC, deepcopy, bundle, chart) are stale.
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		echo "generated files are stale; run 'make manifests generate bundle helm' and commit:"; \
		git status --porcelain -- $(GENERATED); git --no-pager diff --stat -- $(GENERATED); exit 1; \
	fi

.PHONY: envtest-assets
envtest-assets: $(ENVTEST_ASSETS)/kube-apiserver $(ENVTEST_ASSETS)/etcd ## Build kube-apiserver and etcd for envtest (once).

$(ENVTEST_ASSETS)/kube-apiserver $(ENVTEST_ASSETS)/etcd:
	hack/envtest/build.sh $(ENVTEST_ASSETS)

##@ Build

SCENARIO ?= hack/demo/scenario.yaml

.PHONY: demo
demo: build envtest-assets ## Run the whole system here against real traffic (SCENARIO=path for another).
	go run ./hack/demo --scenario $(SCENARIO) --binary $(LOCALBIN)/intent-mapper --assets $(ENVTEST_ASSETS)

.PHONY: build
build: manifests generate fmt vet ## Build the intent-mapper binary and the agent's own (intent-mapper-agent).
	go build -o $(LOCALBIN)/intent-mapper .
	go build -o $(LOCALBIN)/intent-mapper-agent ./cmd/intent-mapper-agent

.PHONY: plugin
plugin: ## Build the kubectl plugin (bin/kubectl-intents; put it on PATH for `kubectl intents`).
	go build -o $(LOCALBIN)/kubectl-intents ./cmd/kubectl-intents

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the current kubeconfig.
	go run . manager

##@ Deployment

.PHONY: install
install: manifests $(KUSTOMIZE) ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | kubectl apply --server-side -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) ## Deploy intent-mapper (image IMG) and the IntentMapper named cluster.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	# The CRDs first: the IntentMapper in config/default is refused until they are established.
	$(KUSTOMIZE) build config/crd | kubectl apply --server-side -f -
	kubectl wait --for condition=established --timeout=60s -f config/crd/bases
	$(KUSTOMIZE) build config/default | kubectl apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Remove what deploy installed (DiscoveredIntents go with their CRD).
	$(KUSTOMIZE) build config/default | kubectl delete --ignore-not-found -f -

.PHONY: docker-build
docker-build: ## Build the image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

$(GOLANGCI_LINT): | $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

$(KUSTOMIZE): | $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

# go-install-tool installs package $2 at version $3 as the versioned binary $1.
define go-install-tool
@set -e; tmp=$$(mktemp -d); \
echo "installing $(2)@$(3)"; \
GOBIN=$$tmp go install $(2)@$(3); \
mv $$tmp/* $(1); rmdir $$tmp
endef

##@ Cluster tier (a real one-node cluster on this machine; needs root)

CLUSTER_BIN ?= $(LOCALBIN)/cluster
CLUSTER_KUBECONFIG ?= $(CLUSTER_BIN)/state/pki/admin.kubeconfig

.PHONY: cluster
cluster: envtest-assets ## Bring up the one-node cluster (builds and installs what it needs; idempotent).
	hack/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the cluster, remove its state, restore the host settings it changed.
	hack/cluster/down.sh

.PHONY: cluster-image
cluster-image: ## Build image IMG from this tree and import it into the cluster (no registry).
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(CLUSTER_BIN)/intent-mapper .
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(CLUSTER_BIN)/intent-mapper-agent ./cmd/intent-mapper-agent
	hack/cluster/image.sh $(IMG) $(CLUSTER_BIN)/intent-mapper 65532:65532 manager $(CLUSTER_BIN)/intent-mapper-agent

.PHONY: test-cluster
test-cluster: cluster ## Run the cluster tier: install, map real traffic, upgrade, restart, reset, undeploy.
	PATH="$(CLUSTER_BIN):$$PATH" CLUSTER_BIN=$(CLUSTER_BIN) KUBECONFIG=$(CLUSTER_KUBECONFIG) INTENT_MAPPER_CLUSTER=1 \
		go test ./test/cluster -count=1 -v -timeout 40m

.PHONY: demo-cluster
demo-cluster: cluster ## Deploy intent-mapper into the cluster and run SCENARIO there to explore.
	PATH="$(CLUSTER_BIN):$$PATH" CLUSTER_BIN=$(CLUSTER_BIN) KUBECONFIG=$(CLUSTER_KUBECONFIG) INTENT_MAPPER_CLUSTER=1 \
		CLUSTER_SCENARIO=$(if $(filter command line,$(origin SCENARIO)),$(SCENARIO),test/cluster/scenario.yaml) CLUSTER_DEMO=1 go test ./test/cluster -count=1 -v -run TestDemo -timeout 0
