#!/usr/bin/env bash
# L4 authorization end to end: policies enforced by vm-b's inbound listeners,
# and changed at run time (SIGHUP reloads LOCAL_XDS_PATH).
# Needs root; exits 77 (skipped) otherwise. Usage: policy_test.sh [BUILD_DIR]
#
#   netns $NS_A                                  netns $NS_B
#   client --> 15001 ztunnel vm-a ===HBONE====>  15008 ztunnel vm-b --> echo 10.10.0.2:8080
#   (identity vms/vm-a)                          15006 (plaintext)  --> echo 10.10.0.2:8090
#   client with mark 1337 ------plain TCP----->  ^   policies from $WORK/config.yaml,
#                                                    re-read on SIGHUP
#
# (The capture rules and the rest of the topology: tests/netns/lib.sh.)
# Each scenario writes the policies it needs, reloads vm-b and checks what
# the client got, what the echo server saw and what vm-b logged.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "netns: skipped (needs root)"
  exit 77
fi
[[ -n ${1:-} ]] && export ZTUNNEL_BUILD_DIR=$1
export NS_A=zt-pol-a-$$ NS_B=zt-pol-b-$$
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

cleanup() {
  netns_cleanup
  echo "netns-policy: $passed passed, $failed failed"
}
trap cleanup EXIT

fail() { echo "  $*"; return 1; }

reloads() { grep -c 'local config reloaded' "$WORK/vm-b.log" || true; }

reload_b() {  # SIGHUP vm-b and wait for it to log the reload
  local before
  before=$(reloads)
  kill -HUP "$ZT_B"
  for _ in $(seq 50); do
    (($(reloads) > before)) && return 0
    sleep 0.1
  done
  grep 'xds' "$WORK/vm-b.log" | tail -3
  fail "vm-b did not reload its config"
}

apply_policies() { write_local_config "$@" && reload_b; }

# Connections the echo server accepted on PORT so far.
server_conns() { grep -c "echo: connection from .* to port $1\$" "$WORK/server.log" || true; }

send_hbone() { in_a "$PY" "$TCP_TOOL" send "$IP_B" "$1" "$2"; }
send_plain() { in_a env TCP_TOOL_MARK=1337 "$PY" "$TCP_TOOL" send "$IP_B" "$1" "$2"; }

expect_echoed() {  # OUTPUT: sent and received digests match
  local sent recv
  sent=$(sed -n 's/.*sent=\([0-9a-f]*\).*/\1/p' <<<"$1")
  recv=$(sed -n 's/.*recv=\([0-9a-f]*\).*/\1/p' <<<"$1")
  [[ -n $sent && $sent == "$recv" ]] || fail "not echoed: $1"
}
expect_nothing() {  # OUTPUT: the client got no byte back
  grep -q 'recv_bytes=0 ' <<<"$1" || fail "expected no bytes: $1"
}

test_hbone_denied_by_principal() {
  apply_policies '[]' '- name: deny-vm-a
  namespace: vms
  scope: Namespace
  action: Deny
  rules: [[[{principals: [{Exact: cluster.local/ns/vms/sa/vm-a}]}]]]'
  local before out
  before=$(server_conns 8080)
  out=$(send_hbone 8080 1111)
  expect_nothing "$out"
  sleep 0.2
  (($(server_conns 8080) == before)) || fail "the echo server saw the denied connection"
  grep 'status=401' "$WORK/vm-b.log" | grep 'src.identity=spiffe://cluster.local/ns/vms/sa/vm-a' |
    grep -q 'error="connection closed due to policy rejection: explicitly denied by: vms/deny-vm-a"' ||
    fail "no 401 access line naming vms/deny-vm-a in vm-b's log"
  grep -q 'HBONE CONNECT answered 401' "$WORK/vm-a.log" || fail "vm-a did not see the 401"
}

