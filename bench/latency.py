#!/usr/bin/env python3
"""Sequential render latency and peak memory of grender (service + Chromium tree).

By default it starts the built-in Grafana stand-in and grender (release builds) on free
loopback ports, renders a one-panel page at 1000x500 N times in a row, and prints p50/p90
and the peak RSS of grender plus every Chromium process it started.

Against your own Grafana and a running grender instead:
  bench/latency.py --grender http://127.0.0.1:8081 --token T \
      --target 'http://grafana:3000/d-solo/UID/slug?orgId=1&panelId=2' --render-key K --domain grafana
(then RSS is not sampled unless --pid names the grender process).

Only the Python standard library is used.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_kib(root_pid):
    """Sum of VmRSS over root_pid and all its descendants."""
    children = {}
    rss = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/statm") as f:
                pages = int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        pid, ppid = int(name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid, every=0.025):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.running = pid, every, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, tree_rss_kib(self.pid))
            time.sleep(self.every)


def get(url, headers=None, timeout=60):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ready(base, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            status, body = get(base + "/version", timeout=2)
            if status == 200 and b"Chrome/" in body:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("grender did not become ready")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20, help="renders to time (default 20)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--width", default="1000")
    ap.add_argument("--height", default="500")
    ap.add_argument("--delay", default="0", help="stand-in query delay in ms")
    ap.add_argument("--grender", help="URL of a running grender (default: start one)")
    ap.add_argument("--token", default="-")
    ap.add_argument("--target", help="page to render (default: the stand-in's one-panel page)")
    ap.add_argument("--render-key", default="bench-key")
    ap.add_argument("--domain", default="127.0.0.1")
    ap.add_argument("--pid", type=int, help="grender pid to sample RSS of, with --grender")
    args = ap.parse_args()

    procs = []
    try:
        if args.grender:
            base, pid = args.grender.rstrip("/"), args.pid
        else:
            subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "grender", "-p", "grafana-stub"],
                           cwd=ROOT, check=True)
            stub_port, port = free_port(), free_port()
            procs.append(subprocess.Popen([f"{ROOT}/target/release/grafana-stub", f"127.0.0.1:{stub_port}",
                                           args.render_key], stdout=subprocess.DEVNULL))
            grender = subprocess.Popen([f"{ROOT}/target/release/grender", "server", f"--server.addr=127.0.0.1:{port}",
                                        f"--server.auth-token={args.token}", "--log.level=warn"])
            procs.append(grender)
            base, pid = f"http://127.0.0.1:{port}", grender.pid
            if not args.target:
                args.target = f"http://127.0.0.1:{stub_port}/d-solo/bench/panel?delay={args.delay}"
        wait_ready(base)
        query = urllib.parse.urlencode({"url": args.target, "width": args.width, "height": args.height,
                                        "renderKey": args.render_key, "domain": args.domain, "timeout": "60"})
        url, headers = f"{base}/render?{query}", {"X-Auth-Token": args.token}
        idle = tree_rss_kib(pid) if pid else 0
        for _ in range(args.warmup):
            status, body = get(url, headers)
            if status != 200:
                sys.exit(f"render failed: {status} {body[:300]!r}")
        sampler = RssSampler(pid) if pid else None
        if sampler:
            sampler.start()
        times, errors = [], 0
        for _ in range(args.n):
            t = time.perf_counter()
            status, _ = get(url, headers)
            times.append((time.perf_counter() - t) * 1000)
            errors += status != 200
        if sampler:
            sampler.running = False
            sampler.join()
        times.sort()
        p90 = times[min(len(times) - 1, int(round(0.9 * len(times))) - 1)]
        print(f"renders: {args.n} sequential, {args.width}x{args.height}, errors: {errors}")
        print(f"latency ms: p50 {statistics.median(times):.0f}  p90 {p90:.0f}  min {times[0]:.0f}  max {times[-1]:.0f}")
        if pid:
            print(f"RSS (grender + Chromium tree): idle {idle / 1024:.0f} MiB, peak {sampler.peak / 1024:.0f} MiB")
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
