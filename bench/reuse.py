#!/usr/bin/env python3
"""Warm app reuse (render.reuse-app) on and off, and the CDP floor, in one run.

Starts the Grafana stand-in serving the Grafana-frontend test app (testapp/, built from
Grafana's own npm packages), then, with the same page and the same query latency:

  floor        a minimal warm-tab CDP loop (target/release/examples/cdp_floor): navigate,
               wait for readiness, capture — the fastest any page *load* can be (half of
               its renders before the grenders, half after)
  off / on     grender without and with --render.reuse-app, one after the other:
               one viewer's renders in sequence (p50 / p90), then 8 clients from 4 viewers
               (JWT render keys signed with the token, as Grafana's renderAuthJWT keys):
               throughput, p50, errors, peak RSS of the whole tree, and reuse outcomes

and prints the ratios. Every request is a distinct picture (a bench parameter changes), so
nothing is shared by coalescing. Only the Python standard library; loopback only.

  bench/reuse.py                      # solo time series, 1000x500, no query delay
  bench/reuse.py --delay 50 -n 30     # queries take 50 ms at the stand-in
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import RELEASE, ROOT, MemSampler, RssSampler, concurrent, floor, free_port, get, pct, wait_ready  # noqa: E402

TOKEN = "bench-token"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(user_id, secret=TOKEN):
    """A render key signed as Grafana's renderAuthJWT keys are (HS512 with the renderer token)."""
    header = b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    claims = {"renderUser": {"org_id": 1, "user_id": user_id, "org_role": "Admin"}, "exp": int(time.time()) + 3600}
    payload = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha512).digest()
    return f"{header}.{payload}.{b64(sig)}"


def reuse_counts(base):
    _, body = get(f"{base}/metrics")
    lines = [l for l in body.decode(errors="replace").splitlines() if l.startswith("grender_app_reuse_total")]
    return ", ".join(l.replace("grender_app_reuse_total", "") for l in lines) or "none"


