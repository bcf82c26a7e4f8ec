#!/usr/bin/env python3
"""grender benchmark: latency, throughput, memory, and the CDP floor, in one run.

It builds the release binaries, starts the built-in Grafana stand-in (with its ~8 MiB
application bundle unless --bundle-kib 0) and grender on free loopback ports, then measures:

  cold         the first render after grender started (its warm tab has never loaded the app)
  floor        the same page rendered by a minimal warm-tab CDP loop, no service around it
               (target/release/examples/cdp_floor): navigate, wait for readiness, capture
  sequential   N renders one after another: p50 / p90
  concurrent   C clients at once for each C in --clients: throughput, p50, errors
  memory       peak RSS of grender plus its whole Chromium tree during all of the above, and
               RSS / PSS peaks per concurrency level (--idle-wait 60: also after a minute idle)

and prints grender's figures as ratios to the floor measured in the same run.

With --frontend the stand-in serves the Grafana-frontend test app (testapp/, Grafana's own
@grafana/scenes and @grafana/ui code, built by scripts/testapp.sh) instead of its canvas page:
a solo time series by default, `--page '/d/kinds/x?kiosk' --height 1600` for a whole dashboard.

Against your own Grafana and a running grender (no floor, no stand-in):
  bench/bench.py --grender http://127.0.0.1:8081 --token T --pid PID \\
      --target 'http://grafana:3000/d-solo/UID/slug?orgId=1&panelId=2' --render-key K --domain grafana

Only the Python standard library is used. Traffic stays on loopback unless you point it elsewhere.
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
RELEASE = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_pids(root_pid):
    """root_pid and all its descendants."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def tree_mem_kib(root_pid):
    """(RSS, PSS) in KiB summed over root_pid's tree. PSS shares each page among the processes
    mapping it, so the sum is what the tree really costs (RSS counts shared pages once per process)."""
    rss = pss = 0
    for pid in tree_pids(root_pid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return rss, pss


def process_kind(pid):
    """What a process of the tree is: grender, browser, renderer, gpu, zygote or the utility's service."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            # Chromium's children rewrite their command line into one string with spaces.
            args = f.read().decode(errors="replace").replace("\0", " ").split()
    except OSError:
        return "gone"
    if not args or "chrom" not in args[0]:
        return os.path.basename(args[0]) if args and args[0] else "?"
    kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "browser")
    sub = next((a.split("=", 1)[1] for a in args if a.startswith("--utility-sub-type=")), "")
    return f"{kind} ({sub.split('.')[0]})" if sub else kind


def tree_breakdown(root_pid):
    """'kind RSS/PSS MiB' for each process of the tree, largest PSS first."""
    rows = []
    for pid in tree_pids(root_pid):
        rss = pss = 0
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss = int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss = int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
        rows.append((pss, rss, process_kind(pid)))
    rows.sort(reverse=True)
    return ", ".join(f"{kind} {rss / 1024:.0f}/{pss / 1024:.0f}" for pss, rss, kind in rows)


class MemSampler(threading.Thread):
    """Peak RSS and PSS of a process tree, per named phase of the run."""

    def __init__(self, pid, every=0.1):
        super().__init__(daemon=True)
        self.pid, self.every, self.running, self.phase, self.peaks = pid, every, True, "start", {}

    def run(self):
        while self.running:
            rss, pss = tree_mem_kib(self.pid)
            old = self.peaks.get(self.phase, (0, 0))
            self.peaks[self.phase] = (max(old[0], rss), max(old[1], pss))
            time.sleep(self.every)

    def peak(self, phase):
        rss, pss = self.peaks.get(phase, (0, 0))
        return f"RSS {rss / 1024:.0f} MiB / PSS {pss / 1024:.0f} MiB"


def tree_rss_kib(root_pid):
    """Sum of VmRSS over root_pid and all its descendants."""
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    total = 0
    for pid in tree_pids(root_pid):
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page_kib
        except (OSError, IndexError, ValueError):
            continue
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid, every=0.05):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.running = pid, every, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, tree_rss_kib(self.pid))
            time.sleep(self.every)


def fetch(url, headers=None, timeout=120):
    """(status, response headers, body); status 0 when no answer came."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except OSError as e:
        return 0, {}, str(e).encode()


def get(url, headers=None, timeout=120):
    status, _, body = fetch(url, headers, timeout)
    return status, body


def wait_ready(base, seconds=30, path="/version", expect=b"Chrome/"):
    deadline = time.time() + seconds
    while time.time() < deadline:
        status, body = get(base + path, timeout=2)
        if status == 200 and expect in body:
            return
        time.sleep(0.1)
    sys.exit("grender did not become ready")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values))) - 1))]


