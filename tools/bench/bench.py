#!/usr/bin/python3
"""Measurement loop and report for tools/bench/run (stdlib only).

tools/bench/run sets up the namespaces, the four variants' processes and the
servers, then runs this. For every round, every workload runs once on every
variant, the variants' order rotating from round to round so that none always
goes first (A/B alternation). The report gives, per (workload, metric,
variant), the median over rounds, the spread, and the ratios to stunnel and
to direct TCP.

Workloads (select with --only): bulk1, bulk4, rr, crr and handshakes run every
round (bulk = bulk1,bulk4; latency = rr,crr);
conns (many idle connections, memory) and config (config scale: load time and
memory) run once, after the rounds, and get tables of their own.
"""
import argparse
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
VARIANTS = ["direct", "socat", "stunnel", "ztunnel"]
WORKLOADS = ["bulk1", "bulk4", "rr", "crr", "handshakes", "conns", "config"]
# Shorthands accepted by --only.
WORKLOAD_GROUPS = {"bulk": ["bulk1", "bulk4"], "latency": ["rr", "crr"]}
# Same rule as install_capture in tests/netns/lib.sh; only on while ztunnel is measured.
CAPTURE = ["OUTPUT", "-p", "tcp", "-d", "10.10.0.0/24", "!", "--dport", "15008",
           "-m", "mark", "!", "--mark", "0x539/0xfff", "-j", "REDIRECT", "--to-ports", "15001"]


def sh(ns, *argv, timeout=120):
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=timeout)


def proc_ticks(pid):
    """utime+stime of pid plus cutime+cstime (its children that exited and were reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0, None
    # fields[0] is field 3 (state); utime..cstime are fields 14..17; ppid is field 4.
    return sum(int(x) for x in fields[11:15]), int(fields[1])


def cpu_seconds(roots):
    """CPU seconds of the root processes and all their live descendants (socat forks)."""
    if not roots:
        return 0.0
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            _, ppid = proc_ticks(d)
            if ppid is not None:
                parent[int(d)] = ppid
    total = 0
    for pid in parent:
        p = pid
        while p in parent and p not in roots:
            p = parent[p]
        if p in roots:
            total += proc_ticks(pid)[0]
    return total / CLK_TCK


def rss_kib(pid, field="VmRSS"):
    """VmRSS of pid in KiB (0 if it is gone); or its RssAnon (heap, stacks) or
    RssFile (code and data of the binary and its libraries) part."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def count_established(ns, ss_filter):
    r = sh(ns, "ss", "-Htn", "state", "established", ss_filter)
    return len(r.stdout.splitlines())


def wait_count(ns, ss_filter, want, timeout, at_least=True):
    """Polls until the number of established sockets matching ss_filter reaches want."""
    end = time.monotonic() + timeout
    while True:
        n = count_established(ns, ss_filter)
        if (n >= want if at_least else n <= want) or time.monotonic() > end:
            return n
        time.sleep(0.2)


def yaml_scale_config(workloads, services, policies):
    """Istio local-config YAML: the two bench VMs plus generated workloads, services
    and policies. Every workload is an HBONE pod in one of 50 namespaces, behind one
    service; every policy is a namespace-scoped ALLOW with a principal and a port."""
    out = ["workloads:"]
    for name, ip in (("vm-a", "10.10.0.1"), ("vm-b", "10.10.0.2")):
        out += [f"- uid: vms/{name}", f"  name: {name}", "  namespace: vms",
                f"  serviceAccount: {name}", f"  workloadIps: [{ip}]", "  protocol: HBONE"]
    for i in range(workloads):
        ns, svc = f"ns{i % 50}", i % services
        out += [f"- uid: cluster1//v1/Pod/{ns}/pod-{i}", f"  name: pod-{i}", f"  namespace: {ns}",
                f"  serviceAccount: sa-{i % 200}", f"  workloadIps: [10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}]",
                "  protocol: HBONE", f"  node: node-{i % 100}", "  services:",
                f'    "ns{svc % 50}/svc-{svc}.ns{svc % 50}.svc.cluster.local":', "      80: 8080"]
    out.append("services:")
    for s in range(services):
        ns = f"ns{s % 50}"
        out += [f"- name: svc-{s}", f"  namespace: {ns}", f"  hostname: svc-{s}.{ns}.svc.cluster.local",
                f"  vips: [/10.96.{s // 256}.{s % 256}]", "  ports:", "    80: 8080"]
    out.append("policies:")
    for k in range(policies):
        ns = f"ns{k % 50}"
        out += [f"- name: allow-{k}", f"  namespace: {ns}", "  scope: Namespace", "  action: Allow",
                "  rules:", f"  - - - principals: [{{Exact: cluster.local/ns/{ns}/sa/sa-{k % 200}}}]",
                f"      - destinationPorts: [{8080 + k % 10}]"]
    return "\n".join(out) + "\n"


