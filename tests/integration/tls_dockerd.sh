#!/usr/bin/env bash
# A second Docker engine that speaks only TLS (--tlsverify) on 127.0.0.1, for the docker
# executor's TLS tests. It shares nothing with the main engine: its own data root, exec root,
# pidfile, unix socket, containerd (started by it under its exec root) and namespace, no
# iptables, and a bridge of its own. (Not --bridge=none: that makes dockerd delete the host's
# docker0, which the main engine uses.) Certificates are made here with the openssl CLI.
#   tls_dockerd.sh start DIR   -> prints the TCP port; DIR/client has ca.pem, cert.pem, key.pem
#                                 (the docker CLI layout), DIR/other-ca has an unrelated ca.pem
#   tls_dockerd.sh stop DIR    -> stops the engine and removes DIR
# Needs root and the main engine's test image (scripts/docker-test-env.sh), which it loads.
set -euo pipefail
action=$1
dir=$2
image=${PMCP_TEST_IMAGE:-pmcp-test-busybox:latest}

if [[ $action == stop ]]; then
  if [[ -s $dir/dockerd.pid ]]; then
    pid=$(cat "$dir/dockerd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  if [[ -s $dir/bridge ]]; then ip link delete "$(cat "$dir/bridge")" 2>/dev/null || true; fi
  rm -rf "$dir"
  exit 0
fi

mkdir -p "$dir"/{client,other-ca,server}
cd "$dir"
key() { openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
ca() {  # ca DIR: a CA certificate DIR/ca.pem and its key DIR/ca-key.pem
  key "$1/ca-key.pem"
  openssl req -x509 -new -key "$1/ca-key.pem" -days 2 -subj "/CN=process-mcp test CA" \
    -out "$1/ca.pem" 2>/dev/null
}
sign() {  # sign KEY OUT SUBJECT EXTENSIONS
  openssl req -new -key "$1" -subj "$3" -out "$2.csr" 2>/dev/null
  openssl x509 -req -in "$2.csr" -CA server/ca.pem -CAkey server/ca-key.pem -CAcreateserial \
    -days 2 -extfile <(printf '%b' "$4") -out "$2" 2>/dev/null
  rm -f "$2.csr"
}
ca server
ca other-ca
key server/key.pem
sign server/key.pem server/cert.pem "/CN=127.0.0.1" \
  'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
key client/key.pem
sign client/key.pem client/cert.pem "/CN=process-mcp test client" 'extendedKeyUsage=clientAuth\n'
cp server/ca.pem client/ca.pem

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
namespace="pmcp-tls-$$"
# A bridge for this engine's default network (its containers use network "none" anyway), on an
# address of the benchmarking range 198.18.0.0/15 that varies with the pid.
bridge="pmcptls$$"
ip link add "$bridge" type bridge
echo "$bridge" >"$dir/bridge"
ip addr add "198.18.$(($$ % 250 + 1)).1/24" dev "$bridge"
ip link set "$bridge" up
setsid dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
  -H "unix://$dir/docker.sock" -H "tcp://127.0.0.1:$port" \
  --tlsverify --tlscacert server/ca.pem --tlscert server/cert.pem --tlskey server/key.pem \
  --iptables=false --ip6tables=false --bridge="$bridge" --storage-driver=vfs \
  --containerd-namespace "$namespace" --containerd-plugins-namespace "$namespace-plugins" \
  >"$dir/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 1 120); do
  docker -H "unix://$dir/docker.sock" version >/dev/null 2>&1 && break
  sleep 0.5
done
if ! docker -H "unix://$dir/docker.sock" version >/dev/null 2>&1; then
  echo "tls_dockerd: dockerd did not come up; the end of its log:" >&2
  tail -n 30 "$dir/dockerd.log" >&2 || true
  exit 1
fi
docker -H unix:///var/run/docker.sock save "$image" | docker -H "unix://$dir/docker.sock" load \
  >/dev/null
echo "$port"
