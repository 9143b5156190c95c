#!/usr/bin/env python3
"""Loading benchmark: spinemets inspect vs dcm2niix vs cat (the I/O floor).

Generates a 512x512x600 CT phantom series once (uncompressed), makes JPEG-lossless and
RLE copies with DCMTK's own dcmcjpeg/dcmcrle, then times whole processes, interleaved,
median of N runs after a warm-up, and prints ratios and peak RSS per voxel.

Usage: bench/bench_load.py [--build DIR] [--work DIR] [--runs N] [--slices N] [--threads N]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run_timed(cmd, cwd=None):
    """Runs cmd, returns (wall seconds, peak RSS bytes of that process, exit code)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_maxrss * 1024, p.returncode


def transcode(tool, args, src, dst):
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        subprocess.run([tool] + args + [os.path.join(src, name), os.path.join(dst, name)],
                       check=True)


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--work", default=os.path.join(root, "bench", "work"))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--slices", type=int, default=600)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", default="", help="comma list of: uncompressed,jpegll,rle")
    a = ap.parse_args()

    exe = os.path.join(a.build, "pipeline", "spinemets")
    if not os.access(exe, os.X_OK):
        sys.exit(f"{exe} not built: run scripts/demo.sh or cmake --build first")
    for tool in ("dcm2niix", "dcmcjpeg", "dcmcrle"):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: apt-get install dcm2niix dcmtk")

    base = os.path.join(a.work, f"ct512x{a.slices}")
    raw = os.path.join(base, "uncompressed")
    if not os.path.isdir(os.path.join(raw, "dicom")):
        print(f"generating 512x512x{a.slices} phantom in {raw}", flush=True)
        subprocess.run([exe, "phantom", "--levels", "T1-S1", "--dims", f"512x512x{a.slices}",
                        "--pixel", "0.8", "--slice", "1.0", "-o", raw], check=True)
    variants = {"uncompressed": os.path.join(raw, "dicom")}
    jll = os.path.join(base, "jpegll")
    if not os.path.isdir(jll):
        print("transcoding to JPEG lossless (dcmcjpeg +e14 first-order prediction)", flush=True)
        transcode("dcmcjpeg", ["--encode-lossless-sv1"], variants["uncompressed"], jll + ".part")
        os.rename(jll + ".part", jll)
    variants["jpegll"] = jll
    rle = os.path.join(base, "rle")
    if not os.path.isdir(rle):
        print("transcoding to RLE (dcmcrle)", flush=True)
        transcode("dcmcrle", [], variants["uncompressed"], rle + ".part")
        os.rename(rle + ".part", rle)
    variants["rle"] = rle
    if a.only:
        variants = {k: v for k, v in variants.items() if k in a.only.split(",")}

    nvox = 512 * 512 * a.slices
    env_threads = ["--threads", str(a.threads)] if a.threads else []
    print(f"\nmachine: {os.cpu_count()} cores; runs per command: {a.runs} (+1 warm-up); "
          f"spinemets threads: {a.threads or 'all'}")
    print(f"{'variant':13s} {'command':10s} {'median s':>9s} {'min s':>7s} {'max s':>7s} "
          f"{'peak RSS MB':>11s} {'RSS/vox B':>9s}")
    for name, d in variants.items():
        files = sorted(os.path.join(d, f) for f in os.listdir(d))
        out = tempfile.mkdtemp(prefix="smbench-")
        cmds = {
            "spinemets": [exe, "inspect"] + env_threads + [d],
            "dcm2niix": ["dcm2niix", "-z", "n", "-b", "n", "-o", out, "-f", "vol", d],
            "cat": ["sh", "-c", 'cat "$@" > /dev/null', "cat"] + files,
        }
        times = {k: [] for k in cmds}
        rss = {k: [] for k in cmds}
        for i in range(a.runs + 1):
            for k, c in cmds.items():
                for f in os.listdir(out):
                    os.unlink(os.path.join(out, f))
                w, r, rc = run_timed(c)
                if rc != 0:
                    sys.exit(f"{k} failed with exit code {rc} on {d}")
                if i > 0:
                    times[k].append(w)
                    rss[k].append(r)
        shutil.rmtree(out, ignore_errors=True)
        for k in cmds:
            med = statistics.median(times[k])
            print(f"{name:13s} {k:10s} {med:9.3f} {min(times[k]):7.3f} {max(times[k]):7.3f} "
                  f"{max(rss[k]) / 1e6:11.1f} {max(rss[k]) / nvox:9.2f}")
        ratios = [s / n for s, n in zip(times["spinemets"], times["dcm2niix"])]
        print(f"{name:13s} ratio spinemets/dcm2niix: median {statistics.median(ratios):.3f} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f}); "
              f"peak RSS / int16 volume ({2 * nvox / 1e6:.0f} MB): {max(rss['spinemets']) / (2 * nvox):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
