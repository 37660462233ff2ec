#!/usr/bin/env python3
"""salvo-bench end to end, against salvo-faultd on loopback, as a user runs it: a weighted
request mix (what the server counted per name matches the result, the draw follows the
weights and the seed, the HTML page names every name with the right totals), a step shape
(what each second offered), a closed loop with think time, a run split over 2 shards and
merged (from JSON and from .hlog files) and over 2 threads, a short retry storm (every send
the client counted reached the server, naive retries amplify, salvo's defaults do not), and
bad input refused with a reason. Bounds are generous: this checks counts, not speed.

usage: test_bench.py SALVO_BENCH SALVO_FAULTD
Prints one line per case and a closing 'N passed, N failed'.
"""
import html
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import urllib.request

BENCH, FAULTD = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="salvo-bench-test-")


def bench(args, timeout=120):
    return subprocess.run([BENCH] + args, capture_output=True, text=True, timeout=timeout)


def bench_json(args, timeout=120):
    p = bench(args + ["--json"], timeout)
    try:
        return p, json.loads(p.stdout)
    except ValueError:
        return p, None


def check(name, ok, why, tally):
    tally[0 if ok else 1] += 1
    print("%s %s: %s" % ("ok  " if ok else "FAIL", name, why))


def counters(base, reset=False):
    with urllib.request.urlopen(base + ("/counters/reset" if reset else "/counters"), timeout=10) as r:
        return json.loads(r.read())


def key_count(c, key):
    k = c.get("keys", {}).get(key)
    return k["requests"] if k else 0


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_mix(base, tally):
    mix = write("mix.jsonl", "\n".join([
        "# three kinds of request",
        json.dumps({"url": base + "/keyed/home", "weight": 6, "name": "home"}),
        json.dumps({"url": base + "/keyed/post?ms=2", "method": "POST", "body": "x=1",
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                    "weight": 3, "name": "<post>"}),
        json.dumps({"url": base + "/keyed/missing?status=404", "weight": 1, "name": "missing"}),
    ]) + "\n")
    counters(base, reset=True)
    report = os.path.join(TMP, "mix.html")
    p, r = bench_json(["-i", mix, "-n", "2000", "-c", "16", "--seed", "7", "--http1.1",
                       "--report", report])
    if r is None:
        check("mix", False, "exit %d, no JSON: %s" % (p.returncode, p.stderr[-400:]), tally)
        return
    names = {n["name"]: n for n in r["names"]}
    c = counters(base)
    server = {"home": key_count(c, "home"), "<post>": key_count(c, "post"),
              "missing": key_count(c, "missing")}
    got = {k: names[k]["requests"] if k in names else -1 for k in server}
    ok = r["requests"] == 2000 and got == server and sum(got.values()) == 2000
    check("mix: per-name counts are what the server counted", ok,
          "salvo-bench %s, server %s, total %d" % (got, server, r["requests"]), tally)
    want = {"home": 0.6, "<post>": 0.3, "missing": 0.1}
    far = {k: got[k] for k in want
           if abs(got[k] / 2000 - want[k]) > 5 * math.sqrt(want[k] * (1 - want[k]) / 2000)}
    check("mix: the draw follows the weights", not far,
          "shares %s" % {k: round(got[k] / 2000, 3) for k in got}, tally)
    miss = names.get("missing", {})
    ok = (miss.get("ok") == 0 and miss.get("errors") == {"http_status": miss.get("requests")}
          and names["home"]["ok"] == names["home"]["requests"] and p.returncode == 1
          and r["errors"] == {"http_status": miss.get("requests")}
          and r["ok"] == 2000 - miss.get("requests", 0))
    check("mix: a 404 entry is an http_status error of its name only; exit 1", ok,
          "missing %s, total errors %s, exit %d" % (miss.get("errors"), r["errors"], p.returncode),
          tally)
    ok = all(set(n["latency_ms"]) >= {"p50", "p90", "p99", "p99.9", "p100"} and
             0 < n["latency_ms"]["p50"] <= n["latency_ms"]["p99"] <= n["latency_ms"]["p100"]
             for n in r["names"]) and all(n["attempts"] == n["requests"] for n in r["names"])
    check("mix: each name has its percentiles and attempts", ok,
          "; ".join("%s p50 %.2f p99 %.2f" % (n["name"], n["latency_ms"]["p50"],
                                             n["latency_ms"]["p99"]) for n in r["names"]), tally)
    p2, r2 = bench_json(["-i", mix, "-n", "2000", "-c", "16", "--seed", "7", "--http1.1"])
    p3, r3 = bench_json(["-i", mix, "-n", "2000", "-c", "16", "--seed", "8", "--http1.1"])
    same = r2 is not None and {n["name"]: n["requests"] for n in r2["names"]} == got
    other = r3 is not None and {n["name"]: n["requests"] for n in r3["names"]} != got
    check("mix: the same seed draws the same mix, another seed another", same and other,
          "seed 7 again %s, seed 8 %s" % (
              r2 and {n["name"]: n["requests"] for n in r2["names"]},
              r3 and {n["name"]: n["requests"] for n in r3["names"]}), tally)
    try:
        page = open(report).read()
    except OSError as e:
        check("mix: the HTML page", False, str(e), tally)
        return
    text = html.unescape(re.sub(r"<[^>]*>", " ", page))
    missing = [k for k in got if k not in text]
    ok = (not missing and "&lt;post&gt;" in page and "<post>" not in page.replace("&lt;post&gt;", "")
          and "<script" not in page.lower()
          and all(re.search(r"\b%d\b" % v, text) for v in [2000, r["ok"], miss.get("requests")]))
    check("mix: the page names every name (escaped) and shows the totals", ok,
          "missing names %s; totals 2000/%d/%d" % (missing, r["ok"], miss.get("requests")), tally)


