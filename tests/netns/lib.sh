# shellcheck shell=bash
# Shared netns helpers for tools/demo and tests/netns/*.sh (source it; needs root).
#
#   +------------- netns $NS_A -------------+        +------------- netns $NS_B -------------+
#   | client                                 |        |                 server 10.10.0.2:8080 |
#   |   | nat OUTPUT: tcp to 10.10.0.0/24,   |        |                      (8081: digest)   |
#   |   | not :15008, not mark 0x539/0xfff   |        |                          ^ plain TCP  |
#   |   | -> REDIRECT 15001                  |        |                          |            |
#   |   v                                    |        |                          |            |
#   | ztunnel (vms/vm-a) 15001 --HBONE mTLS--+--veth--+--> 15008 ztunnel (vms/vm-b)           |
#   | 10.10.0.1/24   (its sockets: mark 1337)|        |    15006 <- nat PREROUTING: tcp to    |
#   |                                        |  tcp   |      this host, not :15008, not :8081 |
#   | client with SO_MARK 1337 (bypass) -----+--------+--> (plaintext inbound)                |
#   +----------------------------------------+        | 10.10.0.2/24                          |
#                                                     +---------------------------------------+
#
# Both namespaces get their capture from deploy/vm/ztunnel-iptables, the
# script VM operators run, so the documented rules are the tested ones. vm-b
# leaves 8081 out of inbound capture, to check the exclusion list.
#
# Both ztunnels run in dedicated mode with the same local config (both VMs
# as HBONE workloads) and mint their certificates from one CA directory made
# by `ztunnel-certs init-ca`. Traffic only goes to addresses inside these two
# namespaces.

NS_A=${NS_A:-vm-a}
NS_B=${NS_B:-vm-b}
IP_A=10.10.0.1
IP_B=10.10.0.2
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$LIB_DIR/../.." && pwd)
BUILD_DIR=${ZTUNNEL_BUILD_DIR:-$ROOT_DIR/build}
ZTUNNEL=${ZTUNNEL:-$BUILD_DIR/src/ztunnel}
ZTUNNEL_CERTS=${ZTUNNEL_CERTS:-$BUILD_DIR/src/ztunnel-certs}
PY=/usr/bin/python3
TCP_TOOL=$LIB_DIR/tcp_tool.py
WORK=""
PIDS=()

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

netns_create() {
  WORK=$(mktemp -d)
  ip netns add "$NS_A"
  ip netns add "$NS_B"
  ip link add veth-zta netns "$NS_A" type veth peer name veth-ztb netns "$NS_B"
  in_a ip addr add "$IP_A/24" dev veth-zta
  in_b ip addr add "$IP_B/24" dev veth-ztb
  for ns in "$NS_A" "$NS_B"; do
    ip -n "$ns" link set lo up
  done
  in_a ip link set veth-zta up
  in_b ip link set veth-ztb up
}

certs_init() {
  "$ZTUNNEL_CERTS" init-ca --dir "$WORK/ca" --trust-domain cluster.local >/dev/null
}

# write_local_config [VM_B_POLICY_KEYS [POLICIES]]: both VMs as workloads; vm-b
# may list policy keys (a YAML flow list) and the file carry `policies:` entries.
write_local_config() {
  cat >"$WORK/config.yaml" <<YAML
workloads:
- uid: vms/vm-a
  name: vm-a
  namespace: vms
  serviceAccount: vm-a
  workloadIps: [$IP_A]
  protocol: HBONE
- uid: vms/vm-b
  name: vm-b
  namespace: vms
  serviceAccount: vm-b
  workloadIps: [$IP_B]
  protocol: HBONE
YAML
  if [[ -n ${1:-} ]]; then
    echo "  authorizationPolicies: $1" >>"$WORK/config.yaml"
  fi
  if [[ -n ${2:-} && $2 != "[]" ]]; then
    printf 'policies:\n%s\n' "$2" >>"$WORK/config.yaml"
  elif [[ -n ${1:-} ]]; then
    echo "policies: []" >>"$WORK/config.yaml"
  fi
}

# Worker threads of every ztunnel started here; each worker has its own HBONE
# pool, so tests that count pooled connections need the number. 2 is Istio's
# default floor (and what a 2-CPU machine gets by default).
ZT_WORKER_THREADS=${ZT_WORKER_THREADS:-2}

# start_ztunnel NS WORKLOAD [VAR=VALUE...]: dedicated-mode ztunnel for vms/WORKLOAD in NS, with
# any extra environment; log in $WORK/WORKLOAD.log.
start_ztunnel() {
  local ns=$1 name=$2 log="$WORK/$2.log"
  shift 2
  ip netns exec "$ns" env PROXY_MODE=dedicated PROXY_WORKLOAD_INFO="vms/$name/$name" \
    XDS_ADDRESS= CA_ADDRESS= LOCAL_XDS_PATH="$WORK/config.yaml" PACKET_MARK=1337 \
    ZTUNNEL_CA_DIR="$WORK/ca" ZTUNNEL_WORKER_THREADS="$ZT_WORKER_THREADS" RUST_LOG=info \
    "$@" "$ZTUNNEL" >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    grep -q $'\tready' "$log" 2>/dev/null && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "ztunnel for $name did not start:" >&2
  cat "$log" >&2
  return 1
}

IPTABLES_SCRIPT=$ROOT_DIR/deploy/vm/ztunnel-iptables

install_capture() {
  in_a env ZTUNNEL_MESH_CIDRS=10.10.0.0/24 PACKET_MARK=1337 "$IPTABLES_SCRIPT" install
  in_b env ZTUNNEL_MESH_CIDRS=10.10.0.0/24 PACKET_MARK=1337 ZTUNNEL_EXCLUDE_INBOUND_PORTS=8081 \
    "$IPTABLES_SCRIPT" install
}

start_server() {  # start_server [PORT...]: extra echo ports besides 8080
  # Not through in_b: a backgrounded function leaves $! naming a subshell,
  # and killing that would orphan the server.
  ip netns exec "$NS_B" "$PY" "$TCP_TOOL" serve "$IP_B" "$@" >"$WORK/server.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do
    in_b ss -Htln | grep -q ":8081" && return 0
    sleep 0.1
  done
  echo "server did not start" >&2
  return 1
}

# Everything at once: namespaces, CA, both ztunnels, capture, server.
netns_up() {
  netns_create
  certs_init
  write_local_config
  start_ztunnel "$NS_A" vm-a
  start_ztunnel "$NS_B" vm-b
  install_capture
  start_server
}

netns_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
  [[ -n $WORK && -d $WORK && -z ${KEEP_WORK:-} ]] && rm -rf "$WORK"
  return 0
}

# Scenario suites (tests/netns/*_test.sh): `run NAME` runs one scenario
# function in a subshell and counts it; a failure is counted, not fatal.
passed=0
failed=0
run() {
  local name=$1 start=$SECONDS rc
  # Not `if (...)`: bash ignores set -e inside a condition, so a failing step
  # in the middle of a scenario would go unnoticed.
  set +e
  (set -e; "$name")
  rc=$?
  set -e
  if ((rc == 0)); then
    echo "PASS $name ($((SECONDS - start))s)"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}
