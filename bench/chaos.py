#!/usr/bin/env python3
"""Chaos and overload checks for grender, on loopback only, bounded in count and time.

  bench/chaos.py kill [-n 50]      SIGKILL Chromium's whole tree at random moments during
                                   renders; every affected request must get a 5xx within its
                                   deadline, the next render must succeed within 2 s, and no
                                   Chromium process may be left running or unreaped.
  bench/chaos.py overload [-n 300] N requests at concurrency 64 with 4 render slots: only 200,
                                   429 or 503 (the latter two with Retry-After), none answered
                                   after its deadline, peak RSS under --max-rss-mib.
  bench/chaos.py storm [-n 150]    An alert storm: N distinct panels at once with 5 s deadlines,
                                   on a freshly started service (default settings) and again once
                                   warm. Each must get >= 90 % of the pictures its measured
                                   throughput allows in 5 s, and no answer after the deadline
                                   (--attempts N: each on a new service, until one passes).
  bench/chaos.py budget            8 clients render distinct panels and dashboards of the
                                   Grafana-frontend test app for --seconds (60) with
                                   --browser.memory-budget=768 (--budget-mib): only 200, 429 or
                                   503 (with Retry-After), no Chromium death or page crash, and
                                   the tree's sampled peak RSS (grender + Chromium) under the
                                   budget; prints PSS too. Where a cgroup-v1 memory cgroup can
                                   be made under this process's own, grender runs in one limited
                                   to the budget (--cgroup-mib), and no process may be killed by
                                   the kernel. Needs testapp/dist (scripts/testapp.sh).
  bench/chaos.py soak [-n 2000]    N mixed renders from 4 clients (panels, full pages, PDFs, a
                                   broken and a slow panel): 0 unexpected answers, no temp
                                   file or process left behind, RSS drift under 10 %.

Each starts the Grafana stand-in and grender (release builds; --debug for the debug builds,
as CI does for its short runs) on free ports and prints its figures; exit code 1 when a check
fails. Only the Python standard library is used.
"""
import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (ROOT, RssSampler, concurrent, fetch, free_port, get, sequential, tree_mem_kib,  # noqa: E402
                   tree_rss_kib, wait_ready)

PROFILE = "release"


class MemoryCgroup:
    """A cgroup-v1 memory cgroup of `limit_mib`, made as a child of this process's own (so it
    only narrows what the machine's harness allows), for grender and everything it starts:
    the kernel then enforces the budget as a container's limit would, counting shared pages
    once and page cache too. `None` from `make` where that cannot be done here."""

    def __init__(self, path):
        self.path = path

    @staticmethod
    def make(limit_mib):
        try:
            with open("/proc/self/cgroup") as f:
                own = next(line.split(":", 2)[2].strip() for line in f if line.split(":")[1] == "memory")
            path = os.path.join("/sys/fs/cgroup/memory" + own, f"grender-budget-{os.getpid()}")
            os.mkdir(path)
        except (OSError, StopIteration, IndexError):
            return None
        group = MemoryCgroup(path)
        try:
            group.write("memory.limit_in_bytes", str(limit_mib * 1024 * 1024))
        except OSError:
            group.remove()
            return None
        return group

    def write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def read(self, name):
        with open(os.path.join(self.path, name)) as f:
            return f.read()

    def enter(self):
        """For `preexec_fn`: the child joins the cgroup before it execs (if it cannot, it
        runs outside, which `holds` tells)."""
        try:
            self.write("cgroup.procs", str(os.getpid()))
        except OSError:
            pass

    def holds(self, pid):
        return str(pid) in self.read("cgroup.procs").split()

    def peak_mib(self):
        return int(self.read("memory.max_usage_in_bytes")) / 2**20

    def oom_kills(self):
        """Processes the kernel killed for the limit (0 where the kernel does not say)."""
        for line in self.read("memory.oom_control").splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def remove(self):
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
        print(f"  (could not remove the cgroup {self.path})")


