#!/usr/bin/python3
"""Measurement loop and report for tools/bench/run (stdlib only).

tools/bench/run sets up the namespaces, the four variants' processes and the
servers, then runs this. For every round, every workload runs once on every
variant, the variants' order rotating from round to round so that none always
goes first (A/B alternation). The report gives, per (workload, metric,
variant), the median over rounds, the spread, and the ratios to stunnel and
to direct TCP.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
VARIANTS = ["direct", "socat", "stunnel", "ztunnel"]
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
        host, _, port, _, capture = self.variants[variant]
        self.set_capture(capture)
        r = sh(self.ns_a, self.rr, mode, host, str(port), str(self.a.rr_seconds),
               timeout=self.a.rr_seconds + 60)
        try:
            out = json.loads(r.stdout)
        except ValueError:
            return {"error": (r.stdout[-300:] + r.stderr[-300:]).strip()}
        if out.get("errors"):
            out["error"] = f"{out['errors']} failed connections"
        return out

    def workloads(self):
        every = [
            ("bulk 1 stream", lambda v: self.bulk(v, 1)),
            ("bulk 4 streams", lambda v: self.bulk(v, 4)),
            ("req/resp 1 KiB", lambda v: self.latency(v, "pingpong")),
            ("connect/req/close", lambda v: self.latency(v, "crr")),
        ]
        # --only bulk | latency: the bulk workloads, or req/resp and connect/req/close.
        if self.a.only == "bulk":
            return every[:2]
        if self.a.only == "latency":
            return every[2:]
        return every

    def run(self):
        results = []
        for rnd in range(self.a.rounds):
            order = VARIANTS[rnd % 4:] + VARIANTS[:rnd % 4]
            for name, fn in self.workloads():
                for v in order:
                    m = fn(v)
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
    ("connect/req/close", "p50_us", "p50 us", False),
    ("connect/req/close", "p99_us", "p99 us", False),
    ("connect/req/close", "conn_per_s", "conn/s", True),
]


def medians(results):
    """{(workload, metric, variant): (median, min, max)}; also the added-latency figure."""
    vals = {}
    for r in results:
        if "error" in r:
            continue
        for k, x in r.items():
            if isinstance(x, (int, float)) and k not in ("round", "n", "errors"):
                vals.setdefault((r["workload"], k, r["variant"]), []).append(x)
    # Added latency: the variant's p50 minus direct TCP's p50 in the same round.
    direct = {r["round"]: r["p50_us"] for r in results
              if r["workload"] == "req/resp 1 KiB" and r["variant"] == "direct" and "p50_us" in r}
    for r in results:
        if r["workload"] == "req/resp 1 KiB" and "p50_us" in r and r["round"] in direct:
            vals.setdefault(("req/resp 1 KiB", "added_p50_us", r["variant"]), []).append(
                r["p50_us"] - direct[r["round"]])
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


def report(results, errors):
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
        ("connect/req/close p50 vs direct", r("connect/req/close", "p50_us", "direct"), "<=", 2.5),
    ]
    lines += ["", "| target (ztunnel-cpp / reference) | goal | now | |", "|---|---:|---:|---|"]
    for name, val, op, goal in targets:
        ok = val is not None and (val >= goal if op == ">=" else val <= goal)
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
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    load = os.getloadavg()
    return (f"machine: {model}, {os.cpu_count()} cores, Linux {platform.release()}, "
            f"load average {load[0]:.2f} at start\n"
            f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; ztunnel-cpp {commit} ({a.build_desc}); "
            f"{a.rounds} round(s); bulk {a.bulk_seconds} s, latency {a.rr_seconds} s per run")


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
    p.add_argument("--json", help="also write every measurement here (JSON lines)")
    p.add_argument("--only", choices=["bulk", "latency"], help="run only these workloads")
    a = p.parse_args()

    header = machine(a)
    print(header, flush=True)
    results = Bench(a).run()
    if a.json:
        with open(a.json, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    errors = [r for r in results if "error" in r]
    print()
    print(header)
    print(report(results, errors))
    # A smoke run must notice a variant that stopped working, not how fast it is.
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