test_allow_policy_for_another_principal() {
  apply_policies '[]' '- name: only-vm-a
  namespace: vms
  scope: Namespace
  action: Allow
  rules: [[[{principals: [{Exact: cluster.local/ns/vms/sa/vm-a}]}]]]'
  "$ZTUNNEL_CERTS" issue --ca-dir "$WORK/ca" --identity spiffe://cluster.local/ns/vms/sa/tester \
    --out "$WORK/tester" >/dev/null
  # An identity the ALLOW does not name: 401, straight from python-h2.
  in_a "$PY" "$LIB_DIR/h2_connect.py" "$IP_B" 15008 "$IP_B:8080" "$WORK/tester" 401 >/dev/null ||
    fail "tester was not refused with 401"
  sleep 0.2
  grep 'src.identity=spiffe://cluster.local/ns/vms/sa/tester' "$WORK/vm-b.log" | grep 'status=401' |
    grep -q 'policy rejection: allow policies exist, but none allowed' ||
    fail "no access line for tester's denial"
  # The principal it names still gets through.
  expect_echoed "$(send_hbone 8080 2222)"
}

STRICT='- name: istio_converted_static_strict
  namespace: istio-system
  scope: WorkloadSelector
  action: Deny
  rules: [[[{notPrincipals: [{Presence: []}]}]]]'

test_strict_refuses_plaintext() {
  # What istiod sends for a STRICT PeerAuthentication: the static DENY,
  # referenced by the workload.
  apply_policies '[istio-system/istio_converted_static_strict]' "$STRICT"
  local before out
  before=$(server_conns 8080)
  out=$(send_plain 8080 3333)
  expect_nothing "$out"
  sleep 0.2
  (($(server_conns 8080) == before)) || fail "the echo server saw the refused plaintext connection"
  grep 'src.identity=-' "$WORK/vm-b.log" | grep "dst.addr=$IP_B:8080" | grep -q \
    'error="connection closed due to policy rejection: explicitly denied by: istio-system/istio_converted_static_strict"' ||
    fail "no plaintext denial line naming the STRICT policy"
  # mTLS still passes.
  expect_echoed "$(send_hbone 8080 3334)"
}

test_permissive_admits_plaintext() {
  apply_policies '[]' "$STRICT"  # defined, but vm-b does not reference it
  expect_echoed "$(send_plain 8080 4444)"
}

test_permissive_port_exception() {
  # STRICT namespace with a PERMISSIVE port 8090 on vm-b: istiod merges both
  # into one workload DENY (plaintext AND not port 8090) and drops the static
  # policy from the workload's list.
  apply_policies '[vms/converted_peer_authentication_vm-b]' "$STRICT
- name: converted_peer_authentication_vm-b
  namespace: vms
  scope: WorkloadSelector
  action: Deny
  rules: [[[{notDestinationPorts: [8090]}], [{notPrincipals: [{Presence: []}]}]]]"
  expect_echoed "$(send_plain 8090 5555)" || return 1
  expect_nothing "$(send_plain 8080 5556)" || return 1
  expect_echoed "$(send_hbone 8080 5557)" || return 1
  sleep 0.2
  grep "dst.addr=$IP_B:8080" "$WORK/vm-b.log" | grep 'src.identity=-' | grep -q \
    'explicitly denied by: vms/converted_peer_authentication_vm-b' ||
    fail "no denial line for plaintext to 8080"
}

