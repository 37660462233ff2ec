#!/usr/bin/env python3
"""Servers that end kept-alive connections (salvo-faultd's /close-after-answer and
/reset-after-answer, with and without "Connection: close"): 1,000 GETs and 1,000 POSTs
through each with --max-attempts 1, at one and at eight in flight, and over HTTPS to a server
that speaks HTTP/1.1 only. None may fail, and the
server must have read each request exactly once: a request sent on a connection the
server had already ended never reached it, and is sent again on a fresh one.

usage: test_conn.py SALVO_FETCH SALVO_FAULTD
Prints one line per case and a closing 'N passed, N failed'.
"""
import json
import subprocess
import sys
import urllib.request

FETCH, FAULTD = sys.argv[1], sys.argv[2]
N = 1000


def counters(base):
    with urllib.request.urlopen(base + "/counters", timeout=10) as r:
        return json.load(r)


def run_case(base, target, path, method, conc, extra, tally):
    urllib.request.urlopen(base + "/counters/reset", timeout=10).read()
    args = [FETCH, "--no-progress", "-c", conc, "--max-attempts", "1", "-i", "-"] + extra
    if method == "POST":
        args += ["-X", "POST", "-d", "charge"]
    p = subprocess.run(args, input=(target + path + "\n") * N, capture_output=True, text=True,
                       timeout=120)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    bad = [l for l in lines if l["outcome"] != "ok"]
    seen = counters(base)["paths"].get(path, 0)
    name = "%s %s%s -c %s" % (method, target.split(":")[0] + " ", path, conc)
    if len(lines) == N and not bad and seen == N and p.returncode == 0:
        tally[0] += 1
        print("ok   %s: %d of %d ok, the server read %d" % (name, N, N, seen))
    else:
        tally[1] += 1
        print("FAIL %s: %d results, %d not ok, the server read %d (want %d)%s"
              % (name, len(lines), len(bad), seen, N,
                 "; first: " + json.dumps(bad[0]) if bad else ""))


def main():
    procs = [subprocess.Popen([FAULTD, "--lifetime", "300"] + extra, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
             for extra in ([], ["--no-h2"])]
    tally = [0, 0]
    try:
        ports = json.loads(procs[0].stdout.readline())
        base = "http://127.0.0.1:%d" % ports["http"]
        for path in ["/close-after-answer", "/close-after-answer?announce=1",
                     "/reset-after-answer", "/reset-after-answer?announce=1"]:
            for method in ["GET", "POST"]:
                for conc in ["1", "8"]:
                    run_case(base, base, path, method, conc, [], tally)
        # HTTPS to a server whose ALPN offers http/1.1 only: the connections are
        # HTTP/1.1 although salvo offered h2
        h1 = json.loads(procs[1].stdout.readline())
        for method in ["GET", "POST"]:
            run_case("http://127.0.0.1:%d" % h1["http"], "https://127.0.0.1:%d" % h1["tls"],
                     "/close-after-answer", method, "1", ["--cacert", h1["cert"]], tally)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    print("%d passed, %d failed" % (tally[0], tally[1]))
    return 1 if tally[1] else 0


if __name__ == "__main__":
    sys.exit(main())
