#!/usr/bin/env python3
"""salvo-bench's interval logs (hdr.c) against hdr-histogram-js, HdrHistogram's
JavaScript port, both ways:
  1. hdr_writer writes a log and prints its numbers from the histograms it
     wrote; hlog_check.mjs reads the log with hdr-histogram-js: the same numbers.
  2. hlog_check.mjs writes a log of its own (other layouts, an auto-resizing
     histogram, relative times without BaseTime) and reads it back;
     hdr_writer reads it with hdr.c: the same numbers.
Needs node and `npm ci --prefix tests/bench` (.ci/install-deps does both):
without them this test fails and says so.
  hdr_js.py HDR_WRITER TESTS_BENCH_DIR BUILD_DIR"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

FIX = ("apt-get install nodejs npm (where node is missing), then npm ci --prefix tests/bench; "
       ".ci/install-deps does both")


def fail(msg):
    print(f"hdr_js: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(args):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=sys.stderr, timeout=60)
    if r.returncode != 0:
        fail(f"{' '.join(args)} exited with {r.returncode}")
    return r.stdout.decode()


def diff(a, b, path="", out=None):
    """Where two reports differ: times to a microsecond, counts and values exactly."""
    out = [] if out is None else out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'C' if k in a else 'JS'}")
            else:
                diff(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} intervals in C, {len(b)} in JS")
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", out)
    elif isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or abs(a - b) > 1e-6:
            out.append(f"{path}: C {a!r}, JS {b!r}")
    elif a != b:
        out.append(f"{path}: C {a!r}, JS {b!r}")
    return out


def compare(what, c, js):
    problems = diff(c, js)
    if problems:
        fail(f"{what}: hdr.c and hdr-histogram-js differ:\n  " + "\n  ".join(problems))
    n = len(c["intervals"])
    if n < 5 or not any(i["tag"] for i in c["intervals"]) or not any(i["count"] > 2**32 for i in c["intervals"]):
        fail(f"{what}: the log is not what the test meant to compare (intervals {n})")
    print(f"hdr_js: {what}: {n} intervals and {len(c['totals'])} tags' totals agree")


def main():
    if len(sys.argv) != 4:
        fail("usage: hdr_js.py HDR_WRITER TESTS_BENCH_DIR BUILD_DIR")
    writer, bench, build = sys.argv[1:]
    node = shutil.which("node")
    if node is None:
        fail(f"node was not found: {FIX}")
    with open(os.path.join(bench, "package.json")) as f:
        pinned = json.load(f)["dependencies"]["hdr-histogram-js"]
    installed = os.path.join(bench, "node_modules", "hdr-histogram-js", "package.json")
    if not os.path.exists(installed):
        fail(f"hdr-histogram-js is not installed in {bench}/node_modules: {FIX}")
    with open(installed) as f:
        version = json.load(f)["version"]
    if version != pinned:
        fail(f"hdr-histogram-js {version} is installed, package.json pins {pinned}: {FIX}")
    check = os.path.join(bench, "hlog_check.mjs")
    work = tempfile.mkdtemp(prefix="hdr_js.", dir=build)
    try:
        c_log = os.path.join(work, "c.hlog")
        c = json.loads(run([writer, "write", c_log]))
        js = json.loads(run([node, check, "read", c_log]))
        compare("hdr.c's log read by hdr-histogram-js", c, js)
        js_log = os.path.join(work, "js.hlog")
        run([node, check, "write", js_log])
        js = json.loads(run([node, check, "read", js_log]))
        c = json.loads(run([writer, "read", js_log]))
        compare("hdr-histogram-js's log read by hdr.c", c, js)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
