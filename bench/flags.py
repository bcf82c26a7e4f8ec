#!/usr/bin/env python3
"""Chromium memory flags, measured one by one: runs bench/bench.py once per variant (release
builds, the Grafana-frontend test app by default) and prints a table of the tree's memory
before any render, its peaks at 1 and at 8 clients, after the idle wait, and the latencies.

  bench/flags.py                         every variant below
  bench/flags.py --only baseline,bfcache  some of them
  bench/flags.py --stand-in              the stand-in's canvas page instead of the test app

A variant either adds flags (`--browser.flag`) or removes one of grender's own base flags,
by starting Chromium through a wrapper script that drops it. Only the standard library.
"""
import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# (name, flags added, base flag removed)
VARIANTS = [
    ("baseline", [], None),
    ("renderer-process-limit=1", ["--renderer-process-limit=1"], None),
    ("process-per-site", ["--process-per-site"], None),
    ("v8 old space 128 MiB", ["--js-flags=--max-old-space-size=128"], None),
    ("v8 optimize-for-size", ["--js-flags=--optimize-for-size"], None),
    ("site isolation off", ["--disable-site-isolation-trials",
                            "--disable-features=IsolateOrigins,site-per-process"], None),
    ("dev-shm used (base flag removed)", [], "--disable-dev-shm-usage"),
    ("in-process-gpu", ["--in-process-gpu"], None),
    ("no back-forward cache", ["--disable-back-forward-cache"], None),
    ("no zygote", ["--no-zygote", "--no-sandbox"], None),
    ("low-end device mode", ["--enable-low-end-device-mode"], None),
    # grender's base flags already disable features; the variant repeats them (the last wins).
    ("no spare renderer", ["--disable-features=Translate,MediaRouter,OptimizationHints,"
                           "SpareRendererForSitePerProcess"], None),
    ("network service in process", ["--enable-features=NetworkServiceInProcess2"], None),
    ("fewer processes",  # in-process GPU and network service, no spare renderer
     ["--in-process-gpu", "--enable-features=NetworkServiceInProcess2",
      "--disable-features=Translate,MediaRouter,OptimizationHints,SpareRendererForSitePerProcess"], None),
    ("fewer processes + v8 optimize-for-size",
     ["--in-process-gpu", "--enable-features=NetworkServiceInProcess2",
      "--disable-features=Translate,MediaRouter,OptimizationHints,SpareRendererForSitePerProcess",
      "--js-flags=--optimize-for-size"], None),
]


def wrapper(chromium, drop, tmp):
    """A script that starts `chromium` without the flag `drop` (exec: same pid and group)."""
    path = os.path.join(tmp, "chromium-without")
    with open(path, "w") as f:
        f.write("#!/bin/bash\nargs=()\nfor a in \"$@\"; do [[ \"$a\" == " + drop + " ]] || args+=(\"$a\"); done\n"
                f"exec {chromium} \"${{args[@]}}\"\n")
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return path


def parse(out):
    """The figures of one bench.py run, as table cells."""
    def grab(pattern, group=1):
        m = re.search(pattern, out)
        return m.group(group) if m else "?"
    start = grab(r"at start, before any render: RSS (\d+) MiB / PSS (\d+)", 0)
    start = re.sub(r".*RSS (\d+) MiB / PSS (\d+)", r"\1 / \2", start)
    peak = lambda c: grab(rf"{c} clients RSS (\d+ MiB / PSS \d+) MiB").replace(" MiB / PSS", " /")
    idle = grab(r"without requests: RSS (\d+ MiB / PSS \d+) MiB").replace(" MiB / PSS", " /")
    return [start, peak(1), peak(8), idle, grab(r"sequential p50\s+(\d+) ms"),
            grab(r" 8 clients\s+([\d.]+) renders/s"), grab(r"first render after the idle wait\s+(\d+) ms"),
            str(sum(int(n) for n in re.findall(r"errors (\d+)", out)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated variant names (default: all)")
    ap.add_argument("--stand-in", action="store_true", help="the stand-in's canvas page, not the test app")
    ap.add_argument("--idle-wait", type=int, default=60)
    ap.add_argument("--chromium", default=shutil.which("chromium-headless-shell") or shutil.which("chromium"))
    ap.add_argument("--grender-arg", action="append", default=[], help="passed to bench.py for every variant")
    args = ap.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags, drop in VARIANTS:
            if wanted and name not in wanted:
                continue
            cmd = [sys.executable, os.path.join(HERE, "bench.py"), "--no-build", "--no-floor", "--storm", "0",
                   "--clients", "1,8", "--per-client", "5", "-n", "10", "--idle-wait", str(args.idle_wait),
                   "--after-idle"]
            if not args.stand_in:
                cmd.append("--frontend")
            cmd += [f"--grender-arg={a}" for a in args.grender_arg]
            cmd += [f"--grender-arg=--browser.flag={f}" for f in flags]
            if drop:
                cmd.append(f"--grender-arg=--browser.path={wrapper(args.chromium, drop, tmp)}")
            out = subprocess.run(cmd, capture_output=True, text=True).stdout
            print(out, file=sys.stderr)
            rows.append([name, *parse(out)])
    print("| variant | start RSS / PSS MiB | 1 client peak | 8 clients peak | idle after "
          f"{args.idle_wait} s | p50 ms | 8 clients renders/s | first after idle ms | errors |")
    print("|---" * 9 + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