def start(extra=(), env=None, frontend=False, stderr=None, preexec_fn=None):
    """The stand-in (or, with `frontend`, the Grafana-frontend test app) and grender."""
    build = ["cargo", "build", "--quiet", "-p", "grender", "-p", "grafana-stub", "--bins"]
    if PROFILE == "release":
        build.append("--release")
    subprocess.run(build, cwd=ROOT, check=True)
    bins = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), PROFILE)
    stub_port, port = free_port(), free_port()
    stub_args = [f"127.0.0.1:{stub_port}", "k", "0"]
    if frontend:
        subprocess.run([os.path.join(ROOT, "scripts", "testapp.sh")], check=True, stdout=subprocess.DEVNULL)
        stub_args.insert(0, "--frontend")
    stub = subprocess.Popen([f"{bins}/grafana-stub", *stub_args], stdout=subprocess.DEVNULL)
    level = "--log.level=info" if stderr else "--log.level=error"
    grender = subprocess.Popen([f"{bins}/grender", "server", "--config=/dev/null", f"--server.addr=127.0.0.1:{port}",
                                level, *extra], env=env, stderr=stderr, preexec_fn=preexec_fn)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
    except BaseException:
        # Nothing this run started may outlive it, even when grender never came up.
        for proc in (grender, stub):
            proc.kill()
            proc.wait()
        raise
    return stub, grender, base, stub_port


def render_url(base, stub_port, page, timeout=10, **params):
    target = f"http://127.0.0.1:{stub_port}{page}"
    q = urllib.parse.urlencode({"url": target, "height": "500", "renderKey": "k", "domain": "127.0.0.1",
                                "timeout": str(timeout), **params})
    return f"{base}/render?{q}"


def proc_table():
    """(pid, state, ppid, pgrp) of every process."""
    procs = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs.append((int(name), fields[0], int(fields[1]), int(fields[2])))
    return procs


def chromium_tree(grender_pid):
    """Pids of the processes whose process group is one of grender's Chromium children."""
    procs = proc_table()
    groups = {pid for pid, _, ppid, _ in procs if ppid == grender_pid}
    return [(p, s) for p, s, _, g in procs if g in groups]


def lasting_zombies(grender_pid, patience=3.0):
    """Zombies of grender's Chromium tree that are still there after `patience` seconds: a
    process that has just exited (a tab's renderer closed) is a zombie until its parent reaps
    it, which is not a leak."""
    deadline = time.perf_counter() + patience
    first = None
    while True:
        zombies = [p for p, s in chromium_tree(grender_pid) if s == "Z"]
        first = zombies if first is None else first
        if not zombies or time.perf_counter() >= deadline:
            if len(first) > len(zombies):
                print(f"  ({len(first) - len(zombies)} exited processes were reaped within {patience:.0f} s)")
            return zombies
        time.sleep(0.2)


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
        zombies = lasting_zombies(grender.pid)
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
            t = time.perf_counter()
            status, answer_headers, _ = fetch(url, {"X-Auth-Token": "-"}, timeout=30)
            retry = answer_headers.get("Retry-After")
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
        peak_mib = sampler.peak / 1024
        print(f"overload: {args.n} requests at concurrency 64, 4 slots, {wall:.1f} s: statuses {by_status}, "
              f"without Retry-After {no_retry}, answered after their 5 s deadline {late}, "
              f"peak RSS {peak_mib:.0f} MiB (bound {args.max_rss_mib})")
        return 1 if bad_status or no_retry or late or peak_mib > args.max_rss_mib else 0
    finally:
        grender.terminate()
        stub.terminate()
        grender.wait(timeout=15)