def test_steps(base, tally):
    counters(base, reset=True)
    p, r = bench_json(["--steps", "100:1s,300:1s", "-c", "32", "--http1.1", base + "/keyed/steps"])
    if r is None:
        check("steps", False, "exit %d: %s" % (p.returncode, p.stderr[-400:]), tally)
        return
    tl = {t["t"]: t for t in r["timeline"]}
    offered = [tl[s]["offered"] if s in tl else 0 for s in range(3)]
    served = key_count(counters(base), "steps")
    ok = (r["offered"] == 400 and r["requests"] == 400 and served == 400 and offered == [100, 300, 0]
          and p.returncode == 0 and r["open_loop"] and 0 <= r["late"] <= 400)
    check("--steps 100:1s,300:1s", ok,
          "offered %d by second %s, completed %d, the server counted %d, late %d, exit %d"
          % (r["offered"], offered, r["requests"], served, r["late"], p.returncode), tally)
    ok = (r["service_ms"]["p50"] <= r["latency_ms"]["p50"] + 0.001 and
          "service_histogram" in r and "histogram" in r)
    check("open loop: service time beside latency from the schedule", ok,
          "latency p50 %.3f ms, service p50 %.3f ms" % (r["latency_ms"]["p50"],
                                                       r["service_ms"]["p50"]), tally)
    p, r = bench_json(["--rate", "200", "--spike", "600:1s:500ms", "-D", "2", "--http1.1",
                       base + "/ok"])
    offered = [t["offered"] for t in r["timeline"]] if r else []
    ok = r is not None and r["offered"] == 200 + 300 + 100 and offered[:2] == [200, 400]
    check("--rate 200 --spike 600:1s:500ms -D 2", ok, "offered %s by second, %s in all"
          % (offered, r and r["offered"]), tally)


def test_closed(base, tally):
    p, r = bench_json(["-c", "4", "--think", "200", "-D", "2", "--http1.1", base + "/ok"])
    ok = r is not None and 20 <= r["requests"] <= 44 and not r["open_loop"] and p.returncode == 0
    check("closed loop -c 4 --think 200 -D 2", ok,
          "%s requests (4 users x about 10 each)" % (r and r["requests"]), tally)


