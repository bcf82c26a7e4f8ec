#!/usr/bin/env python3
"""Bytes and milliseconds of each picture option, for a one-panel and a 12-panel render.

  bench/formats.py [-n 7]

Starts the release builds of the Grafana stand-in and grender on free ports (loopback only),
renders each option n times one after another and prints a Markdown table: median wall time
of the whole request and the size of the answer, with the size relative to the default PNG.
Only the Python standard library is used.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import RELEASE, ROOT, free_port, get, wait_ready  # noqa: E402

PAGES = [
    ("one panel (1000×500)", "/d-solo/fmt/p", "500"),
    ("12 panels (1000 wide, full page)", "/d/fmt/x?panels=12&panelHeight=250", "-1"),
]

OPTIONS = [
    ("default PNG", {}),
    ("optimize=true", {"optimize": "true"}),
    ("colors=256", {"colors": "256"}),
    ("colors=256&optimize=true", {"colors": "256", "optimize": "true"}),
    ("encoding=jpeg (q 85)", {"encoding": "jpeg"}),
    ("encoding=jpeg&quality=60", {"encoding": "jpeg", "quality": "60"}),
    ("encoding=webp (q 80)", {"encoding": "webp"}),
    ("thumbnail=400", {"thumbnail": "400"}),
    ("thumbnail=400&encoding=jpeg", {"thumbnail": "400", "encoding": "jpeg"}),
    ("thumbnail=400&encoding=webp", {"thumbnail": "400", "encoding": "webp"}),
    ("greyscale=true", {"greyscale": "true"}),
    ("greyscale=true&optimize=true", {"greyscale": "true", "optimize": "true"}),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=7, help="renders per option and page (default 7)")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "grender", "-p", "grafana-stub", "--bins"],
                   cwd=ROOT, check=True)
    stub_port, port = free_port(), free_port()
    stub = subprocess.Popen([f"{RELEASE}/grafana-stub", f"127.0.0.1:{stub_port}", "k", "0"], stdout=subprocess.DEVNULL)
    grender = subprocess.Popen([f"{RELEASE}/grender", "server", "--config=/dev/null",
                                f"--server.addr=127.0.0.1:{port}", "--log.level=error"])
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        rows = {}
        for page_name, page, height in PAGES:
            default_bytes = None
            for name, params in OPTIONS:
                times, size = [], 0
                for i in range(args.n + 1):
                    q = urllib.parse.urlencode({"url": f"http://127.0.0.1:{stub_port}{page}", "height": height,
                                                "renderKey": "k", "domain": "127.0.0.1", **params})
                    t = time.perf_counter()
                    status, body = get(f"{base}/render?{q}", {"X-Auth-Token": "-"})
                    took = time.perf_counter() - t
                    if status != 200:
                        sys.exit(f"{name} on {page_name}: {status} {body[:200]!r}")
                    if i:  # the first one warms up
                        times.append(took)
                    size = len(body)
                default_bytes = default_bytes or size
                rows.setdefault(name, []).append((size, statistics.median(times) * 1000, size / default_bytes))
        print(f"| option | {PAGES[0][0]}: bytes | ms | {PAGES[1][0]}: bytes | ms |")
        print("|---|---|---|---|---|")
        for name, _ in OPTIONS:
            cells = " | ".join(f"{s:,} ({r:.0%}) | {ms:.0f}" for s, ms, r in rows[name])
            print(f"| `{name}` | {cells} |")
        print(f"\n(median of {args.n} sequential renders after one warm-up; bytes relative to the default PNG)")
    finally:
        grender.terminate()
        stub.terminate()
        grender.wait(timeout=15)


if __name__ == "__main__":
    main()