def burst(base, stub_port, n, tag, deadline):
    """n distinct panels requested at the same moment; [(status, seconds)]. One thread drives
    every connection (non-blocking sockets), so the load generator itself takes almost no CPU
    from the two cores the renders need."""
    import selectors
    import socket
    host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(n):
        url = urllib.parse.urlsplit(render_url(base, stub_port, f"/d-solo/{tag}{i}/p?delay=200", timeout=deadline))
        request = (f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Auth-Token: -\r\n"
                   "Connection: close\r\n\r\n").encode()
        sock = socket.create_connection((host, port))
        sock.setblocking(False)
        conns.append({"sock": sock, "out": request, "in": b"", "done": None})
    start = time.perf_counter()
    for c in conns:
        sel.register(c["sock"], selectors.EVENT_WRITE | selectors.EVENT_READ, c)
    open_count = n
    while open_count and time.perf_counter() - start < deadline + 10:
        for key, events in sel.select(timeout=0.5):
            c = key.data
            if events & selectors.EVENT_WRITE and c["out"]:
                sent = c["sock"].send(c["out"])
                c["out"] = c["out"][sent:]
                if not c["out"]:
                    sel.modify(c["sock"], selectors.EVENT_READ, c)
            if events & selectors.EVENT_READ:
                try:
                    chunk = c["sock"].recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    c["in"] += chunk
                else:
                    c["done"] = time.perf_counter() - start
                    sel.unregister(c["sock"])
                    c["sock"].close()
                    open_count -= 1
    results = []
    for c in conns:
        try:
            status = int(c["in"].split(b" ", 2)[1]) if c["in"] else 0
        except (IndexError, ValueError):
            status = 0
        results.append((status, c["done"] if c["done"] is not None else deadline + 10))
        if c["done"] is None:
            c["sock"].close()
    return results