def test_shards(base, tally):
    counters(base, reset=True)
    procs, outs = [], []
    for k in (1, 2):
        out = os.path.join(TMP, "shard%d.json" % k)
        hlog = os.path.join(TMP, "shard%d.hlog" % k)
        outs.append((out, hlog))
        f = open(out, "w")
        procs.append((subprocess.Popen([BENCH, "--shard", "%d/2" % k, "-n", "1001", "--rate", "500",
                                        "--http1.1", "--json", "--hlog", hlog, base + "/keyed/shard"],
                                       stdout=f, stderr=subprocess.PIPE, text=True), f))
    for pr, f in procs:
        pr.wait(timeout=60)
        f.close()
    parts = [json.load(open(o)) for o, _ in outs]
    served = key_count(counters(base), "shard")
    ok = [x["requests"] for x in parts] == [501, 500] and served == 1001
    check("--shard 1/2 and 2/2 split -n 1001", ok, "shards sent %s, the server counted %d"
          % ([x["requests"] for x in parts], served), tally)
    p, m = bench_json(["merge", outs[0][0], outs[1][0]])
    ok = (m is not None and m["requests"] == 1001 and m["shards"] == 2 and m["ok"] == 1001 and
          m["latency_ms"]["p100"] == max(x["latency_ms"]["p100"] for x in parts) and
          min(x["latency_ms"]["p50"] for x in parts) <= m["latency_ms"]["p50"]
          <= max(x["latency_ms"]["p50"] for x in parts))
    check("merge A.json B.json", ok, "merged %s requests, p50 %s (shards %s), max %s" % (
        m and m["requests"], m and m["latency_ms"]["p50"], [x["latency_ms"]["p50"] for x in parts],
        m and m["latency_ms"]["p100"]), tally)
    p, h = bench_json(["merge", outs[0][1], outs[1][1]])
    ok = (h is not None and m is not None and h["requests"] == 1001 and
          h["latency_ms"] == m["latency_ms"])
    check("merge A.hlog B.hlog gives the same histogram", ok, "hlog merge %s requests, %s"
          % (h and h["requests"], h and h["latency_ms"]), tally)
    p, t = bench_json(["-t", "2", "-n", "1000", "-c", "8", "--http1.1", base + "/ok"])
    ok = t is not None and t["requests"] == 1000 and t["threads"] == 2 and t["ok"] == 1000
    check("-t 2 -n 1000: two threads' histograms merged", ok,
          "%s requests, %s threads" % (t and t["requests"], t and t["threads"]), tally)


def test_storm(base, tally):
    counters(base, reset=True)
    out = os.path.join(TMP, "storm.jsonl")
    url = base + "/capacity/8/20?q=128&keep=1&name=storm-{policy}"
    p = bench(["--storm", "--steps", "1200:1s,100:2s", "--attempt-timeout", "200", "--http1.1",
               "--storm-json", out, url], timeout=300)
    runs = {}
    try:
        for line in open(out):
            r = json.loads(line)
            runs[r["label"]] = r
    except (OSError, ValueError) as e:
        check("--storm", False, "%s; exit %d: %s" % (e, p.returncode, p.stderr[-400:]), tally)
        return
    pools = counters(base).get("capacity", {})
    seen = {k: pools.get("storm-" + k, {}) for k in runs}
    # Every attempt the client counts reached the server: served, rejected or left.
    sent = {k: runs[k]["sends"] for k in runs}
    got = {k: seen[k].get("served", 0) + seen[k].get("rejected", 0) + seen[k].get("canceled", 0)
           for k in runs}
    ok = set(runs) == {"none", "naive", "default", "adaptive"} and sent == got
    check("--storm: every send the client counted reached the server", ok,
          "client sends %s, server saw %s" % (sent, got), tally)
    att = {k: runs[k]["attempts_per_request"] for k in runs}
    ok = (len(runs) == 4 and att["none"] == 1.0 and att["naive"] > 2.0 and att["default"] < 1.6
          and att["naive"] > 1.5 * att["default"])
    check("--storm: naive retries amplify, salvo's defaults do not", ok,
          "attempts per request %s" % att, tally)
    ok = "recovery" in p.stdout and all("recovery_s" in runs[k] for k in runs)
    check("--storm: recovery reported per policy", ok, p.stdout.strip().replace("\n", " | ")[-500:],
          tally)


