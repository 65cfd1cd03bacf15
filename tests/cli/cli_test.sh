#!/usr/bin/env bash
# Runs the real ztunnel binary: commands, configuration errors, local config
# start-up and signal shutdown. Usage: cli_test.sh <ztunnel binary> <test data dir>
set -euo pipefail

ztunnel=$1
data=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

check() {  # check <name> <command...>: the command must succeed
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name" >&2
  fi
}

# --- commands ----------------------------------------------------------------
check "version prints the version" \
  bash -c "'$ztunnel' version | grep -Eq '^ztunnel-cpp [0-9]+\.[0-9]+\.[0-9]+ '"
check "help lists Istio's variables" \
  bash -c "'$ztunnel' help | grep -q PROXY_WORKLOAD_INFO && '$ztunnel' --help | grep -q HTTP2_STREAM_WINDOW_SIZE"
check "an unknown command exits 2" \
  bash -c "'$ztunnel' frobnicate 2>/dev/null; test \$? -eq 2"

# --- configuration errors: exit 1 with one line naming variable and value ------
bad_env() {  # bad_env <expected text> VAR=value...
  local expected=$1
  shift
  local out rc=0
  out=$(env -i "$@" "$ztunnel" 2>&1) || rc=$?
  [[ $rc -eq 1 ]] && [[ $(wc -l <<<"$out") -eq 1 ]] && grep -qF -- "$expected" <<<"$out"
}
check "a bad PROXY_MODE names itself" bad_env 'PROXY_MODE="sidecar"' PROXY_MODE=sidecar
check "dedicated mode needs PROXY_WORKLOAD_INFO" bad_env 'PROXY_WORKLOAD_INFO' PROXY_MODE=dedicated
check "a bad duration names itself" bad_env 'SECRET_TTL="ten"' SECRET_TTL=ten
check "a bad window size names itself" bad_env 'HTTP2_STREAM_WINDOW_SIZE' HTTP2_STREAM_WINDOW_SIZE=-1

# --- local config --------------------------------------------------------------
# ENABLE_PROXY=false: these checks are about loading state, not the listeners
# (tests/netns runs those, inside namespaces of its own).
run_env=(env -i PROXY_MODE=dedicated PROXY_WORKLOAD_INFO=default/local/default XDS_ADDRESS= CA_ADDRESS=
  ENABLE_PROXY=false)

printf 'workloads:\n- namespace: default\n  workloadIP: 10.0.0.1\n' >"$work/bad.yaml"
check "a bad local config fails start-up with file:line:column" bash -c "
  out=\$(${run_env[*]} LOCAL_XDS_PATH='$work/bad.yaml' '$ztunnel' 2>&1); rc=\$?
  [[ \$rc -eq 1 ]] && grep -qF '$work/bad.yaml:3:3: unknown key \"workloadIP\"' <<<\"\$out\""

start_and_stop() {  # start_and_stop <log> <env...>: start, wait for ready, SIGTERM, expect exit 0
  local log=$1
  shift
  "$@" "$ztunnel" >"$log" 2>&1 &
  local pid=$! i
  for i in $(seq 100); do
    grep -q $'\tready' "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -TERM "$pid" 2>/dev/null || return 1
  wait "$pid"
}
check "Istio's localhost example loads and SIGTERM exits 0" bash -c "
  $(declare -f start_and_stop); ztunnel='$ztunnel'
  start_and_stop '$work/ok.log' ${run_env[*]} LOCAL_XDS_PATH='$data/localhost.yaml' &&
  grep -q 'local config initialized workloads=2 services=2 policies=1' '$work/ok.log'"
check "inline LOCAL_XDS and JSON logs" bash -c "
  $(declare -f start_and_stop); ztunnel='$ztunnel'
  start_and_stop '$work/json.log' ${run_env[*]} LOG_FORMAT=json \
    LOCAL_XDS='workloads: [{uid: a, namespace: ns, workloadIps: [10.1.1.1]}]' &&
  grep -q '{\"level\":\"info\",\"time\":\"[^\"]*\",\"scope\":\"xds\",\"message\":\"local config initialized\",\"workloads\":\"1\"' '$work/json.log'"

check "dedicated mode without a certificate source says which variables to set" bash -c "
  out=\$(env -i PROXY_MODE=dedicated PROXY_WORKLOAD_INFO=default/local/default XDS_ADDRESS= \
    CA_ADDRESS= LOCAL_XDS_PATH='$data/localhost.yaml' '$ztunnel' 2>&1); rc=\$?
  [[ \$rc -eq 1 ]] && grep -q 'set ZTUNNEL_CA_DIR, ZTUNNEL_CERT_DIR or FAKE_CA=true' <<<\"\$out\""

echo "cli: $passed passed, $failed failed"
((failed == 0))