def throughput(base, stub_port, slots, renders):
    """(renders per second with every slot busy, median seconds of one render alone)."""
    headers = {"X-Auth-Token": "-"}
    alone, _ = sequential(render_url(base, stub_port, "/d-solo/solo/p?delay=200", timeout=60), headers, 5)
    clients = slots * 2
    rate, _, _ = concurrent(lambda n: render_url(base, stub_port, f"/d-solo/rate{n}/p?delay=200", timeout=60),
                            headers, clients, max(1, renders // clients))
    return rate, statistics.median(alone) / 1000


def storm(args):
    """Runs the storm up to --attempts times, each on a newly started service: a shared machine's
    slow moment can cost one run its share; a service that misses it each time fails."""
    for attempt in range(1, args.attempts + 1):
        if storm_once(args) == 0:
            return 0
        if attempt < args.attempts:
            print(f"storm: attempt {attempt} of {args.attempts} missed; once more on a newly started service")
    return 1


def storm_once(args):
    deadline, slack = 5, 0.5
    slots = len(os.sched_getaffinity(0)) * 2  # grender's default render.concurrency
    stub, grender, base, stub_port = start()
    failed = False
    try:
        runs = [("fresh", burst(base, stub_port, args.n, "fresh", deadline))]
        rate, alone = throughput(base, stub_port, slots, renders=slots * 12)
        runs.append(("warm", burst(base, stub_port, args.n, "warm", deadline)))
        # The first `slots` pictures end after one render; then `rate` a second until the deadline.
        allowed = min(args.n, slots + rate * max(0.0, deadline - alone))
        print(f"storm: {args.n} distinct panels at once, {deadline} s deadlines, {slots} slots; measured "
              f"{rate:.1f} renders/s with every slot busy, {alone:.2f} s for one alone: "
              f"{allowed:.0f} pictures possible in {deadline} s")
        for name, results in runs:
            by_status = {}
            for status, _ in results:
                by_status[status] = by_status.get(status, 0) + 1
            pictures = sum(1 for s, took in results if s == 200 and took <= deadline + slack)
            late = sum(1 for _, took in results if took > deadline + slack)
            last = max((took for s, took in results if s == 200), default=0.0)
            unexpected = [s for s in by_status if s not in (200, 408, 429, 503)]
            share = pictures / allowed if allowed else 0.0
            refused_waiting = sum(1 for s, took in results if s == 429 and took > 1.0)
            per_second = [sum(1 for s, took in results if s == 200 and int(took) == i) for i in range(deadline + 1)]
            print(f"  {name}: {pictures} pictures ({share:.0%} of possible), last at {last:.1f} s, "
                  f"statuses {by_status} ({refused_waiting} of the 429s after waiting), "
                  f"answered after the deadline {late}; pictures per second {per_second}")
            if share < args.min_share or late or unexpected:
                failed = True
        return 1 if failed else 0
    finally:
        grender.terminate()
        stub.terminate()
        grender.wait(timeout=15)



# Distinct real-frontend pictures for the budget scenario: (path, extra query).
BUDGET_PAGES = ([(f"/d-solo/kinds/x?panelId={p}", {}) for p in range(1, 8)]
                + [(f"/d-solo/rows/x?panelId={p}", {}) for p in (1, 2, 5)]
                + [(f"/d-solo/forty/x?panelId={p}", {}) for p in range(1, 41, 3)]
                + [("/d/kinds/x?kiosk", {}), ("/d/rows/x?kiosk", {}), ("/d/repeat/x?kiosk", {})])


def budget(args):
    """8 clients on the Grafana-frontend test app with browser.memory-budget set: only 200, 429
    or 503 (with Retry-After), no crash, the tree's sampled peak RSS under the budget."""
    log = tempfile.TemporaryFile()
    limit_mib = args.cgroup_mib or args.budget_mib
    cgroup = MemoryCgroup.make(limit_mib)
    try:
        stub, grender, base, stub_port = start([f"--browser.memory-budget={args.budget_mib}", *args.grender_arg],
                                               frontend=True, stderr=log, preexec_fn=cgroup and cgroup.enter)
    except BaseException:
        if cgroup:
            cgroup.remove()
        raise
    if cgroup and not cgroup.holds(grender.pid):
        cgroup.remove()
        cgroup = None
    peaks, running = [0, 0], [True]

    def sample():
        while running[0]:
            rss, pss = tree_mem_kib(grender.pid)
            peaks[0], peaks[1] = max(peaks[0], rss), max(peaks[1], pss)
            time.sleep(0.1)

    results, lock, counter = [], threading.Lock(), iter(range(10**9))
    stop_at = time.perf_counter() + args.seconds

    def client():
        while time.perf_counter() < stop_at:
            with lock:
                n = next(counter)
            page, extra = BUDGET_PAGES[n % len(BUDGET_PAGES)]
            url = render_url(base, stub_port, f"{page}&grender_budget={n}", timeout=15, **extra)
            t = time.perf_counter()
            status, answer_headers, body = fetch(url, {"X-Auth-Token": "-"}, timeout=30)
            with lock:
                results.append((status, answer_headers.get("Retry-After"), time.perf_counter() - t, body[:160]))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        running[0] = False
        sampler.join()
        _, metrics = get(f"{base}/metrics")
    finally:
        grender.terminate()
        stub.terminate()
        grender.wait(timeout=15)
        # Read and removed here, so that no run leaves its cgroup behind.
        kernel = (cgroup.peak_mib(), cgroup.oom_kills()) if cgroup else None
        if cgroup:
            cgroup.remove()
    log.seek(0)
    lines = log.read().decode(errors="replace").splitlines()
    plan = next((l.split("memory budget", 1)[1].strip() for l in lines if "memory budget" in l), "?")
    died = [l for l in lines if "Chromium died" in l or "crashed" in l]
    recycled = sum(1 for l in lines if "recycling Chromium" in l)
    by_status = {}
    for status, *_ in results:
        by_status[status] = by_status.get(status, 0) + 1
    bad = [r for r in results if r[0] not in (200, 429, 503)]
    no_retry = sum(1 for s, retry, *_ in results if s in (429, 503) and not retry)
    crashes = sum(1 for *_, body in results if b"crashed" in body)
    oks = sorted(took for s, _, took, _ in results if s == 200)
    rss_mib, pss_mib = peaks[0] / 1024, peaks[1] / 1024
    p50 = oks[len(oks) // 2] if oks else 0.0
    print(f"budget: {args.budget_mib} MiB ({plan}); 8 clients for {args.seconds} s on the Grafana-frontend test "
          f"app: {len(results)} answers {by_status}, {len(oks) / args.seconds:.2f} pictures/s, p50 {p50:.2f} s; "
          f"without Retry-After {no_retry}; Chromium recycled {recycled}x, died/crashed {len(died) + crashes}; "
          f"tree peak RSS {rss_mib:.0f} MiB / PSS {pss_mib:.0f} MiB")
    if kernel:
        print(f"  in a memory cgroup limited to {limit_mib} MiB: peak charged {kernel[0]:.0f} MiB, "
              f"processes killed by the kernel {kernel[1]}")
    else:
        print("  (no memory cgroup could be made here: the budget is checked on the RSS sum only)")
    failures = []
    if bad:
        failures.append(f"{len(bad)} answers not 200/429/503, e.g. {bad[0][0]} {bad[0][3]!r}")
    if no_retry:
        failures.append(f"{no_retry} refusals without Retry-After")
    if died or crashes:
        failures.append(f"Chromium died or a page crashed: {(died or ['(in an answer)'])[0][:200]}")
    if rss_mib >= args.budget_mib:
        failures.append(f"peak RSS {rss_mib:.0f} MiB is not under the budget of {args.budget_mib} MiB")
    if kernel and kernel[1]:
        failures.append(f"the kernel killed {kernel[1]} processes at the {limit_mib} MiB limit")
    if not oks:
        failures.append("no picture at all")
    for f in failures:
        print("  " + f)
    return 1 if failures else 0


# The soak's mix: (kind, share, page, extra query, expected outcome).
SOAK_MIX = [
    ("panel", 50, "/d-solo/soak{i}/p", {}, "png"),
    ("full page", 15, "/d/soak{i}/f?panels=6&panelHeight=250&lazy=1", {"height": "-1"}, "png"),
    ("pdf", 15, "/d/soak{i}/f?panels=4&rows=2", {"encoding": "pdf"}, "pdf"),
    ("broken panel", 10, "/d-solo/soak{i}/p?mode=binding&fail=1", {}, "error"),
    ("slow panel", 10, "/d-solo/soak{i}/p?delay=2500", {}, "png"),
]


def group_members(groups):
    """Live pids (not zombies) whose process group is one of `groups`."""
    return [pid for pid, state, _, pgrp in proc_table() if pgrp in groups and state != "Z"]


def soak(args):
    tmp = tempfile.mkdtemp(prefix="grender-soak-")
    stub, grender, base, stub_port = start(env={**os.environ, "TMPDIR": tmp})
    plan = [kind for kind in SOAK_MIX for _ in range(kind[1])]
    random.seed(7)
    lock, counter = threading.Lock(), iter(range(args.n))
    done, unexpected, took = [0], [], {k[0]: [] for k in SOAK_MIX}
    samples = []  # (renders done, tree RSS KiB, temp entries, Chromium processes)

    def client():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            kind, _, page, extra, expect = random.choice(plan)
            url = render_url(base, stub_port, page.format(i=i), timeout=15, **extra)
            t = time.perf_counter()
            status, answer_headers, body = fetch(url, {"X-Auth-Token": "-"}, timeout=30)
            ctype = answer_headers.get("Content-Type", "")
            ok = {
                "png": status == 200 and ctype == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n",
                "pdf": status == 200 and ctype == "application/pdf" and body[:5] == b"%PDF-",
                "error": status >= 500 and body.startswith(b"[grafana-render-failed]"),
            }[expect]
            with lock:
                took[kind].append(time.perf_counter() - t)
                done[0] += 1
                if not ok:
                    unexpected.append(f"{kind} #{i}: {status} {body[:120]!r}")

    def sampler():
        while any(t.is_alive() for t in threads):
            tree = chromium_tree(grender.pid)
            samples.append((done[0], tree_rss_kib(grender.pid), len(os.listdir(tmp)),
                            sum(1 for _, state in tree if state != "Z")))
            time.sleep(0.5)

    threads = [threading.Thread(target=client) for _ in range(4)]
    watcher = threading.Thread(target=sampler)
    failures = []
    try:
        start_t = time.perf_counter()
        for t in threads:
            t.start()
        watcher.start()
        for t in threads:
            t.join()
        watcher.join()
        wall = time.perf_counter() - start_t
        time.sleep(1)
        zombies = len(lasting_zombies(grender.pid))
        tree = chromium_tree(grender.pid)
        idle_procs = sum(1 for _, state in tree if state != "Z")
        groups = {pid for pid, _ in tree}
        temp_running = len(os.listdir(tmp))

        def median(values):
            values = sorted(values)
            return values[len(values) // 2] if values else 0

        # Drift: the median RSS of the last tenth against the second tenth (after warm-up).
        early = [rss for n, rss, _, _ in samples if args.n * 0.1 <= n < args.n * 0.2]
        late = [rss for n, rss, _, _ in samples if n >= args.n * 0.9]
        drift = (median(late) / median(early) - 1) * 100 if early and late else 0.0
        max_procs = max((p for *_, p in samples), default=0)
        max_temp = max((e for _, _, e, _ in samples), default=0)
    finally:
        grender.terminate()
        stub.terminate()
        grender.wait(timeout=30)
    time.sleep(1)
    leftover_procs = group_members(groups)
    leftover_temp = os.listdir(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    if unexpected:
        failures.append(f"{len(unexpected)} unexpected answers")
    if zombies:
        failures.append(f"{zombies} zombies")
    if leftover_procs:
        failures.append(f"{len(leftover_procs)} Chromium processes left after stop")
    if leftover_temp:
        failures.append(f"temp entries left after stop: {leftover_temp}")
    # Short runs (CI) are still warming up: drift is printed, but only checked from 500 renders.
    if drift >= 10 and args.n >= 500:
        failures.append(f"RSS drift {drift:+.1f} %")
    mix = ", ".join(f"{k} {len(v)} (p50 {median(v) * 1000:.0f} ms)" for k, v in took.items())
    print(f"soak: {args.n} mixed renders in {wall:.0f} s from 4 clients: {mix}; unexpected answers "
          f"{len(unexpected)}; RSS median {median(early) / 1024:.0f} MiB at 10-20 % -> {median(late) / 1024:.0f} MiB "
          f"in the last 10 % (drift {drift:+.1f} %); Chromium processes max {max_procs}, idle at end {idle_procs}; "
          f"temp entries max {max_temp}, at end {temp_running}; after stop: processes left {len(leftover_procs)}, "
          f"temp entries left {len(leftover_temp)}, zombies {zombies}; failures {len(failures)}")
    for f in failures + unexpected[:10]:
        print("  " + f)
    return 1 if failures else 0


def main():
    global PROFILE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["kill", "overload", "soak", "storm", "budget"])
    ap.add_argument("-n", type=int, help="kills (default 50), requests (default 300; storm 150) or renders (default 2000)")
    ap.add_argument("--debug", action="store_true", help="use the debug builds (faster to build, for CI)")
    ap.add_argument("--max-rss-mib", type=int, default=3072, help="overload: peak RSS bound (default 3072)")
    ap.add_argument("--min-share", type=float, default=0.9,
                    help="storm: least share of the possible pictures (default 0.9; CI's short run uses 0.8)")
    ap.add_argument("--attempts", type=int, default=1,
                    help="storm: runs on a new service each, until one meets the share (default 1; CI uses 2)")
    ap.add_argument("--budget-mib", type=int, default=768, help="budget: browser.memory-budget (default 768)")
    ap.add_argument("--cgroup-mib", type=int, default=0,
                    help="budget: the memory cgroup's limit, when one can be made (default: the budget)")
    ap.add_argument("--seconds", type=int, default=60, help="budget: how long the 8 clients render (default 60)")
    ap.add_argument("--grender-arg", action="append", default=[],
                    help="budget: a further grender option, e.g. --grender-arg=--render.concurrency=2")
    args = ap.parse_args()
    if args.debug:
        PROFILE = "debug"
    if args.n is None:
        args.n = {"kill": 50, "overload": 300, "soak": 2000, "storm": 150, "budget": 0}[args.mode]
    sys.exit({"kill": kill, "overload": overload, "soak": soak, "storm": storm, "budget": budget}[args.mode](args))


if __name__ == "__main__":
    main()
