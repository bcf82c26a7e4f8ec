#!/usr/bin/env python3
"""Chaos and overload checks for grender, on loopback only, bounded in count and time.

  bench/chaos.py kill [-n 50]      SIGKILL Chromium's whole tree at random moments during
                                   renders; every affected request must get a 5xx within its
                                   deadline, the next render must succeed within 2 s, and no
                                   Chromium process may be left running or unreaped.
  bench/chaos.py overload [-n 300] N requests at concurrency 64 with 4 render slots: only 200,
                                   429 or 503 (the latter two with Retry-After), none answered
                                   after its deadline; peak RSS printed.

Both start the release builds of the Grafana stand-in and grender on free ports and print
their figures; exit code 1 when a check fails. Only the Python standard library is used.
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import RELEASE, ROOT, RssSampler, free_port, get, wait_ready  # noqa: E402


def start(extra=()):
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "grender", "-p", "grafana-stub", "--bins"],
                   cwd=ROOT, check=True)
    stub_port, port = free_port(), free_port()
    stub = subprocess.Popen([f"{RELEASE}/grafana-stub", f"127.0.0.1:{stub_port}", "k", "0"], stdout=subprocess.DEVNULL)
    grender = subprocess.Popen([f"{RELEASE}/grender", "server", "--config=/dev/null", f"--server.addr=127.0.0.1:{port}",
                                "--log.level=error", *extra])
    base = f"http://127.0.0.1:{port}"
    wait_ready(base)
    return stub, grender, base, stub_port


def render_url(base, stub_port, page, timeout=10):
    target = f"http://127.0.0.1:{stub_port}{page}"
    q = urllib.parse.urlencode({"url": target, "height": "500", "renderKey": "k", "domain": "127.0.0.1",
                                "timeout": str(timeout)})
    return f"{base}/render?{q}"


def chromium_tree(grender_pid):
    """Pids of the processes whose process group is one of grender's Chromium children."""
    groups, procs = set(), []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, ppid, pgrp = fields[0], int(fields[1]), int(fields[2])
        procs.append((int(name), state, ppid, pgrp))
        if ppid == grender_pid:
            groups.add(int(name))
    return [(p, s) for p, s, _, g in procs if g in groups]


def kill(args):
    stub, grender, base, stub_port = start()
    failures, affected, recover_ms = [], 0, []
    try:
        for i in range(args.n):
            url = render_url(base, stub_port, f"/d-solo/chaos{i}/p?delay={random.randint(200, 1200)}", timeout=10)
            result = {}

            def run():
                t = time.perf_counter()
                status, body = get(url, {"X-Auth-Token": "-"}, timeout=30)
                result.update(status=status, body=body, took=time.perf_counter() - t)

            worker = threading.Thread(target=run)
            worker.start()
            time.sleep(random.uniform(0.05, 0.9))
            tree = [p for p, s in chromium_tree(grender.pid) if s != "Z"]
            for pid in tree:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            worker.join(timeout=30)
            if worker.is_alive():
                failures.append(f"kill {i}: request stuck")
                continue
            if result["status"] != 200:
                affected += 1
                if result["status"] < 500:
                    failures.append(f"kill {i}: answered {result['status']}")
                if result["took"] > 10.5:
                    failures.append(f"kill {i}: answered after its deadline ({result['took']:.1f}s)")
            t = time.perf_counter()
            ok = False
            while time.perf_counter() - t < 2.0:
                status, _ = get(render_url(base, stub_port, f"/d-solo/after{i}/p"), {"X-Auth-Token": "-"}, timeout=5)
                if status == 200:
                    ok = True
                    break
            if not ok:
                failures.append(f"kill {i}: no successful render within 2 s")
            recover_ms.append((time.perf_counter() - t) * 1000)
        time.sleep(1)
        zombies = [p for p, s in chromium_tree(grender.pid) if s == "Z"]
        recover_ms.sort()
        print(f"chaos kill: {args.n} kills of the Chromium tree, {affected} renders affected (all 5xx in time: "
              f"{not any('answered' in f for f in failures)}), next render ok in p50 {recover_ms[len(recover_ms)//2]:.0f} ms"
              f" / max {recover_ms[-1]:.0f} ms, zombies left {len(zombies)}, failures {len(failures)}")
        for f in failures[:10]:
            print("  " + f)
        return 1 if failures or zombies else 0
    finally:
        grender.terminate()
        stub.terminate()
        grender.wait(timeout=15)


def overload(args):
    stub, grender, base, stub_port = start(["--render.concurrency=4", "--render.queue-size=32"])
    sampler = RssSampler(grender.pid)
    sampler.start()
    results, lock = [], threading.Lock()
    counter = iter(range(args.n))

    def client():
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            url = render_url(base, stub_port, f"/d-solo/load{n}/p?delay=300", timeout=5)
            req = urllib.request.Request(url, headers={"X-Auth-Token": "-"})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    status, retry = r.status, r.headers.get("Retry-After")
            except urllib.error.HTTPError as e:
                status, retry = e.code, e.headers.get("Retry-After")
            except OSError:
                status, retry = 0, None
            with lock:
                results.append((status, retry, time.perf_counter() - t))

    try:
        threads = [threading.Thread(target=client) for _ in range(64)]
        start_t = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start_t
        sampler.running = False
        by_status = {}
        for status, _, _ in results:
            by_status[status] = by_status.get(status, 0) + 1
        bad_status = [s for s in by_status if s not in (200, 429, 503)]
        no_retry = sum(1 for s, r, _ in results if s in (429, 503) and not r)
        late = sum(1 for _, _, took in results if took > 5.5)
        print(f"overload: {args.n} requests at concurrency 64, 4 slots, {wall:.1f} s: statuses {by_status}, "
              f"without Retry-After {no_retry}, answered after their 5 s deadline {late}, "
              f"peak RSS {sampler.peak / 1024:.0f} MiB")
        return 1 if bad_status or no_retry or late else 0
    finally:
        grender.terminate()
        stub.terminate()
        grender.wait(timeout=15)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["kill", "overload"])
    ap.add_argument("-n", type=int, help="kills (default 50) or requests (default 300)")
    args = ap.parse_args()
    if args.n is None:
        args.n = 50 if args.mode == "kill" else 300
    sys.exit(kill(args) if args.mode == "kill" else overload(args))


if __name__ == "__main__":
    main()
