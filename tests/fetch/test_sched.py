#!/usr/bin/env python3
"""salvo-fetch over hosts of uneven speed, as a new user tries it: two local servers, one
answering in 2 s (/sleep/2000) and one at once (/ok), their URLs interleaved in one input.
With -c 16 (and again with --max-host-connections 4) no fast request may wait behind the
slow host: each ends in under 1 s. --max-per-host holds a host to N at once (12 requests of
200 ms at 3 at a time take at least 4 rounds), and --adaptive-concurrency shows the host's
limit in the summary. Bounds are generous: this checks who waits for whom, not speed.

usage: test_sched.py SALVO_FETCH SALVO_FAULTD
Prints one line per case and a closing 'N passed, N failed'.
"""
import json
import subprocess
import sys

FETCH, FAULTD = sys.argv[1], sys.argv[2]


def fetch(lines, extra):
    args = [FETCH, "--no-progress", "--max-attempts", "1", "-i", "-"] + extra
    p = subprocess.run(args, input="".join(l + "\n" for l in lines), capture_output=True,
                       text=True, timeout=120)
    return p, [json.loads(l) for l in p.stdout.splitlines()]


def check(name, ok, why, tally):
    tally[0 if ok else 1] += 1
    print("%s %s: %s" % ("ok  " if ok else "FAIL", name, why))


def uneven(slow, fast, nslow, extra, tally):
    lines = []
    for i in range(64):
        if i < nslow:
            lines.append(slow + "/sleep/2000")
        lines.append(fast + "/ok")
    p, res = fetch(lines, ["-c", "16"] + extra)
    fast_ms = [r["elapsed_ms"] for r in res if r["url"].endswith("/ok")]
    bad = [r for r in res if r["outcome"] != "ok"]
    name = "-c 16 %s(%d slow, 64 fast)" % (" ".join(extra) + " " if extra else "", nslow)
    ok = len(res) == 64 + nslow and not bad and p.returncode == 0 and max(fast_ms) < 1000
    check(name, ok, "%d results, %d not ok, fast requests waited at most %.0f ms"
          % (len(res), len(bad), max(fast_ms) if fast_ms else -1), tally)


def main():
    procs = [subprocess.Popen([FAULTD, "--lifetime", "300", "--no-by-port"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(2)]
    tally = [0, 0]
    try:
        slow, fast = ["http://127.0.0.1:%d" % json.loads(pr.stdout.readline())["http"]
                      for pr in procs]
        uneven(slow, fast, 64, [], tally)
        uneven(slow, fast, 24, ["--max-host-connections", "4"], tally)

        p, res = fetch([slow + "/sleep/200"] * 12, ["-c", "16", "--max-per-host", "3"])
        last = max(r["elapsed_ms"] for r in res) if res else 0
        ok = len(res) == 12 and all(r["status"] == 200 for r in res) and last >= 750
        check("--max-per-host 3", ok, "12 x 200 ms ended after %.0f ms (want >= 750: 4 rounds)"
              % last, tally)
        ok = "in flight limit 3" in p.stderr
        check("--max-per-host 3 summary", ok, "the host's line says its limit" if ok
              else "no 'in flight limit 3' in: " + p.stderr[-600:], tally)

        p, res = fetch([fast + "/ok"] * 200, ["-c", "32", "--adaptive-concurrency"])
        ok = (len(res) == 200 and all(r["status"] == 200 for r in res)
              and "(adaptive, " in p.stderr)
        check("--adaptive-concurrency", ok, "200 ok, the summary shows the adaptive limit" if ok
              else "%d results; stderr: %s" % (len(res), p.stderr[-600:]), tally)

        p, _ = fetch([fast + "/ok"], ["--max-per-host", "x"])
        check("--max-per-host x", p.returncode == 2 and "--max-per-host" in p.stderr,
              "exit %d: %s" % (p.returncode, p.stderr.strip()[:120]), tally)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    print("%d passed, %d failed" % (tally[0], tally[1]))
    return 1 if tally[1] else 0


if __name__ == "__main__":
    sys.exit(main())