test_policy_change_closes_open_connections() {
  apply_policies '[]' '[]'
  local doomed=$WORK/ping-doomed doomed_plain=$WORK/ping-doomed-plain kept=$WORK/ping-kept
  in_a "$PY" "$TCP_TOOL" ping "$IP_B" 8080 8 >"$doomed" 2>&1 &
  local p1=$!
  in_a env TCP_TOOL_MARK=1337 "$PY" "$TCP_TOOL" ping "$IP_B" 8080 8 >"$doomed_plain" 2>&1 &
  local p2=$!
  in_a "$PY" "$TCP_TOOL" ping "$IP_B" 8090 5 >"$kept" 2>&1 &
  local p3=$!
  all_open() { grep -q '^open' "$doomed" && grep -q '^open' "$doomed_plain" && grep -q '^open' "$kept"; }
  for _ in $(seq 50); do all_open && break; sleep 0.1; done
  if ! all_open; then fail "connections did not open: $(cat "$doomed" "$doomed_plain" "$kept")"; fi

  apply_policies '[]' '- name: close-8080
  namespace: vms
  scope: Namespace
  action: Deny
  rules: [[[{destinationPorts: [8080]}]]]'
  local hup=$SECONDS
  # Both connections to 8080 end within ~2 s of the reload (the pings would run 8 s).
  for _ in $(seq 30); do
    grep -q '^pings=' "$doomed" && grep -q '^pings=' "$doomed_plain" && break
    sleep 0.1
  done
  wait "$p1" "$p2" || true
  grep -q '^pings=' "$doomed" || fail "HBONE connection to 8080 still open $((SECONDS - hup))s after the change"
  grep -q '^pings=' "$doomed_plain" || fail "plaintext connection to 8080 still open after the change"
  if grep -q 'ended=none' "$doomed" "$doomed_plain"; then fail "a connection to 8080 ran to its end"; fi
  echo "  closed: HBONE $(tail -1 "$doomed"); plaintext $(tail -1 "$doomed_plain")"

  # The connection to 8090 is still allowed: it keeps echoing to its end.
  wait "$p3" || true
  grep -q 'ended=none' "$kept" || fail "the connection to 8090 was disturbed: $(cat "$kept")"
  local pings
  pings=$(sed -n 's/^pings=\([0-9]*\).*/\1/p' "$kept")
  ((pings >= 30)) || fail "only $pings pings on the 8090 connection"

  # One line per closed connection, naming it and the reason; and its access line.
  local closed
  closed=$(grep 'connection closed due to policy change' "$WORK/vm-b.log" |
    grep 'reason="explicitly denied by: vms/close-8080"' | grep -c "$IP_B:8080 (vms/vm-b)" || true)
  # Their access lines keep the bytes that flowed before the close.
  local late
  late=$(grep 'connection complete' "$WORK/vm-b.log" |
    grep -c 'bytes_recv=[1-9][0-9]* .*error="connection closed due to policy change"' || true)
  ((late == 2)) || fail "expected 2 late-rejection access lines with their bytes, saw $late"
  ((closed == 2)) || fail "expected 2 policy-change lines naming the connections, saw $closed"
}

test_dry_run_deny_is_logged_not_enforced() {
  apply_policies '[]' '- name: dry-deny-vm-a
  namespace: vms
  scope: Namespace
  action: Deny
  dryRun: true
  rules: [[[{principals: [{Exact: cluster.local/ns/vms/sa/vm-a}]}]]]'
  expect_echoed "$(send_hbone 8080 6666)" || return 1
  sleep 0.2
  # vm-b runs with AUTHZ_POLICY_INFO_LOGGING=true, so the dry-run match is at INFO.
  grep 'dry-run: deny policy match' "$WORK/vm-b.log" | grep -q 'policy=vms/dry-deny-vm-a' ||
    fail "no dry-run line for vms/dry-deny-vm-a"
  grep 'connection complete' "$WORK/vm-b.log" | grep 'bytes_recv=6666 ' | grep -q 'status=200' ||
    fail "the dry-run connection has no successful access line"
}

test_bad_reload_keeps_policies() {
  # Enforce a DENY, then break the file: the DENY must survive the failed reload.
  apply_policies '[]' '- name: deny-8090
  namespace: vms
  scope: Namespace
  action: Deny
  rules: [[[{destinationPorts: [8090]}]]]'
  echo "policies: [[[not yaml" >"$WORK/config.yaml"
  kill -HUP "$ZT_B"
  for _ in $(seq 30); do grep -q 'not reloaded' "$WORK/vm-b.log" && break; sleep 0.1; done
  grep -q 'not reloaded, keeping the current state' "$WORK/vm-b.log" ||
    fail "no error line for the bad file"
  expect_nothing "$(send_hbone 8090 7777)" || return 1
  expect_echoed "$(send_hbone 8080 7778)"
}

netns_create
certs_init
write_local_config '[]'
start_ztunnel "$NS_A" vm-a
start_ztunnel "$NS_B" vm-b AUTHZ_POLICY_INFO_LOGGING=true
install_capture
start_server 8090
ZT_B=${PIDS[1]}
SECONDS=0
for t in test_hbone_denied_by_principal test_allow_policy_for_another_principal \
  test_strict_refuses_plaintext test_permissive_admits_plaintext test_permissive_port_exception \
  test_policy_change_closes_open_connections test_dry_run_deny_is_logged_not_enforced \
  test_bad_reload_keeps_policies; do
  run "$t"
done
echo "netns-policy: scenarios took ${SECONDS}s"
((failed == 0))
