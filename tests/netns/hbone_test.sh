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
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

cleanup() {
  netns_cleanup
  echo "netns: $passed passed, $failed failed"
}
trap cleanup EXIT

same_digest() {  # same_digest OUTPUT: tcp_tool's sent and recv checksums match
  local sent recv
  sent=$(sed -n 's/.*sent=\([0-9a-f]*\).*/\1/p' <<<"$1")
  recv=$(sed -n 's/.*recv=\([0-9a-f]*\).*/\1/p' <<<"$1")
  [[ -n $sent && $sent == "$recv" ]] || { echo "  $1"; return 1; }
}

transfer() {  # transfer BYTES: echo through the tunnel, checksums must match
  same_digest "$(in_a "$PY" "$TCP_TOOL" send "$IP_B" 8080 "$1")"
}

# A client in vm-a whose sockets carry ztunnel's mark: vm-a's capture skips
# it, so it reaches vm-b as plain TCP and meets vm-b's inbound capture.
send_bypassing_a() { in_a env TCP_TOOL_MARK=1337 "$PY" "$TCP_TOOL" send "$@"; }

# Inbound access lines of vm-b's 15006 listener (no peer identity).
plaintext_lines() { grep 'direction=inbound' "$WORK/vm-b.log" | grep 'src.identity=-' || true; }

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
  # One pooled connection per worker that accepted some of the 50 (pools are per worker).
  ((conns >= 1 && conns <= ZT_WORKER_THREADS)) ||
    { echo "  $conns connections to :15008 in $NS_A ($ZT_WORKER_THREADS workers)"; in_a ss -tn; return 1; }
}

hbone_conns_a() { in_a ss -Htn state established '( dport = :15008 )' | wc -l; }

test_200_concurrent_use_two_pooled_connections() {
  # Held open all at once: 200 streams over POOL_MAX_STREAMS_PER_CONNECTION=100
  # need two HBONE connections (Istio's pool caps streams per connection). Each
  # worker pools its own share: ceil(n_i/100) each, at most workers + 1 in all.
  local release=$WORK/release-200 conns pid
  in_a "$PY" "$TCP_TOOL" hold "$IP_B" 8080 200 10000 "$release" >"$WORK/hold.out" 2>&1 &
  pid=$!
  for _ in $(seq 300); do grep -q '^open=' "$WORK/hold.out" && break; sleep 0.1; done
  conns=$(hbone_conns_a)
  touch "$release"
  wait "$pid"
  grep -q '^open=200 of 200$' "$WORK/hold.out" || { cat "$WORK/hold.out"; return 1; }
  grep -q '^closed=200 of 200$' "$WORK/hold.out" || { cat "$WORK/hold.out"; return 1; }
  ((conns >= 2 && conns <= ZT_WORKER_THREADS + 1)) ||
    { echo "  $conns connections to :15008 in $NS_A ($ZT_WORKER_THREADS workers)"; return 1; }
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

test_plaintext_inbound_through_15006() {
  # 777777 bytes: a size no other scenario sends, to find this connection's lines.
  local out
  out=$(send_bypassing_a "$IP_B" 8080 777777)
  same_digest "$out" || return 1
  sleep 0.2
  plaintext_lines | grep "src.addr=$IP_A:" | grep "dst.addr=$IP_B:8080" |
    grep 'dst.identity=spiffe://cluster.local/ns/vms/sa/vm-b' | grep -q 'bytes_recv=777777 ' ||
    { echo "  no plaintext inbound line in vm-b's log:"; grep access "$WORK/vm-b.log" | tail -3; return 1; }
  # It never went through vm-a's ztunnel.
  if grep -q 'bytes_sent=777777 ' "$WORK/vm-a.log"; then
    echo "  vm-a's ztunnel carried it"
    return 1
  fi
}

test_hbone_not_recaptured_by_15006() {
  # vm-b's ztunnel delivers HBONE traffic to the app with a local connection;
  # nat PREROUTING must not send that back into 15006.
  local before after
  before=$(plaintext_lines | wc -l)
  transfer 333333 || return 1
  sleep 0.2
  after=$(plaintext_lines | wc -l)
  grep 'direction=inbound' "$WORK/vm-b.log" | grep 'status=200' |
    grep 'src.identity=spiffe://cluster.local/ns/vms/sa/vm-a' | grep -q 'bytes_recv=333333 ' ||
    { echo "  no HBONE inbound line for the transfer"; return 1; }
  ((after == before)) || { echo "  $((after - before)) new plaintext inbound lines"; return 1; }
}

test_plaintext_self_call_refused() {
  # vm-b:15001 from outside is redirected to 15006, which refuses to call itself.
  local out
  out=$(send_bypassing_a "$IP_B" 15001 1000)
  grep -q 'recv_bytes=0 ' <<<"$out" || { echo "  $out"; return 1; }
  sleep 0.2
  grep 'direction=inbound' "$WORK/vm-b.log" | grep "dst.addr=$IP_B:15001" |
    grep -q 'attempted recursive call to ourselves'
}

test_excluded_inbound_port_skips_15006() {
  # vm-b excludes 8081: the server sees vm-a's address, and 15006 logs nothing.
  local out want
  out=$(send_bypassing_a "$IP_B" 8081 4321)
  want=$("$PY" -c 'import hashlib,random; print(hashlib.sha256(random.Random(1).randbytes(4321)).hexdigest())')
  grep -q "recv_text=$want 4321" <<<"$out" || { echo "  $out"; return 1; }
  grep -q "digest: connection from $IP_A:" "$WORK/server.log" ||
    { echo "  the server did not see vm-a's address"; return 1; }
  if plaintext_lines | grep -q "dst.addr=$IP_B:8081"; then
    echo "  15006 carried an excluded port"
    return 1
  fi
}

test_iptables_script_is_idempotent() {
  local first second
  local -a vm_b=(env ZTUNNEL_MESH_CIDRS=10.10.0.0/24 ZTUNNEL_EXCLUDE_INBOUND_PORTS=8081
    "$IPTABLES_SCRIPT")
  first=$(in_b iptables-save -t nat | grep -v '^#')
  in_b "${vm_b[@]}" install || return 1
  second=$(in_b iptables-save -t nat | grep -v '^#')
  [[ $first == "$second" ]] || { diff <(echo "$first") <(echo "$second"); return 1; }
  in_b "$IPTABLES_SCRIPT" uninstall || return 1
  in_b "$IPTABLES_SCRIPT" uninstall || return 1
  if in_b iptables-save -t nat | grep -q ZTUNNEL; then
    echo "  uninstall left rules behind"
    return 1
  fi
  in_b "${vm_b[@]}" install || return 1
  [[ $(in_b iptables-save -t nat | grep -v '^#') == "$first" ]]
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
  # A cut tunnel must look cut: a reset, never a clean end of stream.
  grep -q '^ended by=reset' "$out" || { cat "$out"; return 1; }
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
  test_no_client_cert_refused \
  test_plaintext_inbound_through_15006 test_hbone_not_recaptured_by_15006 \
  test_plaintext_self_call_refused test_excluded_inbound_port_skips_15006 \
  test_iptables_script_is_idempotent; do
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