def sequential(url, headers, n):
    times, errors = [], 0
    for _ in range(n):
        t = time.perf_counter()
        status, _ = get(url, headers)
        times.append((time.perf_counter() - t) * 1000)
        errors += status != 200
    return times, errors


def concurrent(url_for, headers, clients, per_client):
    """`clients` threads, each rendering `per_client` times; url_for(n) gives the n-th URL."""
    times, errors, lock, counter = [], [0], threading.Lock(), iter(range(clients * per_client))

    def client():
        for _ in range(per_client):
            with lock:
                n = next(counter)
            t = time.perf_counter()
            status, body = get(url_for(n), headers)
            with lock:
                times.append((time.perf_counter() - t) * 1000)
                if status != 200:
                    errors[0] += 1
                    print(f"  error {status}: {body[:200]!r}", file=sys.stderr)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return len(times) / elapsed, times, errors[0]


def floor(target, n, width, height, key, domain):
    out = subprocess.run([f"{RELEASE}/examples/cdp_floor", target, str(n), width, height, key, domain],
                         check=True, capture_output=True, text=True).stdout
    return [float(x) for x in out.split()]


def soak(url_for, headers, pid, total):
    """RSS after 100 renders and after `total`, each measured after a 2 s pause."""
    done, marks, errors = 0, {}, 0
    for mark in (100, total):
        _, _, e = concurrent(lambda n: url_for(done + n), headers, 4, (mark - done) // 4)
        errors += e
        done = mark
        time.sleep(2)
        marks[mark] = tree_rss_kib(pid) / 1024
    after_100, after_all = marks[100], marks[total]
    print(f"soak: {total} renders, errors {errors}; RSS after 100: {after_100:.0f} MiB, "
          f"after {total}: {after_all:.0f} MiB ({(after_all / after_100 - 1) * 100:+.1f} %)")


def pool_metrics(base):
    """grender's tabs by state and the browser contexts it opened, from /metrics."""
    _, body = get(f"{base}/metrics")
    tabs, contexts = [], 0.0
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("grender_browser_tabs{"):
            state = line.split('state="')[1].split('"')[0]
            tabs.append(f"{state} {float(line.rsplit(' ', 1)[1]):.0f}")
        elif line.startswith("grender_browser_contexts_opened_total "):
            contexts = float(line.rsplit(" ", 1)[1])
    return {"tabs": ", ".join(tabs) or "none", "contexts": contexts}


def node_renderer_env(args, port):
    """The official Node renderer (3.x/4.x, built with `npx tsc` in args.node_renderer) in its
    clustered mode, on the same Chromium headless shell as grender."""
    chromium = "/usr/lib/chromium/chromium-headless-shell"
    return {"HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(port), "AUTH_TOKEN": args.token,
            "CHROME_BIN": os.environ.get("CHROME_BIN", chromium), "RENDERING_MODE": "clustered",
            "RENDERING_CLUSTERING_MODE": args.node_mode, "RENDERING_CLUSTERING_MAX_CONCURRENCY": str(args.node_concurrency),
            "LOG_LEVEL": "error"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20, help="sequential renders (default 20)")
    ap.add_argument("--clients", default="1,4,8", help="concurrency levels (default 1,4,8)")
    ap.add_argument("--per-client", type=int, default=10, help="renders per client at each level")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--width", default="1000")
    ap.add_argument("--height", default="500")
    ap.add_argument("--delay", default="0", help="stand-in query delay in ms")
    ap.add_argument("--bundle-kib", type=int, default=8192, help="stand-in bundle size (0: none)")
    ap.add_argument("--grender", help="URL of a running grender (default: start one)")
    ap.add_argument("--grender-arg", action="append", default=[], help="extra option for the started grender")
    ap.add_argument("--token", default="-")
    ap.add_argument("--target", help="page to render (default: the stand-in's one-panel page)")
    ap.add_argument("--page", help="stand-in path and knobs instead of the one-panel page, "
                                   "e.g. '/d/tall/x?panels=70&lazy=1'")
    ap.add_argument("--frontend", action="store_true",
                    help="render the Grafana-frontend test app (testapp/) instead of the stand-in's canvas page")
    ap.add_argument("--encoding", default="png", help="png or pdf")
    ap.add_argument("--render-key", default="bench-key")
    ap.add_argument("--domain", default="127.0.0.1")
    ap.add_argument("--pid", type=int, help="grender pid to sample RSS of, with --grender")
    ap.add_argument("--no-floor", action="store_true")
    ap.add_argument("--storm", type=int, default=100, help="identical requests sent at once (0: skip)")
    ap.add_argument("--idle-wait", type=int, default=0,
                    help="then wait this many seconds without requests and report the idle memory (e.g. 60)")
    ap.add_argument("--after-idle", action="store_true",
                    help="with --idle-wait: then time the first render after idling, and three more")
    ap.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    ap.add_argument("--node-renderer", metavar="DIR",
                    help="measure the official Node renderer checked out and built (npx tsc) in DIR instead of "
                         "grender, in its clustered mode")
    ap.add_argument("--node-mode", default="context", help="with --node-renderer: clustering mode (context, browser, "
                                                          "incognito; default context)")
    ap.add_argument("--node-concurrency", type=int, default=5, help="with --node-renderer: max concurrency (default 5)")
    ap.add_argument("--soak", type=int, default=0,
                    help="then render this many more times (4 clients) and compare the Chromium tree's RSS "
                         "after 100 renders with after all of them")
    args = ap.parse_args()

    procs = []
    try:
        own = not args.grender
        if own and not args.no_build:
            subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "grender", "-p", "grafana-stub", "--bins",
                            "--example", "cdp_floor"], cwd=ROOT, check=True)
        if own:
            stub_port, port = free_port(), free_port()
            stub_args = [f"127.0.0.1:{stub_port}", args.render_key, str(args.bundle_kib)]
            if args.frontend:
                subprocess.run([os.path.join(ROOT, "scripts", "testapp.sh")], check=True, stdout=subprocess.DEVNULL)
                stub_args.insert(0, "--frontend")
            procs.append(subprocess.Popen([f"{RELEASE}/grafana-stub", *stub_args], stdout=subprocess.DEVNULL))
            if args.page:
                args.target = f"http://127.0.0.1:{stub_port}{args.page}"
            if not args.target and args.frontend:
                args.target = f"http://127.0.0.1:{stub_port}/d-solo/kinds/x?panelId=1&delay={args.delay}"
            if not args.target:
                args.target = f"http://127.0.0.1:{stub_port}/d-solo/bench/panel?delay={args.delay}"
            time.sleep(0.3)
        floor_ms = None
        if own and not args.no_floor and args.encoding == "png" and args.height != "-1":
            floor_ms = floor(args.target, args.n + args.warmup, args.width, args.height, args.render_key,
                             args.domain)[args.warmup:]
        if own and args.node_renderer:
            grender = subprocess.Popen(["node", os.path.join(args.node_renderer, "build", "app.js"), "server"],
                                       cwd=args.node_renderer, stdout=subprocess.DEVNULL,
                                       env={**os.environ, **node_renderer_env(args, port)})
            procs.append(grender)
            base, pid = f"http://127.0.0.1:{port}", grender.pid
            wait_ready(base, path="/", expect=b"")
        elif own:
            grender = subprocess.Popen([f"{RELEASE}/grender", "server", f"--server.addr=127.0.0.1:{port}",
                                        f"--server.auth-token={args.token}", "--log.level=error",
                                        *args.grender_arg])
            procs.append(grender)
            base, pid = f"http://127.0.0.1:{port}", grender.pid
        else:
            base, pid = args.grender.rstrip("/"), args.pid
        if not args.node_renderer:
            wait_ready(base)
        def url_for(n=None):
            # Distinct requests unless n is None: identical ones would share one render.
            target = args.target
            if n is not None:
                target += ("&" if "?" in target else "?") + f"grender_bench={n}"
            query = urllib.parse.urlencode({"url": target, "width": args.width, "height": args.height,
                                            "encoding": args.encoding, "renderKey": args.render_key,
                                            "domain": args.domain, "timeout": "60"})
            return f"{base}/render?{query}"

        url, headers = url_for(), {"X-Auth-Token": args.token}
        idle = tree_rss_kib(pid) if pid else 0
        if pid:
            time.sleep(2)
            rss, pss = tree_mem_kib(pid)
            print(f"memory of the tree at start, before any render: RSS {rss / 1024:.0f} MiB / PSS {pss / 1024:.0f} MiB")
        sampler = RssSampler(pid) if pid else None
        mem = MemSampler(pid) if pid else None
        if sampler:
            sampler.start()
            mem.start()
        cold, cold_errors = sequential(url, headers, 1)
        _, warm_errors = sequential(url, headers, args.warmup)
        if warm_errors:
            status, body = get(url, headers)
            sys.exit(f"render failed: {status} {body[:300]!r}")

        print(f"page: {args.target} at {args.width}x{args.height} {args.encoding}"
              + (" (Grafana-frontend test app)" if args.frontend else f", bundle {args.bundle_kib} KiB"))
        if own:
            print(f"grender      cold first render after start {cold[0]:6.0f} ms  errors {cold_errors}")
        seq, seq_errors = sequential(url, headers, args.n)
        p50 = statistics.median(seq)
        fp50 = statistics.median(floor_ms) if floor_ms else None
        if fp50:
            print(f"CDP floor    sequential p50 {fp50:6.0f} ms  p90 {pct(floor_ms, 90):6.0f} ms")
        print(f"grender      sequential p50 {p50:6.0f} ms  p90 {pct(seq, 90):6.0f} ms  errors {seq_errors}"
              + (f"  = {p50 / fp50:.2f} x floor" if fp50 else ""))
        one = None
        offset = 0
        for c in [int(x) for x in args.clients.split(",") if x]:
            if mem:
                mem.phase = f"{c} clients"
            rate, times, errors = concurrent(lambda n: url_for(offset + n), headers, c, args.per_client)
            offset += c * args.per_client
            if c == 1:
                one = rate
            ratio = f"  = {rate / one:.2f} x one client" if one and c != 1 else ""
            print(f"grender {c:2d} clients  {rate:5.2f} renders/s  p50 {statistics.median(times):6.0f} ms  "
                  f"errors {errors}{ratio}   (distinct pictures)")
        if mem:
            mem.phase = "storm"
        if args.storm:
            start = time.perf_counter()
            _, times, errors = concurrent(lambda n: url, headers, args.storm, 1)
            print(f"storm: {args.storm} identical requests at once answered in {time.perf_counter() - start:.2f} s, "
                  f"errors {errors} (they share one render)")
        if sampler:
            sampler.running = False
            sampler.join()
            print(f"RSS of grender + Chromium tree: idle {idle / 1024:.0f} MiB, peak {sampler.peak / 1024:.0f} MiB")
            levels = [int(x) for x in args.clients.split(",") if x]
            print("memory of the tree, peaks: " + "; ".join(f"{c} clients {mem.peak(f'{c} clients')}" for c in levels))
        if mem and args.idle_wait:
            mem.phase = "idle"
            time.sleep(args.idle_wait)
            rss, pss = tree_mem_kib(pid)
            print(f"memory of the tree after {args.idle_wait} s without requests: RSS {rss / 1024:.0f} MiB / "
                  f"PSS {pss / 1024:.0f} MiB")
            print(f"  by process, RSS/PSS MiB: {tree_breakdown(pid)}")
            idle_pool = pool_metrics(base) if not args.node_renderer else None
            if idle_pool:
                print(f"  grender's tabs: {idle_pool['tabs']}; browser contexts opened since start: "
                      f"{idle_pool['contexts']:.0f}")
            if args.after_idle:
                times, errors = sequential(url_for(20_000_000), headers, 1)
                warm, _ = sequential(url_for(20_000_001), headers, 3)
                # A dormant context's HTTP cache is kept for this render: no new context.
                opened = (f", new browser contexts {pool_metrics(base)['contexts'] - idle_pool['contexts']:.0f}"
                          if idle_pool else "")
                print(f"first render after the idle wait {times[0]:6.0f} ms (errors {errors}{opened}), "
                      f"then p50 {statistics.median(warm):6.0f} ms")
        if mem:
            mem.running = False
        if args.soak and pid:
            soak(lambda n: url_for(10_000_000 + n), headers, pid, args.soak)
        status, body = get(f"{base}/metrics")
        cdp = [l for l in body.decode(errors="replace").splitlines() if l.startswith("grender_cdp_")]
        print("CDP client: " + ("; ".join(cdp) if cdp else "no unparsed messages, no rescued navigations"))
    finally:
        leftover = [q for p in procs for q in tree_pids(p.pid)[1:]] if args.node_renderer else []
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for pid in leftover:  # the Node renderer's Chromium, if it outlived it
            try:
                os.kill(pid, 9)
            except OSError:
                pass


if __name__ == "__main__":
    main()
