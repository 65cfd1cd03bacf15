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
  local name=$1 start=$SECONDS
  if (set -e; "$name"); then
    echo "PASS $name ($((SECONDS - start))s)"
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
test_100mib_transfer() { transfer $((100 << 20)); }

test_server_first_banner() {
  # The client never writes: outbound must open the tunnel without waiting for client bytes.
  local out
  out=$(in_a timeout 20 "$PY" "$TCP_TOOL" read "$IP_B" 8082)
  grep -q '^recv=220 server speaks first recv_bytes=24$' <<<"$out" || { echo "  $out"; return 1; }
}

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

hbone_conns_a() { in_a ss -Htn state established '( dport = :15008 )' | wc -l; }

test_200_concurrent_use_two_pooled_connections() {
  # Held open all at once: 200 streams over POOL_MAX_STREAMS_PER_CONNECTION=100
  # need exactly two HBONE connections (Istio's pool caps streams per connection).
  local release=$WORK/release-200 conns pid
  in_a "$PY" "$TCP_TOOL" hold "$IP_B" 8080 200 10000 "$release" >"$WORK/hold.out" 2>&1 &
  pid=$!
  for _ in $(seq 300); do grep -q '^open=' "$WORK/hold.out" && break; sleep 0.1; done
  conns=$(hbone_conns_a)
  touch "$release"
  wait "$pid"
  grep -q '^open=200 of 200$' "$WORK/hold.out" || { cat "$WORK/hold.out"; return 1; }
  grep -q '^closed=200 of 200$' "$WORK/hold.out" || { cat "$WORK/hold.out"; return 1; }
  [[ $conns -eq 2 ]] || { echo "  $conns connections to :15008 in $NS_A"; return 1; }
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

# --- scenarios that stop and restart vm-b's ztunnel; they run in this shell
# (a subshell could not wait for the processes they start) and check every
# step with an explicit return. -------------------------------------------------

test_peer_ztunnel_killed_mid_stream() {
  local out=$WORK/stream.out pid
  in_a timeout 30 "$PY" "$TCP_TOOL" stream "$IP_B" 8080 >"$out" 2>&1 &
  pid=$!
  for _ in $(seq 200); do grep -q '^flowing' "$out" && break; sleep 0.05; done
  grep -q '^flowing' "$out" || { cat "$out"; return 1; }
  kill -KILL "$ZT_B"
  wait "$ZT_B" 2>/dev/null || true
  # timeout(1) exits 124 if the client is still connected after 30 s.
  local rc=0
  wait "$pid" || rc=$?
  ((rc == 0)) || { echo "  client exit $rc (124: connection never ended)"; cat "$out"; return 1; }
  grep -q '^ended by=' "$out" || { cat "$out"; return 1; }
  echo "  $(grep '^ended' "$out")"
}

PY_SRV_PID=""
start_python_hbone_server() {
  "$ZTUNNEL_CERTS" issue --ca-dir "$WORK/ca" --identity spiffe://cluster.local/ns/vms/sa/vm-b \
    --out "$WORK/pyserver" >/dev/null || return 1
  : >"$WORK/pyserver.jsonl"
  # Not through in_b: a backgrounded function would leave $! naming a subshell.
  ip netns exec "$NS_B" "$PY" "$LIB_DIR/h2_hbone_server.py" "$IP_B" 15008 "$WORK/pyserver" "$WORK/pyserver.jsonl" \
    >"$WORK/pyserver.log" 2>&1 &
  PY_SRV_PID=$!
  PIDS+=("$PY_SRV_PID")
  for _ in $(seq 100); do grep -q '^listening' "$WORK/pyserver.log" && return 0; sleep 0.05; done
  cat "$WORK/pyserver.log"
  return 1
}

test_python_h2_server_receives_our_connect() {
  # vm-b's ztunnel is gone (previous scenario); a python3-h2 server with vm-b's identity
  # takes its port. vm-a's pool must open a fresh connection to it.
  start_python_hbone_server || return 1
  local out sent recv
  out=$(in_a "$PY" "$TCP_TOOL" send "$IP_B" 8080 300000) || { echo "  $out"; return 1; }
  sent=$(sed -n 's/.*sent=\([0-9a-f]*\).*/\1/p' <<<"$out")
  recv=$(sed -n 's/.*recv=\([0-9a-f]*\).*/\1/p' <<<"$out")
  [[ -n $sent && $sent == "$recv" ]] || { echo "  $out"; cat "$WORK/pyserver.log"; return 1; }
  "$PY" - "$WORK/pyserver.jsonl" <<'PYCHECK' || return 1
import json, sys
reqs = [json.loads(line) for line in open(sys.argv[1])]
assert len(reqs) == 1, reqs
r = reqs[0]
h = r["headers"]
assert r["method"] == "CONNECT", r
assert r["authority"] == "10.10.0.2:8080", r
assert ":path" not in h and ":scheme" not in h, h
assert r["client_uris"] == ["spiffe://cluster.local/ns/vms/sa/vm-a"], r
for name in ("baggage", "forwarded", "traceparent"):
    assert h.get(name), (name, h)
assert "k8s.namespace.name=vms" in h["baggage"], h["baggage"]
assert h["forwarded"].startswith("for="), h["forwarded"]
print("  recorded:", r["authority"], r["client_uris"][0], "baggage, forwarded, traceparent")
PYCHECK
}

rejected_by_python_server() {  # PORT STATUS: the client gets no byte and an end
  local out
  out=$(in_a timeout 20 "$PY" "$TCP_TOOL" send "$IP_B" "$1" 1000) || { echo "  $out"; return 1; }
  grep -q 'recv_bytes=0 ' <<<"$out" || { echo "  $out"; return 1; }
  grep -q "\"authority\": \"$IP_B:$1\"" "$WORK/pyserver.jsonl" || { echo "  no request for :$1"; return 1; }
  grep -q "HBONE CONNECT answered $2" "$WORK/vm-a.log" || { echo "  no access log for $2"; return 1; }
}
test_python_h2_server_403_closes_client() { rejected_by_python_server 8403 403; }
test_python_h2_server_503_closes_client() { rejected_by_python_server 8503 503; }

test_restarted_peer_serves_new_connections() {
  kill -TERM "$PY_SRV_PID"
  wait "$PY_SRV_PID" 2>/dev/null || true
  start_ztunnel "$NS_B" vm-b || return 1
  ZT_B=${PIDS[-1]}
  transfer $((1 << 20)) || return 1
  # The connections to the killed ztunnel and to the python server are gone; one fresh one serves.
  local conns
  conns=$(hbone_conns_a)
  [[ $conns -eq 1 ]] || { echo "  $conns connections to :15008 in $NS_A"; in_a ss -tn; return 1; }
}

run_here() {  # run_here NAME: as run, in this shell
  local name=$1 start=$SECONDS
  if "$name"; then
    echo "PASS $name ($((SECONDS - start))s)"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

netns_up
ZT_A=${PIDS[0]}
ZT_B=${PIDS[1]}
SECONDS=0
for t in test_1kib_transfer test_10mib_transfer test_100mib_transfer test_half_close \
  test_server_first_banner test_inbound_logs_peer_identity \
  test_50_concurrent_share_one_connection test_200_concurrent_use_two_pooled_connections \
  test_python_h2_mtls_connect test_wrong_destination_is_400 test_closed_upstream_port_is_503 \
  test_no_client_cert_refused; do
  run "$t"
done
for t in test_peer_ztunnel_killed_mid_stream test_python_h2_server_receives_our_connect \
  test_python_h2_server_403_closes_client test_python_h2_server_503_closes_client \
  test_restarted_peer_serves_new_connections; do
  run_here "$t"
done

# Last, in this shell (a subshell cannot wait for them): both ztunnels exit 0 on SIGTERM.
rc=0
for pid in "$ZT_A" "$ZT_B"; do
  kill -TERM "$pid" 2>/dev/null || { rc=1; continue; }
  wait "$pid" || rc=$?
done
remaining=()
for pid in "${PIDS[@]}"; do [[ $pid == "$ZT_A" || $pid == "$ZT_B" ]] || remaining+=("$pid"); done
PIDS=("${remaining[@]}")
if ((rc == 0)); then
  echo "PASS sigterm_exits_zero"
  passed=$((passed + 1))
else
  echo "FAIL sigterm_exits_zero (exit code $rc)"
  failed=$((failed + 1))
fi
echo "netns: scenarios took ${SECONDS}s"
((failed == 0))