def test_what_a_new_user_broke(base, tally):
    """Found by trying salvo-bench as a new user; each stays fixed."""
    counters(base, reset=True)
    p, r = bench_json(["--shard", "2/2", "-n", "1", base + "/keyed/tiny"], timeout=30)
    ok = r is not None and r["requests"] == 0 and p.returncode == 0
    check("--shard 2/2 -n 1: nothing for this shard, and it ends", ok,
          "exit %d, %s requests" % (p.returncode, r and r["requests"]), tally)
    mix = write("badurl.jsonl", json.dumps({"url": base + "/keyed/never", "weight": 99}) + "\n" +
                json.dumps({"url": "http://", "weight": 1, "name": "broken"}) + "\n")
    p = bench(["-i", mix, "-n", "200"], timeout=30)
    sent = key_count(counters(base), "never")
    ok = p.returncode == 2 and "mix entry 2 (broken)" in p.stderr and sent == 0
    check("a mix entry the engine refuses stops the run before anything is sent", ok,
          "exit %d, the server counted %d: %s" % (p.returncode, sent, p.stderr.strip()[:120]), tally)
    mix = write("typo.jsonl", json.dumps({"url": base + "/ok", "wieght": 9}) + "\n")
    p = bench(["-i", mix, "-n", "1"], timeout=30)
    check("a typo in a mix key is refused", p.returncode == 2 and "unknown key" in p.stderr,
          p.stderr.strip()[:120], tally)
    # SIGINT in an open loop: what waits for a slot is not sent, the result is written
    out = os.path.join(TMP, "int.json")
    with open(out, "w") as f:
        pr = subprocess.Popen([BENCH, "--rate", "200", "-D", "20", "-c", "5", "--json",
                               base + "/sleep/200"], stdout=f, stderr=subprocess.PIPE, text=True)
        import time
        time.sleep(1.5)
        t0 = time.monotonic()
        pr.send_signal(2)
        pr.wait(timeout=30)
        took = time.monotonic() - t0
    try:
        r = json.load(open(out))
    except ValueError:
        r = None
    ok = (r is not None and took < 3 and r["unsent"] > 100 and
          r["requests"] + r["unsent"] == r["offered"])
    check("SIGINT in an open loop stops sending, drops what waits, writes the result", ok,
          "ended %.1f s after SIGINT; %s" % (took, r and {k: r[k] for k in ("offered", "requests", "unsent")}),
          tally)
    p = subprocess.run([BENCH, "-n", "5", "--json", base + "/ok"], stdout=open("/dev/full", "w"),
                       stderr=subprocess.PIPE, text=True, timeout=30)
    check("a result that cannot be written is exit 2", p.returncode == 2 and "standard output" in p.stderr,
          "exit %d: %s" % (p.returncode, p.stderr.strip()[:100]), tally)
    p = bench(["-n", "5", "--json", "http://u:pw@127.0.0.1:%s/ok?token=S3CRET" % base.rsplit(":", 1)[1]])
    ok = "S3CRET" not in p.stdout + p.stderr and "pw@" not in p.stdout + p.stderr and p.returncode == 0
    check("no userinfo or query in the output", ok, "exit %d" % p.returncode, tally)


def test_bad_input(base, tally):
    bad = write("bad.jsonl", json.dumps({"url": base + "/ok"}) + "\n" +
                json.dumps({"url": base + "/ok", "weight": -1}) + "\n")
    cases = [
        (["-i", bad], "line 2"),
        (["--steps", "100:1s,abc", base + "/ok"], "--steps"),
        (["--shard", "3/2", base + "/ok"], "--shard"),
        (["--rate", "10", "--think", "5", base + "/ok"], "--think"),
        (["merge", bad], bad),
        (["merge", write("junk.hlog", "0.0,1.0,2.0,HISTFAAAAgarbage\n")], "junk.hlog"),
        (["-i", bad, "-X", "POST"], "-X"),
    ]
    for args, want in cases:
        p = bench(args, timeout=30)
        ok = p.returncode == 2 and want in p.stderr and not p.stdout
        check("refused: %s" % " ".join(a.replace(TMP + "/", "") for a in args), ok,
              "exit %d: %s" % (p.returncode, p.stderr.strip().replace(TMP + "/", "")[:160]), tally)


def main():
    srv = subprocess.Popen([FAULTD, "--lifetime", "600", "--no-by-port"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    tally = [0, 0]
    try:
        base = "http://127.0.0.1:%d" % json.loads(srv.stdout.readline())["http"]
        test_mix(base, tally)
        test_steps(base, tally)
        test_closed(base, tally)
        test_shards(base, tally)
        test_bad_input(base, tally)
        test_what_a_new_user_broke(base, tally)
        test_storm(base, tally)
    finally:
        srv.terminate()
        srv.wait(timeout=10)
    print("%d passed, %d failed" % (tally[0], tally[1]))
    return 1 if tally[1] else 0


if __name__ == "__main__":
    sys.exit(main())
