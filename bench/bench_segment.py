#!/usr/bin/env python3
"""Segmentation benchmark: `inspect` (load) and `run` (load, segmentation, metrics, ESCC) of a 512x512x600 CT phantom at
1 and 2 threads, whole-process wall time (median of N runs after a warm-up), speed-up,
seconds per 100 M voxels and peak RSS per voxel; per-stage seconds from the segmentation's
own timing note in results.json.

Usage: bench/bench_segment.py [--build DIR] [--work DIR] [--runs N]
Uses the series bench_load.py generates (run that first, or this generates it).
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run_timed(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    return time.perf_counter() - t0, ru.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--work", default=os.path.join(root, "bench", "work"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--slices", type=int, default=600)
    a = ap.parse_args()
    exe = os.path.join(a.build, "pipeline", "spinemets")
    d = os.path.join(a.work, f"ct512x{a.slices}", "uncompressed")
    if not os.path.isdir(os.path.join(d, "dicom")):
        subprocess.run([exe, "phantom", "--levels", "T1-S1", "--dims", f"512x512x{a.slices}",
                        "--pixel", "0.8", "--slice", "1.0", "-o", d], check=True)
    series = os.path.join(d, "dicom")
    nvox = 512 * 512 * a.slices
    out = tempfile.mkdtemp(prefix="smbench-seg-")
    rows = {}
    for threads in (1, 2):
        cmds = {
            "load": [exe, "inspect", "--threads", str(threads), series],
            "run": [exe, "run", "--threads", str(threads), "--no-volume", series, "-o", out],
        }
        for k, c in cmds.items():
            times, rss = [], []
            for i in range(a.runs + 1):
                w, r, rc = run_timed(c)
                if rc != 0:
                    sys.exit(f"{' '.join(c)} failed with exit code {rc}")
                if i:
                    times.append(w)
                    rss.append(r)
            rows[(k, threads)] = (statistics.median(times), min(times), max(times), max(rss))
        res = glob.glob(os.path.join(out, "*", "results.json"))[0]
        notes = json.load(open(res)).get("segmentation", {}).get("notes", [])
        timing = [n for n in notes if n.startswith("timing")]
        rows[("stages", threads)] = timing[0] if timing else "(no timing note)"
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"volume 512x512x{a.slices} = {nvox / 1e6:.0f} M voxels; runs {a.runs} (+1 warm-up)")
    print(f"{'command':5s} {'threads':>7s} {'median s':>9s} {'min':>7s} {'max':>7s} "
          f"{'s/100Mvox':>9s} {'RSS B/vox':>9s}")
    for k in ("load", "run"):
        for t in (1, 2):
            med, lo, hi, rss = rows[(k, t)]
            print(f"{k:5s} {t:7d} {med:9.3f} {lo:7.3f} {hi:7.3f} {med / nvox * 1e8:9.2f} "
                  f"{rss / nvox:9.2f}")
    for k in ("load", "run"):
        print(f"speed-up 2 vs 1 thread, {k}: {rows[(k, 1)][0] / rows[(k, 2)][0]:.2f}")
    for t in (1, 2):
        print(f"segmentation stages at {t} thread(s): {rows[('stages', t)]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
