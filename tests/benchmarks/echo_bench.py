#!/usr/bin/env python3
"""The echo servers under load, in one go (issue 10): every mode of
//apps/echo_server:server, the document's Python server, and a minimal epoll
server as the floor. Scenarios: (a) 8 clients x 5,000 round trips of 64 B on
long-lived connections; (b) 8 clients x 500 connections of one round trip;
(c) 1,000 concurrent connections x 50 round trips. Reports requests/s,
p50/p99, server CPU seconds per 10,000 requests (server and children, from
/proc), and the peak number of server processes and their total RSS.
Usage: echo_bench.py [--quick] [--reps=N] [--servers=NAME,NAME] BAZEL_BIN_DIR
--reps: run every scenario N times (a row each); --servers: only these
(floor, python, per-connection, prefork, prefork-async).
"""
import os
import subprocess
import sys
import threading
import time

QUICK = "--quick" in sys.argv
BIN = [a for a in sys.argv[1:] if not a.startswith("--")][0]
OPTIONS = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
REPS = int(OPTIONS.get("reps", "1"))
ONLY = set(OPTIONS["servers"].split(",")) if "servers" in OPTIONS else None
HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")
SCENARIOS = {
    "a": ["--connections=8", f"--requests={500 if QUICK else 5000}", "--size=64"],
    "b": ["--connections=8", f"--requests={50 if QUICK else 500}", "--size=64", "--short_connections"],
    "c": [f"--connections={100 if QUICK else 1000}", f"--requests={5 if QUICK else 50}", "--size=64"],
}


def tree(pid):
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def cpu_seconds(pids, include_reaped_children_of=None):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
            if p == include_reaped_children_of:
                total += int(fields[13]) + int(fields[14])  # cutime, cstime
        except OSError:
            pass
    return total / TICK


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def start(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(proc.stdout.readline().split()[1])
    return proc, port


def measure(name, cmd):
    results = {}
    for scenario, args in SCENARIOS.items():
        proc, port = start(cmd)
        peak = {"procs": 0, "rss": 0}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                pids = tree(proc.pid)
                peak["procs"] = max(peak["procs"], len(pids))
                peak["rss"] = max(peak["rss"], rss_kib(pids))
                time.sleep(0.05)  # Sampling, not synchronising.
        sampler = threading.Thread(target=sample)
        sampler.start()
        cpu_before = cpu_seconds(tree(proc.pid), proc.pid)
        # A request slower than 2 s fails (the document's server cannot keep
        # up with 1,000 clients), and a scenario is cut after 5 minutes.
        try:
            out = subprocess.run([os.path.join(BIN, "apps/echo_server/loadgen"), f"--port={port}",
                                  "--timeout_ms=2000"] + args, capture_output=True, text=True, timeout=300).stdout
        except subprocess.TimeoutExpired:
            out = "requests=0 failures=-1 seconds=300 rps=0 p50_us=0 p99_us=0 max_us=0"
        cpu_after = cpu_seconds(tree(proc.pid), proc.pid)
        stop.set()
        sampler.join()
        proc.terminate()
        proc.wait(timeout=30)
        fields = dict(kv.split("=") for kv in out.split())
        requests = int(fields["requests"])
        results[scenario] = {
            "rps": float(fields["rps"]), "p50_us": float(fields["p50_us"]), "p99_us": float(fields["p99_us"]),
            "failures": int(fields["failures"]), "requests": requests,
            "cpu_s_per_10k": (cpu_after - cpu_before) / max(requests, 1) * 1e4,
            "peak_processes": peak["procs"], "peak_rss_mib": peak["rss"] / 1024,
        }
    return results


def main():
    # short name (for --servers) -> report name, command
    servers = {
        "floor": ("floor (epoll 1 process)", [os.path.join(BIN, "tests/benchmarks/epoll_echo"), "0"]),
        "python": ("python per-connection",
                   [sys.executable, os.path.join(HERE, "python/echo_server.py"), "0"]),
    }
    for mode in ["per-connection", "prefork", "prefork-async"]:
        servers[mode] = (f"server --mode={mode}", [os.path.join(BIN, "apps/echo_server/server"),
                                                  f"--mode={mode}", "--port=0", "--max_clients=2000"])
    print("server,scenario,rps,p50_us,p99_us,failures,cpu_s_per_10k,peak_processes,peak_rss_mib")
    for short, (name, cmd) in servers.items():
        if ONLY is not None and short not in ONLY:
            continue
        for _ in range(REPS):
            for scenario, r in measure(name, cmd).items():
                print(f"{name},{scenario},{r['rps']:.0f},{r['p50_us']:.0f},{r['p99_us']:.0f},{r['failures']},"
                      f"{r['cpu_s_per_10k']:.3f},{r['peak_processes']},{r['peak_rss_mib']:.1f}", flush=True)


if __name__ == "__main__":
    main()
