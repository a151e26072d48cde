#!/usr/bin/env bash
# Makes the cluster's certificates with openssl, once: a CA, the API server's serving
# certificate, an admin client certificate the components share, and the service
# account key pair.
set -euo pipefail
source "$(dirname "$0")/env.sh"
dir=$STATE/pki
[ -f "$dir/done" ] && exit 0
mkdir -p "$dir" && cd "$dir"
log "making certificates in $dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=intent-mapper-cluster-ca \
  -keyout ca.key -out ca.crt 2>/dev/null
cert() { # name subject [extensions]
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "${3:-extendedKeyUsage=clientAuth}" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
cert apiserver /CN=kube-apiserver "subjectAltName=IP:$NODE_IP,IP:$API_SERVICE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
cert admin "/O=system:masters/CN=cluster-admin"
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
cat > admin.kubeconfig <<YAML
apiVersion: v1
kind: Config
clusters:
- name: intent-mapper
  cluster: {server: "https://$NODE_IP:6443", certificate-authority: $dir/ca.crt}
users:
- name: admin
  user: {client-certificate: $dir/admin.crt, client-key: $dir/admin.key}
contexts:
- name: intent-mapper
  context: {cluster: intent-mapper, user: admin}
current-context: intent-mapper
YAML
touch done