class Grender:
    """A grender started with `extra` options, its memory sampled while it lives."""

    def __init__(self, label, extra):
        self.label, port = label, free_port()
        self.proc = subprocess.Popen([f"{RELEASE}/grender", "server", f"--server.addr=127.0.0.1:{port}",
                                      f"--server.auth-token={TOKEN}", "--log.level=error", *extra])
        self.base = f"http://127.0.0.1:{port}"
        wait_ready(self.base)
        # Sampling walks /proc many times a second: started only for the 8-client runs
        # (where the peak is), so that it does not slow the sequential renders.
        self.rss, self.mem = RssSampler(self.proc.pid), MemSampler(self.proc.pid)
        self.seq, self.rates, self.errors = [], [], 0

    def url(self, target, n, viewer, args):
        t = target + ("&" if "?" in target else "?") + f"grender_bench={n}"
        query = urllib.parse.urlencode({"url": t, "width": args.width, "height": args.height,
                                        "renderKey": viewer, "domain": "127.0.0.1", "timeout": "60"})
        return f"{self.base}/render?{query}"

    def stop(self):
        self.rss.running = self.mem.running = False
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(both, args, target):
    """Interleaved, so that both see the same machine: one viewer's renders alternate
    between them; the 8-client runs alternate, `rounds` each."""
    viewers = [jwt(7 + i) for i in range(4)]
    headers = {"X-Auth-Token": TOKEN}
    for g in both:
        for n in range(args.warmup):
            get(g.url(target, n, viewers[0], args), headers)
    for n in range(args.n):
        for g in both:
            t = time.perf_counter()
            status, _ = get(g.url(target, 1000 + n, viewers[0], args), headers)
            g.seq.append((time.perf_counter() - t) * 1000)
            g.errors += status != 200
            # Repeat renders of one viewer come seconds apart in real use; without a pause,
            # each render would also pay for the other grender's clean-up after its last one.
            time.sleep(args.pause)
    for g in both:
        g.rss.start()
        g.mem.start()
    for r in range(args.rounds):
        for g in both:
            g.mem.phase = "8 clients"
            # The n-th request goes to viewer n % 4: 8 clients, 4 viewers.
            rate, _, errors = concurrent(lambda n: g.url(target, 10_000 * (r + 1) + n, viewers[n % 4], args),
                                         headers, 8, args.per_client)
            g.mem.phase = "between"
            g.rates.append(rate)
            g.errors += errors
    for g in both:
        print(f"{g.label:4s} one viewer   p50 {statistics.median(g.seq):6.0f} ms  p90 {pct(g.seq, 90):6.0f} ms")
        print(f"{g.label:4s} 8 clients/4 viewers  {statistics.mean(g.rates):5.2f} renders/s "
              f"({', '.join(f'{x:.2f}' for x in g.rates)})  errors {g.errors}  "
              f"peak RSS {g.rss.peak / 1024:.0f} MiB  ({g.mem.peak('8 clients')})")
        print(f"{g.label:4s} reuse: {reuse_counts(g.base)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20, help="sequential renders of one viewer (default 20)")
    ap.add_argument("--per-client", type=int, default=6, help="renders per client of the 8 (default 6)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--width", default="1000")
    ap.add_argument("--height", default="500")
    ap.add_argument("--delay", default="0", help="stand-in query delay in ms")
    ap.add_argument("--page", default="/d-solo/kinds/x?panelId=1", help="test-app path and knobs")
    ap.add_argument("--pause", type=float, default=0.5,
                    help="seconds between two sequential renders (default 0.5; 0 = back to back)")
    ap.add_argument("--rounds", type=int, default=2, help="8-client runs of each grender (default 2)")
    ap.add_argument("--grender-arg", action="append", default=[], help="extra option for both grenders")
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "grender", "-p", "grafana-stub", "--bins",
                    "--example", "cdp_floor"], cwd=ROOT, check=True)
    subprocess.run([os.path.join(ROOT, "scripts", "testapp.sh")], check=True, stdout=subprocess.DEVNULL)
    stub_port = free_port()
    stub = subprocess.Popen([f"{RELEASE}/grafana-stub", "--frontend", f"127.0.0.1:{stub_port}", "-", "0"],
                            stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        sep = "&" if "?" in args.page else "?"
        target = f"http://127.0.0.1:{stub_port}{args.page}{sep}delay={args.delay}"
        print(f"page: {target} at {args.width}x{args.height} (Grafana-frontend test app)")
        # The floor runs before and after the grenders, half of its renders each time, so
        # that a machine whose load drifts weighs on both sides alike.
        half = max(1, args.n // 2)
        floor_ms = floor(target, half + args.warmup, args.width, args.height, jwt(7), "127.0.0.1")[args.warmup:]
        both = [Grender("off", args.grender_arg), Grender("on", ["--render.reuse-app", *args.grender_arg])]
        try:
            measure(both, args, target)
        finally:
            for g in both:
                g.stop()
        floor_ms += floor(target, half + args.warmup, args.width, args.height, jwt(7), "127.0.0.1")[args.warmup:]
        fp50 = statistics.median(floor_ms)
        print(f"CDP floor    one tab     p50 {fp50:6.0f} ms  p90 {pct(floor_ms, 90):6.0f} ms  (before and after)")
        off, on = both
        p50 = {g.label: statistics.median(g.seq) for g in both}
        rate = {g.label: statistics.mean(g.rates) for g in both}
        print(f"reuse on / off: p50 {p50['on'] / p50['off']:.2f} x, on = {p50['on'] / fp50:.2f} x floor, "
              f"throughput {rate['on'] / rate['off']:.2f} x, peak RSS {on.rss.peak / off.rss.peak:.2f} x, "
              f"errors {off.errors} / {on.errors}")
    finally:
        stub.terminate()
        stub.wait(timeout=10)


if __name__ == "__main__":
    main()