class Bench:
    def __init__(self, a):
        self.a = a
        self.ns_a, self.ns_b = a.ns_a, a.ns_b
        rr = os.path.join(a.work, "rr")
        pids = lambda s: {int(p) for p in s.split(",") if p}
        # name: (host, iperf port, rr port, proxy pids, capture on)
        self.variants = {
            "direct": ("10.10.0.2", 5201, 7000, set(), False),
            "socat": ("127.0.0.1", 11201, 11700, pids(a.socat_pids), False),
            "stunnel": ("127.0.0.1", 13201, 13700, pids(a.stunnel_pids), False),
            "ztunnel": ("10.10.0.2", 5201, 7000, pids(a.ztunnel_pids), True),
        }
        self.rr = rr
        self.capture = False
        self.zt_pids = [int(p) for p in a.ztunnel_pids.split(",")]
        self.stunnel_pids = [int(p) for p in a.stunnel_pids.split(",")]
        self.only = set(WORKLOADS)
        if a.only:
            self.only = set()
            for w in a.only.split(","):
                self.only.update(WORKLOAD_GROUPS.get(w, [w]))

    def set_capture(self, on):
        if on != self.capture:
            r = sh(self.ns_a, "iptables", "-t", "nat", "-A" if on else "-D", *CAPTURE)
            if r.returncode != 0:
                sys.exit(f"bench: iptables failed: {r.stderr.strip()}")
            self.capture = on

    def bulk(self, variant, streams):
        host, port, _, pids, capture = self.variants[variant]
        self.set_capture(capture)
        before = cpu_seconds(pids)
        r = sh(self.ns_a, "iperf3", "-c", host, "-p", str(port), "-t", str(self.a.bulk_seconds),
               "-P", str(streams), "-J", timeout=self.a.bulk_seconds + 60)
        time.sleep(0.3)  # let socat's per-connection children exit and be reaped
        cpu = cpu_seconds(pids) - before
        try:
            end = json.loads(r.stdout)["end"]["sum_received"]
        except (ValueError, KeyError):
            return {"error": (r.stdout[-300:] + r.stderr[-300:]).strip()}
        gb = end["bytes"] / 1e9
        out = {"gbit_s": end["bits_per_second"] / 1e9}
        if pids:
            out["cpu_s_per_gb"] = cpu / gb if gb else None
        return out

    def latency(self, variant, mode):
        host, _, port, pids, capture = self.variants[variant]
        self.set_capture(capture)
        before = cpu_seconds(pids)
        r = sh(self.ns_a, self.rr, mode, host, str(port), str(self.a.rr_seconds),
               timeout=self.a.rr_seconds + 60)
        if mode == "crr":
            time.sleep(0.3)  # let socat's per-connection children exit and be reaped
        cpu = cpu_seconds(pids) - before
        try:
            out = json.loads(r.stdout)
        except ValueError:
            return {"error": (r.stdout[-300:] + r.stderr[-300:]).strip()}
        if out.get("errors"):
            out["error"] = f"{out['errors']} failed connections"
        if pids and out.get("n"):
            # Per proxy of the pair (each variant has two sides), per request or
            # connection; the warm-up exchanges are in the CPU but not in n, a
            # bias of 200 / n (under 1% at 5 s). Clock-tick resolution.
            out["cpu_us_per_req"] = cpu / 2 / out["n"] * 1e6
        return out

    def handshakes(self, variant):
        """Full mTLS handshakes against the server side only; its CPU per handshake."""
        if variant not in ("stunnel", "ztunnel"):
            return None
        self.set_capture(False)
        if variant == "ztunnel":
            port, mode, pid = 15008, "h2", self.zt_pids[1]
            ca, dirs = os.path.join(self.a.work, "ca", "ca-cert.pem"), self.a.identities.split(",")
        else:
            port, mode, pid = 14700, "echo", self.stunnel_pids[1]
            ca, dirs = os.path.join(self.a.work, "stunnel", "ca.pem"), [os.path.join(self.a.work, "stunnel", "id")]
        before = cpu_seconds({pid})
        r = sh(self.ns_a, "/usr/bin/python3", os.path.join(os.path.dirname(__file__), "handshake.py"),
               "10.10.0.2", str(port), str(self.a.handshake_seconds), "2", mode, ca, *dirs,
               timeout=self.a.handshake_seconds + 60)
        time.sleep(0.2)
        cpu = cpu_seconds({pid}) - before
        try:
            out = json.loads(r.stdout)
        except ValueError:
            return {"error": (r.stdout[-300:] + r.stderr[-300:]).strip()}
        res = {"hs_per_s": out["handshakes"] / out["seconds"], "server_cpu_s": cpu,
               "hs_per_cpu_s": out["handshakes"] / cpu if cpu > 0 else None}
        if out["errors"]:
            res["error"] = f"{out['errors']} failed handshakes"
        return res

    def conns(self, variant, n):
        """n idle connections through the variant, then 1 KiB each way on all, then closed:
        RSS of both proxy processes at each step."""
        host, _, port, _, capture = self.variants[variant]
        pids = self.zt_pids if variant == "ztunnel" else self.stunnel_pids
        self.set_capture(capture)
        upstream = "( sport = :7000 )"  # the server's side of the proxies' upstream connections
        rss = {"before": [rss_kib(p) for p in pids]}
        anon = {"before": [rss_kib(p, "RssAnon") for p in pids]}
        p = subprocess.Popen(["ip", "netns", "exec", self.ns_a, self.rr, "conns", host, str(port), str(n),
                              str(self.a.conn_rate)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def step(name, timeout=300):
            ready, _, _ = select.select([p.stdout], [], [], timeout)
            line = p.stdout.readline() if ready else ""
            if not line:
                raise RuntimeError(f"rr conns: no '{name}' step")
            return json.loads(line)

        res = {"n": n}
        try:
            opened = step("open")
            res["open_s"] = opened["seconds"]
            # The client's connects finish at the local proxy; wait for the far side.
            up = wait_count(self.ns_b, upstream, n, 60)
            if variant == "ztunnel":
                res["hbone_conns"] = count_established(self.ns_a, "( dport = :15008 )")
            time.sleep(self.a.settle)
            rss["open"] = [rss_kib(q) for q in pids]
            res["proxied"] = min(up, opened["n"])
            if opened["n"] != n or up < n:
                res["error"] = f"{opened['n']} of {n} connected ({opened['errors']} errors), {up} upstream"
            p.stdin.write("go\n")
            p.stdin.flush()
            traffic = step("traffic")
            res["traffic_s"] = traffic["seconds"]
            if traffic["ok"] != opened["n"]:
                res["error"] = f"{traffic['ok']} of {opened['n']} echoed 1 KiB"
            time.sleep(self.a.settle)
            rss["traffic"] = [rss_kib(q) for q in pids]
            p.stdin.write("go\n")
            p.stdin.flush()
            step("closed")
            p.wait(30)
            wait_count(self.ns_b, upstream, 0, 60, at_least=False)
            # ztunnel-cpp drains a burst's spare HBONE connections 1 s after their
            # last stream, and gives memory back on a 1 s period: ~5 s in all.
            time.sleep(5 * self.a.settle)
            rss["after"] = [rss_kib(q) for q in pids]
            anon["after"] = [rss_kib(q, "RssAnon") for q in pids]
        except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as e:
            p.kill()
            res["error"] = str(e)
            return res
        # Per connection actually proxied: a failed connection holds nothing.
        n = max(res["proxied"], 1)
        for side, k in (("a", 0), ("b", 1)):
            for st in ("before", "open", "traffic", "after"):
                res[f"rss_{st}_{side}_kib"] = rss[st][k]
            res[f"per_conn_open_{side}_kib"] = (rss["open"][k] - rss["before"][k]) / n
            res[f"per_conn_traffic_{side}_kib"] = (rss["traffic"][k] - rss["before"][k]) / n
            grown = rss["traffic"][k] - rss["before"][k]
            res[f"after_vs_before_{side}"] = rss["after"][k] / rss["before"][k] if rss["before"][k] else None
            res[f"returned_{side}"] = (rss["traffic"][k] - rss["after"][k]) / grown if grown > 0 else None
            res[f"anon_before_{side}_kib"] = anon["before"][k]
            res[f"anon_after_{side}_kib"] = anon["after"][k]
        return res

    def config(self, name, path):
        """Starts a ztunnel in the spare namespace with config path: time to ready, RSS."""
        log = os.path.join(self.a.work, f"config-{name}.log")
        env = ["env", "PROXY_MODE=dedicated", "PROXY_WORKLOAD_INFO=vms/vm-a/vm-a", "XDS_ADDRESS=",
               "CA_ADDRESS=", f"LOCAL_XDS_PATH={path}", "PACKET_MARK=1337",
               f"ZTUNNEL_CA_DIR={self.a.work}/ca", "RUST_LOG=info"]
        with open(log, "w") as f:
            t0 = time.monotonic()
            p = subprocess.Popen(["ip", "netns", "exec", self.a.ns_c, *env, self.a.ztunnel],
                                 stdout=f, stderr=subprocess.STDOUT)
        res = {}
        try:
            while True:
                with open(log) as f:
                    text = f.read()
                if "\tready" in text:
                    res["ready_s"] = time.monotonic() - t0
                    # CPU, unlike wall time, does not count waiting for a busy machine's cores.
                    res["cpu_s"] = proc_ticks(p.pid)[0] / CLK_TCK
                    break
                if p.poll() is not None or time.monotonic() - t0 > 60:
                    return {"error": f"no ready line: {text[-300:]}"}
                time.sleep(0.005)
            res["rss_ready_kib"] = rss_kib(p.pid)
            time.sleep(self.a.settle)
            res["rss_1s_kib"] = rss_kib(p.pid)
            for line in text.splitlines():
                if "local config initialized" in line:
                    res["loaded"] = line.split("local config initialized", 1)[1].strip()
        finally:
            p.terminate()
            p.wait(10)
        return res

    def workloads(self):
        """The per-round workloads: (name for --only, report name, measurement)."""
        return [
            ("bulk1", "bulk 1 stream", lambda v: self.bulk(v, 1)),
            ("bulk4", "bulk 4 streams", lambda v: self.bulk(v, 4)),
            ("rr", "req/resp 1 KiB", lambda v: self.latency(v, "pingpong")),
            ("crr", "connect/req/close", lambda v: self.latency(v, "crr")),
            ("handshakes", "handshakes", self.handshakes),
        ]

    def run_once(self):
        """The workloads measured once, after the rounds: {name: {variant: measurement}}."""
        once = {}
        if "conns" in self.only:
            chosen = self.a.variants.split(",") if self.a.variants else VARIANTS
            for v, n in (("ztunnel", self.a.conns), ("stunnel", self.a.stunnel_conns)):
                if v not in chosen:
                    continue
                m = self.conns(v, n)
                once.setdefault("conns", {})[v] = m
                print(f"  conns {v:<8} {m}", flush=True)
            self.set_capture(False)
        if "config" in self.only:
            scale = os.path.join(self.a.work, "config-scale.yaml")
            w, s, p = (int(x) for x in self.a.config_scale.split(","))
            with open(scale, "w") as f:
                f.write(yaml_scale_config(w, s, p))
            for name, path in (("small", os.path.join(self.a.work, "config.yaml")), (f"{w}/{s}/{p}", scale)):
                m = self.config(name.replace("/", "-"), path)
                m["file_kib"] = os.path.getsize(path) / 1024
                once.setdefault("config", {})[name] = m
                print(f"  config {name:<16} {m}", flush=True)
        return once

    def run(self):
        results = []
        # Memory of the two ztunnels before any traffic: the small-config start-up RSS.
        self.start_rss = [rss_kib(p) for p in self.zt_pids]
        variants = self.a.variants.split(",") if self.a.variants else VARIANTS
        for rnd in range(self.a.rounds):
            order = VARIANTS[rnd % 4:] + VARIANTS[:rnd % 4]
            order = [v for v in order if v in variants]
            for short, name, fn in self.workloads():
                if short not in self.only:
                    continue
                for v in order:
                    m = fn(v)
                    if m is None:
                        continue
                    results.append({"round": rnd, "workload": name, "variant": v, **m})
                    shown = {k: round(x, 2) if isinstance(x, float) else x for k, x in m.items()}
                    print(f"  round {rnd + 1}/{self.a.rounds}  {name:<18} {v:<8} {shown}",
                          flush=True)
        self.set_capture(False)
        return results


# (workload, metric key, label, higher is better)
METRICS = [
    ("bulk 1 stream", "gbit_s", "throughput Gbit/s", True),
    ("bulk 1 stream", "cpu_s_per_gb", "proxy CPU s/GB", False),
    ("bulk 4 streams", "gbit_s", "throughput Gbit/s", True),
    ("bulk 4 streams", "cpu_s_per_gb", "proxy CPU s/GB", False),
    ("req/resp 1 KiB", "p50_us", "RTT p50 us", False),
    ("req/resp 1 KiB", "p90_us", "RTT p90 us", False),
    ("req/resp 1 KiB", "p99_us", "RTT p99 us", False),
    ("req/resp 1 KiB", "added_p50_us", "added p50 us", False),
    ("req/resp 1 KiB", "added_p99_us", "added p99 us", False),
    ("req/resp 1 KiB", "cpu_us_per_req", "proxy CPU us/req, per side", False),
    ("connect/req/close", "p50_us", "p50 us", False),
    ("connect/req/close", "p99_us", "p99 us", False),
    ("connect/req/close", "conn_per_s", "conn/s", True),
    ("handshakes", "hs_per_s", "handshakes/s (wall, 2 client procs)", True),
    ("handshakes", "hs_per_cpu_s", "handshakes per server CPU-s", True),
    ("connect/req/close", "cpu_us_per_req", "proxy CPU us/conn, per side", False),
]


def medians(results):
    """{(workload, metric, variant): (median, min, max)}; also the added-latency figure."""
    vals = {}
    for r in results:
        if "error" in r:
            continue
        for k, x in r.items():
            if isinstance(x, (int, float)) and k not in ("round", "n", "errors", "server_cpu_s"):
                vals.setdefault((r["workload"], k, r["variant"]), []).append(x)
    # Added latency: the variant's p50 (p99) minus direct TCP's in the same round.
    for q in ("p50", "p99"):
        k = q + "_us"
        direct = {r["round"]: r[k] for r in results
                  if r["workload"] == "req/resp 1 KiB" and r["variant"] == "direct" and k in r}
        for r in results:
            if r["workload"] == "req/resp 1 KiB" and k in r and r["round"] in direct:
                vals.setdefault(("req/resp 1 KiB", f"added_{q}_us", r["variant"]), []).append(
                    r[k] - direct[r["round"]])
    return {k: (statistics.median(v), min(v), max(v)) for k, v in vals.items()}


def fmt(x):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def ratio(m, key, ref):
    a, b = m.get(key), m.get(key[:2] + (ref,))
    if a is None or b is None or b[0] <= 0 or key[2] == ref:
        return "-"
    return f"{a[0] / b[0]:.2f}"


def report_once(once, start_rss):
    """Tables for the conns and config workloads, and their targets."""
    lines, targets = [], []
    mib = lambda kib: kib / 1024
    if start_rss:
        lines += [f"ztunnel-cpp RSS at start (small config, before any traffic): "
                  f"A {mib(start_rss[0]):.1f} MiB, B {mib(start_rss[1]):.1f} MiB", ""]
        targets.append(("RSS at start, small config (MiB)", mib(max(start_rss)), "<", 10))
    conns = once.get("conns", {})
    if conns:
        lines += ["| conns | side | N proxied | RSS before MiB | all open | after 1 KiB each | all closed | "
                  "KiB/conn open | KiB/conn after traffic | after/before |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for v, m in conns.items():
            if "rss_before_a_kib" not in m:
                lines.append(f"| {v} | - | {m.get('n')} | error: {m.get('error')} ||||||")
                continue
            for side in "ab":
                name = "ztunnel-cpp" if v == "ztunnel" else v
                lines.append(
                    f"| {name} | {side.upper()} | {m['proxied']} | {fmt(mib(m[f'rss_before_{side}_kib']))} | "
                    f"{fmt(mib(m[f'rss_open_{side}_kib']))} | {fmt(mib(m[f'rss_traffic_{side}_kib']))} | "
                    f"{fmt(mib(m[f'rss_after_{side}_kib']))} | {fmt(m[f'per_conn_open_{side}_kib'])} | "
                    f"{fmt(m[f'per_conn_traffic_{side}_kib'])} | {fmt(m[f'after_vs_before_{side}'])} |")
        z = conns.get("ztunnel", {})
        if "rss_before_a_kib" in z:
            lines.append(f"\nztunnel-cpp: {z['n']} connections rode {z.get('hbone_conns', '?')} HBONE "
                         f"connections (the pool caps streams per connection at 100); connecting all "
                         f"took {z['open_s']:.2f} s, 1 KiB each way on all {z['traffic_s']:.2f} s.")
            if "anon_before_a_kib" in z:
                lines.append("ztunnel-cpp heap and stacks (RssAnon; the rest of RSS is the binary and its "
                             "libraries): " + ", ".join(
                                 f"{s.upper()} {mib(z[f'anon_before_{s}_kib']):.2f} MiB before, "
                                 f"{mib(z[f'anon_after_{s}_kib']):.2f} MiB after all closed" for s in "ab") + ".")
            if z.get("error"):
                lines.append(f"ztunnel-cpp conns error: {z['error']}")
            worst = max(max(z[f"per_conn_open_{s}_kib"], z[f"per_conn_traffic_{s}_kib"]) for s in "ab")
            targets.append(("memory per proxied connection, worse side (KiB)", worst, "<=", 8))
            back = max(z[f"after_vs_before_{s}"] for s in "ab")
            targets.append(("RSS after all closed / before", back, "<=", 1.2))
        lines.append("")
    config = once.get("config", {})
    if config:
        lines += ["| config | file KiB | loaded | ready after s | CPU s to ready | RSS at ready MiB | "
                  "RSS settled MiB |", "|---|---:|---|---:|---:|---:|---:|"]
        for name, m in config.items():
            if "error" in m:
                lines.append(f"| {name} | {fmt(m.get('file_kib'))} | error: {m['error']} ||||")
                continue
            lines.append(f"| {name} | {fmt(m['file_kib'])} | {m.get('loaded', '?')} | {m['ready_s']:.3f} | {m['cpu_s']:.2f} | "
                         f"{fmt(mib(m['rss_ready_kib']))} | {fmt(mib(m['rss_1s_kib']))} |")
        big = [m for n, m in config.items() if n != "small" and "error" not in m]
        if big:
            targets.append(("config scale: time to ready (s)", big[0]["ready_s"], "<", 1))
            targets.append(("config scale: CPU to ready (s)", big[0]["cpu_s"], "<", 1))
            targets.append(("config scale: RSS (MiB)", mib(max(big[0]["rss_ready_kib"], big[0]["rss_1s_kib"])),
                            "<", 64))
        lines.append("")
    return lines, targets


def report(results, errors, once=None, start_rss=None):
    m = medians(results)
    lines = ["| workload | metric | variant | median | min..max | /stunnel | /direct |",
             "|---|---|---|---:|---:|---:|---:|"]
    for w, k, label, _ in METRICS:
        for v in VARIANTS:
            key = (w, k, v)
            if key not in m:
                continue
            med, lo, hi = m[key]
            name = "ztunnel-cpp" if v == "ztunnel" else v
            lines.append(f"| {w} | {label} | {name} | {fmt(med)} | {fmt(lo)}..{fmt(hi)} | "
                         f"{ratio(m, key, 'stunnel')} | {ratio(m, key, 'direct')} |")

    def r(w, k, ref):
        a, b = m.get((w, k, "ztunnel")), m.get((w, k, ref))
        return a[0] / b[0] if a and b and b[0] > 0 else None

    targets = [
        ("bulk 1 stream throughput vs stunnel", r("bulk 1 stream", "gbit_s", "stunnel"), ">=", 1.3),
        ("bulk 4 streams throughput vs stunnel", r("bulk 4 streams", "gbit_s", "stunnel"), ">=", 1.3),
        ("bulk 1 stream CPU/GB vs stunnel", r("bulk 1 stream", "cpu_s_per_gb", "stunnel"), "<=", 0.7),
        ("bulk 4 streams CPU/GB vs stunnel", r("bulk 4 streams", "cpu_s_per_gb", "stunnel"), "<=", 0.7),
        ("req/resp added p50 vs stunnel's", r("req/resp 1 KiB", "added_p50_us", "stunnel"), "<=", 0.7),
        ("req/resp added p99 vs stunnel's", r("req/resp 1 KiB", "added_p99_us", "stunnel"), "<=", 0.7),
        ("connect/req/close p50 vs direct", r("connect/req/close", "p50_us", "direct"), "<=", 2.5),
        ("full mTLS handshakes per server CPU-s", (m.get(("handshakes", "hs_per_cpu_s", "ztunnel")) or [None])[0],
         ">=", 2500),
    ]
    # Absolute: 0.04 vCPU per 1000 req/s per ztunnel is 40 us of CPU per request.
    cpu = m.get(("req/resp 1 KiB", "cpu_us_per_req", "ztunnel"))
    targets.append(("req/resp CPU us/req per ztunnel (absolute)", cpu[0] if cpu else None, "<=", 40))
    # Only the targets of the workloads that ran (--only, --variants).
    targets = [t for t in targets if t[1] is not None]
    once_lines, once_targets = report_once(once or {}, start_rss)
    if once_lines:
        lines += [""] + once_lines
    targets += once_targets
    lines += ["", "| target (ztunnel-cpp / reference) | goal | now | |", "|---|---:|---:|---|"]
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}
    for name, val, op, goal in targets:
        ok = val is not None and ops[op](val, goal)
        lines.append(f"| {name} | {op} {goal} | {fmt(val)} | {'met' if ok else 'not met'} |")
    if errors:
        lines += ["", f"{len(errors)} failed measurement(s):"]
        lines += [f"  {e['workload']} {e['variant']} round {e['round'] + 1}: {e['error']}"
                  for e in errors]
    return "\n".join(lines)


def machine(a):
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    # `run` names the commit the measured binaries were built from.
    commit = os.environ.get("ZT_BUILD_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    return (f"machine: {model}, {os.cpu_count()} cores, Linux {platform.release()}, "
            f"load average {load[0]:.2f} at start\n"
            f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; ztunnel-cpp {commit} ({a.build_desc}); "
            f"{a.rounds} round(s); bulk {a.bulk_seconds} s, latency {a.rr_seconds} s per run"
            + (f"; only {a.only}" if a.only else "") + (f"; variants {a.variants}" if a.variants else ""))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True)
    p.add_argument("--ns-a", required=True)
    p.add_argument("--ns-b", required=True)
    p.add_argument("--ztunnel-pids", required=True)
    p.add_argument("--socat-pids", required=True)
    p.add_argument("--stunnel-pids", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bulk-seconds", type=int, default=10)
    p.add_argument("--rr-seconds", type=float, default=5)
    p.add_argument("--build-desc", default="")
    p.add_argument("--only", default="", help="comma-separated: " + ",".join(WORKLOADS) + " (bulk = bulk1,bulk4; latency = rr,crr)")
    p.add_argument("--ns-c", help="a spare namespace for the config workload's ztunnel")
    p.add_argument("--ztunnel", help="the ztunnel binary (config workload)")
    p.add_argument("--identities", default="", help="comma-separated cert dirs (handshakes)")
    p.add_argument("--handshake-seconds", type=float, default=5)
    p.add_argument("--conn-rate", type=float, default=500,
                   help="conns: connects per second (0: as fast as possible)")
    p.add_argument("--settle", type=float, default=1, help="seconds to wait before sampling RSS")
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--stunnel-conns", type=int, default=1000)
    p.add_argument("--config-scale", default="10000,1000,1000", help="workloads,services,policies")
    p.add_argument("--json", help="also write every measurement here (JSON lines)")
    p.add_argument("--variants", default="", help="comma-separated: direct,socat,stunnel,ztunnel")
    a = p.parse_args()

    header = machine(a)
    print(header, flush=True)
    bench = Bench(a)
    results = bench.run()
    once = bench.run_once()
    if a.json:
        with open(a.json, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
            for w, per in once.items():
                for v, r in per.items():
                    f.write(json.dumps({"workload": w, "variant": v, **r}) + "\n")
    errors = [r for r in results if "error" in r]
    errors += [{"workload": w, "variant": v, "round": 0, "error": r["error"]}
               for w, per in once.items() for v, r in per.items() if "error" in r]
    print()
    print(header)
    print(report(results, errors, once, bench.start_rss))
    # A smoke run must notice a variant that stopped working, not how fast it is.
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
