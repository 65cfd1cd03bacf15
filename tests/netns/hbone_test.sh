#!/usr/bin/env bash
# End-to-end HBONE between two network namespaces (topology: tests/netns/lib.sh).
# Needs root; exits 77 (skipped) otherwise. Usage: hbone_test.sh [BUILD_DIR]
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "netns: skipped (needs root)"
  exit 77
fi
[[ -n ${1:-} ]] && export ZTUNNEL_BUILD_DIR=$1
# Names of our own, so a demo running at the same time is not disturbed.
export NS_A=zt-test-a-$$ NS_B=zt-test-b-$$
source "$(dirname "$0")/lib.sh"

passed=0
failed=0
cleanup() {
  netns_cleanup
  echo "netns: $passed passed, $failed failed"
}
trap cleanup EXIT

run() {  # run NAME: one scenario function; failures are counted, not fatal
  local name=$1
  if (set -e; "$name"); then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

transfer() {  # transfer BYTES: echo through the tunnel, checksums must match
  local out
  out=$(in_a "$PY" "$TCP_TOOL" send "$IP_B" 8080 "$1")
  local sent recv
  sent=$(sed -n 's/.*sent=\([0-9a-f]*\).*/\1/p' <<<"$out")
  recv=$(sed -n 's/.*recv=\([0-9a-f]*\).*/\1/p' <<<"$out")
  [[ -n $sent && $sent == "$recv" ]] || { echo "  $out"; return 1; }
}

test_1kib_transfer() { transfer 1024; }
test_10mib_transfer() { transfer $((10 << 20)); }

test_half_close() {
  # The server answers only after our FIN reached it: the digest of what it got.
  local out want
  out=$(in_a "$PY" "$TCP_TOOL" send "$IP_B" 8081 100000)
  want=$("$PY" -c 'import hashlib,random; print(hashlib.sha256(random.Random(1).randbytes(100000)).hexdigest())')
  grep -q "recv_text=$want 100000" <<<"$out" || { echo "  $out"; return 1; }
}

test_inbound_logs_peer_identity() {
  sleep 0.2
  grep 'direction=inbound' "$WORK/vm-b.log" | grep -q 'src.identity=spiffe://cluster.local/ns/vms/sa/vm-a'
}

test_50_concurrent_share_one_connection() {
  in_a "$PY" "$TCP_TOOL" many "$IP_B" 8080 50 20000 3 >"$WORK/many.out" &
  local pid=$!
  for _ in $(seq 100); do grep -q '^ok=' "$WORK/many.out" && break; sleep 0.1; done
  local conns
  conns=$(in_a ss -Htn state established '( dport = :15008 )' | wc -l)
  wait "$pid"
  grep -q '^ok=50 of 50' "$WORK/many.out" || { cat "$WORK/many.out"; return 1; }
  [[ $conns -eq 1 ]] || { echo "  $conns connections to :15008 in $NS_A"; in_a ss -tn; return 1; }
}

test_python_h2_mtls_connect() {
  "$ZTUNNEL_CERTS" issue --ca-dir "$WORK/ca" --identity spiffe://cluster.local/ns/vms/sa/tester \
    --out "$WORK/tester" >/dev/null
  in_a "$PY" "$LIB_DIR/h2_connect.py" "$IP_B" 15008 "$IP_B:8080" "$WORK/tester"
}

test_wrong_destination_is_400() {
  # vm-b's ztunnel must not reach an address other than the one it was called on.
  in_a "$PY" "$LIB_DIR/h2_connect.py" "$IP_B" 15008 "$IP_A:8080" "$WORK/tester" 400
}

test_closed_upstream_port_is_503() {
  in_a "$PY" "$LIB_DIR/h2_connect.py" "$IP_B" 15008 "$IP_B:9" "$WORK/tester" 503
}

test_no_client_cert_refused() {
  local out before after
  before=$(grep -c 'TLS handshake from' "$WORK/vm-b.log" || true)
  # stdin stays open for a second so s_client is still reading when the
  # server's alert arrives (TLS 1.3: the client finishes its handshake first).
  out=$( (sleep 1 | in_a timeout 10 openssl s_client -connect "$IP_B:15008" -alpn h2 -tls1_3 \
    -quiet) 2>&1) || true
  sleep 0.2
  after=$(grep -c 'TLS handshake from' "$WORK/vm-b.log" || true)
  echo "  s_client: $(grep -i 'alert' <<<"$out" | head -1)"
  ((after > before)) || { echo "  $out"; return 1; }
}

netns_up
for t in test_1kib_transfer test_10mib_transfer test_half_close test_inbound_logs_peer_identity \
  test_50_concurrent_share_one_connection test_python_h2_mtls_connect \
  test_wrong_destination_is_400 test_closed_upstream_port_is_503 test_no_client_cert_refused; do
  run "$t"
done

# Last, in this shell (a subshell cannot wait for them): both ztunnels exit 0 on SIGTERM.
rc=0
for pid in "${PIDS[@]:0:2}"; do
  kill -TERM "$pid"
  wait "$pid" || rc=$?
done
PIDS=("${PIDS[@]:2}")
if ((rc == 0)); then
  echo "PASS sigterm_exits_zero"
  passed=$((passed + 1))
else
  echo "FAIL sigterm_exits_zero (exit code $rc)"
  failed=$((failed + 1))
fi
((failed == 0))
