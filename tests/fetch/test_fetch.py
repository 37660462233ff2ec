#!/usr/bin/env python3
"""End-to-end tests of the salvo-fetch binary against a salvo-faultd it starts.

usage: test_fetch.py SALVO_FETCH SALVO_FAULTD
Prints one line per test and a closing 'N passed, N failed'.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

FETCH, FAULTD = sys.argv[1], sys.argv[2]
FIELDS = ["id", "url", "method", "outcome", "status", "error", "attempts", "elapsed_ms",
          "bytes", "http_version", "timings", "history"]


class Server:
    def __enter__(self):
        self.proc = subprocess.Popen([FAULTD, "--lifetime", "300"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.ports = json.loads(self.proc.stdout.readline())
        self.base = "http://127.0.0.1:%d" % self.ports["http"]
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def fetch_body(base):
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([FETCH, "--no-progress", "-o", d, "-i", "-"], input='{"id":"c","url":"%s/counters"}\n' % base,
                       capture_output=True, text=True, check=False)
        with open(os.path.join(d, "c")) as f:
            return f.read()


def run(args, stdin=None, timeout=60):
    p = subprocess.run([FETCH, "--no-progress"] + args, input=stdin, capture_output=True,
                       text=True, timeout=timeout)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    return p.returncode, lines, p.stderr


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def test_every_input_line_appears_once_with_the_fields(srv):
    n = 300
    lines = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            lines.append(srv.base + "/ok")
        elif kind == 1:
            lines.append(json.dumps({"id": "j%d" % i, "url": srv.base + "/fail-until/2/k%d" % i}))
        elif kind == 2:
            lines.append(json.dumps({"id": i, "url": srv.base + "/echo", "method": "PUT",
                                     "headers": {"X-A": "1"}, "body": "hello"}))
        elif kind == 3:
            lines.append(srv.base + "/status/404")
        else:
            lines.append('{"id": "bad%d", "url": ' % i)  # malformed JSON
    rc, out, err = run(["-i", "-", "--backoff-base", "10"], stdin="\n".join(lines) + "\n")
    check(rc == 1, "exit %d, want 1 (some are not ok)" % rc)
    check(len(out) == n, "%d result lines for %d input lines" % (len(out), n))
    ids = [str(o["id"]) for o in out]
    check(len(set(ids)) == n, "ids are not unique")
    by_id = {str(o["id"]): o for o in out}
    for i in range(n):
        kind = i % 5
        key = {0: str(i + 1), 1: "j%d" % i, 2: str(i), 3: str(i + 1), 4: str(i + 1)}[kind]
        o = by_id.get(key)
        check(o is not None, "line %d (id %s) missing" % (i + 1, key))
        if kind == 4:
            check(o["error"] == "invalid_input", "malformed line: %s" % o)
            continue
        for f in FIELDS:
            check(f in o, "field %s missing in %s" % (f, o))
        for t in ["dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms"]:
            check(t in o["timings"], "timing %s missing" % t)
        check(len(o["history"]) == o["attempts"], "history length != attempts: %s" % o)
        for h in o["history"]:
            for f in ["attempt", "reached_server", "decision", "reason", "wait_ms"]:
                check(f in h, "history field %s missing: %s" % (f, h))
            check(("status" in h) != ("error" in h), "history has status or error: %s" % h)
        if kind == 0:
            check(o["outcome"] == "ok" and o["status"] == 200 and o["bytes"] == 3, str(o))
        elif kind == 1:
            check(o["outcome"] == "ok" and o["attempts"] == 2, "fail-until: %s" % o)
            check(o["history"][0]["decision"] == "retry", str(o))
        elif kind == 2:
            check(o["method"] == "PUT" and o["status"] == 200, str(o))
        elif kind == 3:
            check(o["outcome"] == "http_error" and o["status"] == 404 and o["error"] is None, str(o))
    check("line 5" in err and "column" in err, "stderr names line and column: %s" % err[:300])


def test_exit_zero_when_all_ok_and_urls_on_the_command_line(srv):
    rc, out, _ = run([srv.base + "/ok", srv.base + "/bytes/100"])
    check(rc == 0, "exit %d" % rc)
    check(sorted(o["id"] for o in out) == ["1", "2"], str(out))


def test_usage_errors_exit_2_and_name_the_option(srv):
    cases = [
        (["--concurrency", "x", srv.base], "--concurrency"),
        (["--jitter", "wobbly", srv.base], "--jitter"),
        (["--shard", "3/2", srv.base], "--shard"),
        (["--no-such-option"], ""),
        (["-i", "/nonexistent/input.txt"], "/nonexistent/input.txt"),
        (["--data-file", "/nonexistent/body", srv.base], "--data-file"),
        (["--cacert", "/nonexistent/ca.pem", srv.base], "--cacert"),
        (["--rate", "-3", srv.base], "--rate"),
        (["--hedge", "soon", srv.base], "--hedge"),
        (["--retry-budget", "x", srv.base], "--retry-budget"),
        ([], "nothing to fetch"),
    ]
    for args, word in cases:
        p = subprocess.run([FETCH] + args, capture_output=True, text=True, timeout=20)
        check(p.returncode == 2, "%s: exit %d, want 2" % (args, p.returncode))
        check(word in p.stderr, "%s: stderr does not name %r: %s" % (args, word, p.stderr))
        check(p.stdout == "", "%s: printed results" % args)


def test_shard_covers_the_input_exactly_once(srv):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for i in range(97):
            f.write(json.dumps({"id": "s%d" % i, "url": srv.base + "/ok"}) + "\n")
        path = f.name
    try:
        for n in [1, 2, 3, 7]:
            seen = []
            for k in range(1, n + 1):
                rc, out, _ = run(["-i", path, "--shard", "%d/%d" % (k, n)])
                check(rc == 0, "shard %d/%d exit %d" % (k, n, rc))
                seen += [o["id"] for o in out]
            check(sorted(seen) == sorted("s%d" % i for i in range(97)),
                  "N=%d: %d results, %d distinct" % (n, len(seen), len(set(seen))))
    finally:
        os.unlink(path)


def test_sigint_cancels_in_flight_and_prints_everything(srv):
    lines = "".join(json.dumps({"id": "h%d" % i, "url": srv.base + "/hang"}) + "\n"
                    for i in range(50))
    lines += "".join(json.dumps({"id": "q%d" % i, "url": srv.base + "/ok"}) + "\n"
                     for i in range(20))
    p = subprocess.Popen([FETCH, "--no-progress", "-c", "50", "-i", "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write(lines)
    p.stdin.close()
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out = p.stdout.read()
    err = p.stderr.read()
    p.wait(timeout=20)
    check(p.returncode == 130, "exit %d, want 130" % p.returncode)
    results = [json.loads(l) for l in out.splitlines()]
    ids = [o["id"] for o in results]
    check(len(ids) == len(set(ids)), "a request was reported twice")
    hung = [o for o in results if o["id"].startswith("h")]
    check(len(hung) == 50, "%d of 50 in-flight requests reported" % len(hung))
    check(all(o["outcome"] == "canceled" for o in hung), "in-flight ones are canceled")
    check("canceled" in err, "summary printed: %s" % err[-300:])


def test_output_dir_saves_bodies_by_id(srv):
    with tempfile.TemporaryDirectory() as d:
        rc, out, _ = run(["-o", d, "-i", "-"],
                         stdin='{"id":"a/../b","url":"%s/bytes/5"}\n{"id":"c","url":"%s/ok"}\n'
                         % (srv.base, srv.base))
        check(rc == 0, "exit %d" % rc)
        check(sorted(os.listdir(d)) == ["a_.._b", "c"], "files: %s" % os.listdir(d))
        check(open(os.path.join(d, "c")).read() == "ok\n", "body saved")


def test_posts_are_not_retried_unsafely_and_keys_make_them_safe(srv):
    rc, out, _ = run(["-X", "POST", "-d", "x", srv.base + "/fail-until/2/p1?fault=reset"])
    check(out[0]["error"] == "connection_reset" and out[0]["attempts"] == 1, str(out[0]))
    check("not idempotent" in out[0]["history"][0]["reason"], str(out[0]))
    rc, out, _ = run(["-X", "POST", "-d", "x", "--idempotency-key", "auto", "--backoff-base", "10",
                      srv.base + "/fail-until/2/p2?fault=reset"])
    check(out[0]["outcome"] == "ok" and out[0]["attempts"] == 2, str(out[0]))
    counters = json.loads(fetch_body(srv.base))
    check(counters["keys"]["p2"]["requests"] == 2, counters["keys"])
    check(len(counters["keys"]["p2"]["idempotency_keys"]) == 1, "one key on both attempts")


def test_retry_after_too_long_is_reported(srv):
    rc, out, _ = run([srv.base + "/status/503?retry-after=3600"])
    o = out[0]
    check(o["error"] == "retry_after_too_long" and o["retry_after_ms"] == 3600000, str(o))
    check(o["outcome"] == "failed" and o["status"] == 503, str(o))


def test_rate_paces_requests_per_host(srv):
    t = time.time()
    rc, out, _ = run(["--rate", "20"] + [srv.base + "/ok"] * 21)
    took = time.time() - t
    check(rc == 0 and len(out) == 21, "rc %d, %d results" % (rc, len(out)))
    check(took >= 0.9, "21 requests at 20/s took %.2f s" % took)


def test_breaker_fails_a_dead_host_fast_and_the_summary_shows_each_host(srv):
    dead = "http://127.0.0.1:%d/ok" % srv.ports["refused"]
    rc, out, err = run(["--breaker", "-c", "4"] + [dead] * 60 + [srv.base + "/ok"] * 20)
    check(rc == 1 and len(out) == 80, "rc %d, %d results" % (rc, len(out)))
    fast = [o for o in out if o["error"] == "circuit_open"]
    check(len(fast) > 30, "%d of 60 dead-host requests failed fast" % len(fast))
    check(all(o["stop_reason"] == "circuit_open" for o in fast), "their stop reason says why")
    check(sum(o["outcome"] == "ok" for o in out) == 20, "the live host's requests all succeeded")
    sent = sum(o["attempts"] for o in out if o["url"] == dead)
    check(sent < 40, "%d attempts went to the dead host for 60 requests" % sent)
    check("hosts:" in err and "http://127.0.0.1:%d" % srv.ports["refused"] in err, err[-800:])
    check("circuit open (failed fast %d)" % len(fast) in err, err[-800:])


def test_max_hosts_forgets_idle_hosts_and_every_request_still_completes(srv):
    # Four hosts: two names for each of two ports. Each new host comes once the
    # one before last has no request left in the engine, so it can be forgotten.
    a = "http://127.0.0.1:%d/ok" % srv.ports["http"]
    b = "http://localhost:%d/ok" % srv.ports["http"]
    c = "https://127.0.0.1:%d/ok" % srv.ports["tls"]
    d = "https://localhost:%d/ok" % srv.ports["tls"]
    urls = [a] + [b] * 6 + [c] * 6 + [d]
    rc, out, err = run(["--cacert", srv.ports["cert"], "--max-hosts", "1", "-c", "1"] + urls)
    check(rc == 0 and len(out) == 14, "rc %d, %d results" % (rc, len(out)))
    check(all(o["outcome"] == "ok" for o in out), "all ok")
    check("2 idle hosts were forgotten" in err, err[-600:])
    check("http://127.0.0.1:%d\n" % srv.ports["http"] not in err, "the first host is gone: " + err[-600:])
    rc, out, err = run(["--max-hosts", "many", a])
    check(rc == 2 and "--max-hosts" in err and out == [], "a bad --max-hosts is a usage error: %s" % err)


def test_hedge_answers_a_stalled_request_from_the_second_attempt(srv):
    # /slow-some/50/3000/2: with seed 2 the 1st request to the path stalls 3 s, the 2nd does not.
    url = srv.base + "/slow-some/50/3000/2"
    rc, out, err = run(["--hedge", "100", url])
    o = out[0]
    check(rc == 0 and o["outcome"] == "ok", str(o))
    check(o["elapsed_ms"] < 2000, "answered by the hedge in %.0f ms" % o["elapsed_ms"])
    check(o["attempts"] == 2 and "hedges 1" in err, "%s / %s" % (o["attempts"], err[-400:]))


def test_secrets_never_reach_the_output(srv):
    port = srv.ports["http"]
    url = "http://user:pw-s3cret@127.0.0.1:%d/ok" % port
    lines = json.dumps({"id": "a", "url": url, "headers": {"Cookie": "sid=s3cret-cookie"}}) + "\n"
    lines += json.dumps({"id": "b", "url": "http://u:pw-s3cret@[::zz]/", "headers": {}}) + "\n"
    rc, out, err = run(["-H", "Authorization: Bearer s3cret-token", "-H",
                        "Proxy-Authorization: Basic s3cret-proxy", "-i", "-"], stdin=lines)
    text = json.dumps(out) + err
    check(len(out) == 2, "%d results" % len(out))
    for secret in ["s3cret-token", "s3cret-cookie", "s3cret-proxy", "pw-s3cret"]:
        check(secret not in text, "%s leaked: %s" % (secret, text[:600]))
    a = [o for o in out if o["id"] == "a"][0]
    check(a["url"] == "http://***@127.0.0.1:%d/ok" % port and a["outcome"] == "ok", str(a))
    p = subprocess.run([FETCH, "-H", "Bearer s3cret-token", srv.base], capture_output=True, text=True)
    check(p.returncode == 2 and "s3cret" not in p.stderr and "-H" in p.stderr, p.stderr)


def test_redirects_only_with_location_and_reported(srv):
    url = srv.base + "/redirect-chain/2"
    rc, out, _ = run([url])
    check(out[0]["status"] == 302 and "redirects" not in out[0], "off by default: %s" % out[0])
    rc, out, _ = run(["-L", "http://u:pw-s3cret@127.0.0.1:%d/redirect-chain/2" % srv.ports["http"]])
    o = out[0]
    check(rc == 0 and o["status"] == 200 and o["redirects"] == 2, str(o))
    check(o["final_url"].endswith("/redirect-chain/0") and "s3cret" not in json.dumps(o), str(o))
    rc, out, _ = run(["-L", "--max-redirects", "1", url])
    check(rc == 1 and out[0]["error"] == "redirect_refused", str(out[0]))


def test_demo_runs_and_reports_everything(srv):
    p = subprocess.run([FETCH, "--no-progress", "--demo"], capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "demo exit %d: %s" % (p.returncode, p.stderr[-300:]))
    out = [json.loads(l) for l in p.stdout.splitlines()]
    check(len(out) > 3000 and len(set(o["id"] for o in out)) == len(out), "%d results" % len(out))
    check(any(o["outcome"] == "ok" and o["attempts"] > 1 for o in out), "retries rescued some")
    check("retries:" in p.stderr, "summary printed")


def test_tls_options(srv):
    tls = "https://127.0.0.1:%d" % srv.ports["tls"]
    rc, out, err = run(["--cacert", srv.ports["cert"], "--http2", tls + "/ok"])
    check(rc == 0 and out[0]["http_version"] == "2", "trusted with --cacert: %s" % out)
    rc, out, err = run([tls + "/ok"])
    check(rc == 1 and out[0]["error"] == "tls_verification", "untrusted by default: %s" % out)
    rc, out, err = run(["--insecure", tls + "/ok"])
    check(rc == 0 and out[0]["outcome"] == "ok", "--insecure connects: %s" % out)
    check("WARNING" in err and "--insecure" in err, "--insecure warns: %s" % err[:200])
    # a cap of one connection: all 8 go over one, in turn, and all get their answer
    before = json.loads(fetch_body(srv.base))["connections"]
    rc, out, err = run(["--max-host-connections", "1", "-c", "8", "--http1.1"] + [srv.base + "/sleep/50"] * 8)
    conns = json.loads(fetch_body(srv.base))["connections"] - before - 1  # - the /counters fetch
    check(rc == 0 and len(out) == 8 and all(o["status"] == 200 for o in out),
          "one connection still serves all: rc %d, %s" % (rc, out))
    check(conns == 1, "8 requests with --max-host-connections 1 opened %d connections" % conns)


def test_memory_stays_flat_with_input_size(srv):
    # Peak RSS of the child from the kernel (getrusage in a fresh python, so
    # nothing else is counted), not from /usr/bin/time, which may be missing.
    # Under ASan the quarantine (256 MB) would hold freed memory back: it is
    # turned off for this child, so the measure means the same in both builds.
    env = dict(os.environ)
    if "ASAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] += ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
    probe = ("import resource, subprocess, sys\n"
             "p = subprocess.run(sys.argv[1:], stdin=sys.stdin, stdout=sys.stdout)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
             "sys.exit(p.returncode)\n")

    def peak_rss_kb(n):
        data = (srv.base + "/ok\n") * n
        p = subprocess.run([sys.executable, "-c", probe, FETCH, "--no-progress", "-c", "64", "-i", "-"],
                           input=data, capture_output=True, text=True, timeout=300, env=env)
        check(p.returncode == 0, "exit %d: %s" % (p.returncode, p.stderr[-500:]))
        check(len(p.stdout.splitlines()) == n, "all %d printed" % n)
        return int(p.stderr.strip().splitlines()[-1])
    small, big = peak_rss_kb(2000), peak_rss_kb(40000)
    print("  peak RSS: %d KiB for 2,000 lines, %d KiB for 40,000" % (small, big))
    check(big < small + 8 * 1024, "RSS grew with input: %d -> %d KiB" % (small, big))


def read_line_within(stream, seconds):
    """One line from a pipe, or None if none came within |seconds|."""
    import select
    r, _, _ = select.select([stream], [], [], seconds)
    return stream.readline() if r else None


def test_a_slow_producer_does_not_stall_requests_already_read(srv):
    # Line 1, then 3 s of silence, then line 2: line 1's result must come during the silence.
    p = subprocess.Popen([FETCH, "--no-progress", "-i", "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    t = time.time()
    p.stdin.write(json.dumps({"id": "first", "url": srv.base + "/ok"}) + "\n")
    p.stdin.flush()
    first = read_line_within(p.stdout, 2.0)
    took = time.time() - t
    time.sleep(max(0.0, 3.0 - (time.time() - t)))
    p.stdin.write(json.dumps({"id": "second", "url": srv.base + "/ok"}) + "\n")
    p.stdin.close()
    rest = p.stdout.read()
    p.wait(timeout=20)
    check(first is not None, "no result within 2 s of the first line, while the producer paused")
    check(json.loads(first)["id"] == "first" and took < 2.0, "first result after %.2f s" % took)
    check(p.returncode == 0 and [json.loads(l)["id"] for l in rest.splitlines()] == ["second"],
          "rc %d, rest %r" % (p.returncode, rest))
    # SIGINT in the pause: out at once with 130, the first result printed.
    p = subprocess.Popen([FETCH, "--no-progress", "-i", "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    p.stdin.write(json.dumps({"id": "only", "url": srv.base + "/ok"}) + "\n")
    p.stdin.flush()
    first = read_line_within(p.stdout, 2.0)
    t = time.time()
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=2)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    waited = time.time() - t
    p.stdin.close()
    check(first is not None and json.loads(first)["id"] == "only", "first result: %r" % first)
    check(p.returncode == 130 and waited < 1.5, "rc %s after %.2f s" % (p.returncode, waited))


def test_unreadable_input_exits_2(srv):
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([FETCH, "--no-progress", "-i", d], capture_output=True, text=True, timeout=20)
        check(p.returncode == 2 and "directory" in p.stderr.lower() and d in p.stderr,
              "-i DIR: rc %d, %s" % (p.returncode, p.stderr))
        check(p.stdout == "", "no results for an unreadable input")
        fd = os.open(d, os.O_RDONLY)
        try:
            p = subprocess.run([FETCH, "--no-progress", "-i", "-"], stdin=fd, capture_output=True,
                               text=True, timeout=20)
        finally:
            os.close(fd)
        check(p.returncode == 2 and "directory" in p.stderr.lower(), "stdin a directory: rc %d, %s"
              % (p.returncode, p.stderr))
    p = subprocess.run([FETCH, "--no-progress", "-i", "/nonexistent/urls.txt"], capture_output=True,
                       text=True, timeout=20)
    check(p.returncode == 2 and "/nonexistent/urls.txt" in p.stderr, p.stderr)


def test_long_ids_are_kept_whole_or_refused(srv):
    base = "x" * 250
    ids = [base + "-one", base + "-two", "\u00e9" * 200, "\u20ac" * 1365 + "ab"]  # 400 and 4097 bytes
    lines = [json.dumps({"id": i, "url": srv.base + "/ok"}) for i in ids[:3]]
    lines.append(json.dumps({"id": "y" * 4096, "url": srv.base + "/ok"}))
    lines.append(json.dumps({"id": ids[3], "url": srv.base + "/ok"}))
    with tempfile.TemporaryDirectory() as d:
        rc, out, err = run(["-o", d, "-i", "-"], stdin="\n".join(lines) + "\n")
        check(len(out) == 5 and all("id" in o for o in out), "%d results" % len(out))
        by_id = {o["id"]: o for o in out}
        for i in ids[:3] + ["y" * 4096]:
            check(i in by_id and by_id[i]["outcome"] == "ok", "id of %d bytes kept whole" % len(i.encode()))
        refused = by_id.get("5")
        check(refused is not None and refused["error"] == "invalid_input" and "4096" in refused["detail"],
              "an id over 4096 bytes is refused under its line number: %s" % list(by_id)[-1][:40])
        files = os.listdir(d)
        check(len(files) == 4 and all(len(f) <= 200 for f in files), "files: %s" % files)
        check(sorted(by_id[i]["file"] for i in ids[:3] + ["y" * 4096]) == sorted(files), "file keys")


def test_stderr_escapes_control_characters(srv):
    lines = ["not a url \x1b[2J\x1b]0;owned\x07 \r\x7f\x01 \u009b",
             json.dumps({"url": srv.base + "/ok", "headers": {"X-\x1b[31m": "v"}}),
             json.dumps({"url": "ftp://127.0.0.1/\x1b[1m\r"})]
    rc, out, err = run(["-i", "-"], stdin="\n".join(lines) + "\n")
    check(len(out) == 3 and all(o["error"] == "invalid_input" for o in out), str(out))
    for c in ["\x1b", "\r", "\x7f", "\x01", "\x07", "\u009b"]:
        check(c not in err, "raw %r on stderr: %r" % (c, err[:400]))
    check("\\x1b[1m" in err and "\\r" in err, "escaped: %r" % err[:400])
    check("owned" not in err, "a line that is neither URL nor JSON is not shown: %r" % err[:400])


def test_secrets_in_odd_urls_and_malformed_lines_never_reach_the_output(srv):
    port = srv.ports["http"]
    lines = [
        "http://user:pw#s3cret-hash@127.0.0.1:%d/ok" % port,
        "http://user:pw/s3cret-slash@127.0.0.1:%d/ok" % port,
        "http://user:pw?s3cret-query@127.0.0.1:%d/ok" % port,
        json.dumps({"id": "tok", "url": "http://s3cret-token@127.0.0.1:%d/ok" % port}),
        '{"id": "m", "url": "%s/ok", "headers": {"Authorization": "Bearer s3cret-bearer' % srv.base,
        '{"id": "m2", "headers": {"Authorization": "Bearer s3cret-bearer2"}, "url": 7,}',
        json.dumps({"id": "r", "url": "http://u:s3cret-redirect@127.0.0.1:%d/redirect-chain/1" % port}),
    ]
    rc, out, err = run(["-L", "-i", "-"], stdin="\n".join(lines) + "\n")
    text = json.dumps(out) + err
    check(len(out) == len(lines), "%d results" % len(out))
    for secret in ["s3cret-hash", "s3cret-slash", "s3cret-query", "s3cret-token", "s3cret-bearer",
                   "s3cret-redirect", "Bearer"]:
        check(secret not in text, "%s leaked: %s" % (secret, text[:1500]))
    tok = [o for o in out if o["id"] == "tok"][0]
    check(tok["outcome"] == "ok" and tok["url"] == "http://***@127.0.0.1:%d/ok" % port, str(tok))
    check("line 5" in err and "column" in err, "a malformed line is named by line and column: %s" % err)


def test_output_dir_saves_only_whole_ok_bodies_and_never_overwrites(srv):
    with tempfile.TemporaryDirectory() as d:
        lines = [{"id": "trunc", "url": srv.base + "/truncate"},
                 {"id": "big", "url": srv.base + "/bytes/5000"},
                 {"id": "missing", "url": srv.base + "/status/404"},
                 {"id": "dup", "url": srv.base + "/bytes/7"},
                 {"id": "dup", "url": srv.base + "/bytes/9"},
                 {"id": "a/b", "url": srv.base + "/bytes/3"},
                 {"id": "a_b", "url": srv.base + "/bytes/4"},
                 {"id": "ok", "url": srv.base + "/bytes/11"}]
        rc, out, err = run(["-o", d, "-c", "1", "--max-attempts", "1", "--max-body-size", "1000", "-i", "-"],
                           stdin="".join(json.dumps(l) + "\n" for l in lines))
        check(rc == 1 and len(out) == len(lines), "rc %d, %d results" % (rc, len(out)))
        errors = [(o["id"], o["error"]) for o in out]
        check(("trunc", "truncated_body") in errors and ("big", "body_too_large") in errors, str(errors))
        check(("dup", "duplicate_id") in errors and ("a_b", "duplicate_id") in errors, str(errors))
        check(sorted(os.listdir(d)) == ["a_b", "dup", "ok"], "files: %s" % os.listdir(d))
        check(os.path.getsize(os.path.join(d, "dup")) == 7, "the first 'dup' is kept")
        check(os.path.getsize(os.path.join(d, "a_b")) == 3, "'a/b' kept its file")
        saved = {o["id"]: o.get("file") for o in out if o["outcome"] == "ok"}
        check(saved == {"dup": "dup", "a/b": "a_b", "ok": "ok"}, str(saved))


def test_bodies_are_streamed_with_flat_memory_and_capped_when_asked(srv):
    rc, out, err = run(["--max-body-size", "1000", srv.base + "/bytes/1001", srv.base + "/bytes/1000"])
    check(sorted((o["error"] or "") for o in out) == ["", "body_too_large"], str(out))
    rc, out, err = run(["--max-buffered-bytes", "4M", srv.base + "/ok"])
    check(rc == 0 and "no effect" in err, "rc %d: %s" % (rc, err[:300]))
    rc, out, err = run(["--max-buffered-bytes", "4X", srv.base + "/ok"])
    check(rc == 2 and "--max-buffered-bytes" in err, "rc %d: %s" % (rc, err[:300]))
    if not os.path.exists("/usr/bin/time") or "ASAN_OPTIONS" in os.environ:
        return
    # 24 bodies of 40 MB at once, no cap: streamed through, never held.
    p = subprocess.run(["/usr/bin/time", "-f", "%M", FETCH, "--no-progress", "-c", "24", "--max-attempts", "1"] +
                       [srv.base + "/bytes/40000000"] * 24, capture_output=True, text=True, timeout=120)
    out = [json.loads(l) for l in p.stdout.splitlines()]
    rss = int(p.stderr.strip().splitlines()[-1])
    print("  peak RSS: %d KiB for 24 bodies of 40 MB at once" % rss)
    check(len(out) == 24 and all(o["outcome"] == "ok" and o["bytes"] == 40000000 for o in out), str(out[:2]))
    check(rss < 64 * 1024, "peak RSS %d KiB" % rss)


def test_concurrency_fits_the_open_file_limit(srv):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for i in range(1500):
            f.write(json.dumps({"id": "f%d" % i, "url": srv.base + "/sleep/20"}) + "\n")
        path = f.name
    try:
        p = subprocess.run(["bash", "-c", 'ulimit -n 256 && exec "$0" --no-progress -c 10000 -i "$1"', FETCH, path],
                           capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(path)
    out = [json.loads(l) for l in p.stdout.splitlines()]
    check(p.returncode == 0 and len(out) == 1500, "rc %d, %d results, %s" % (p.returncode, len(out), p.stderr[-500:]))
    check(all(o["outcome"] == "ok" for o in out), "every request ok")
    check("ulimit -n" in p.stderr and "256" in p.stderr, "the limit is named: %s" % p.stderr[:300])


def run_env(args, env_extra, stdin=None, timeout=60):
    env = dict(os.environ)
    for k in ["http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
              "no_proxy"]:
        env.pop(k, None)
    env.update(env_extra)
    p = subprocess.run([FETCH, "--no-progress"] + args, input=stdin, capture_output=True,
                       text=True, timeout=timeout, env=env)
    return p.returncode, [json.loads(l) for l in p.stdout.splitlines()], p.stderr


def test_proxies_follow_curl_and_never_show_their_password(srv):
    # salvo-faultd serves "GET http://any/PATH" as PATH, as a proxy would, and counts it
    proxy = "http://puser:Pr0xySecret@127.0.0.1:%d" % srv.ports["http"]
    dead = "http://127.0.0.1:%d/ok" % srv.ports["refused"]
    reset = subprocess.run([FETCH, "--no-progress", srv.base + "/counters/reset"],
                                  capture_output=True, text=True)
    check(reset.returncode == 0, reset.stderr)
    rc, out, err = run_env(["--max-attempts", "1", dead], {"http_proxy": proxy})
    check(rc == 0 and out[0]["outcome"] == "ok", "through http_proxy: %s" % out)
    check("proxy for http: http://***@127.0.0.1:%d (http_proxy)" % srv.ports["http"] in err, err)
    rc, out, err2 = run_env(["--max-attempts", "1", "--noproxy", "127.0.0.1", dead],
                            {"http_proxy": proxy})
    check(rc == 1 and out[0]["error"] == "connect_refused", "--noproxy goes direct: %s" % out)
    rc, out, err3 = run_env(["--max-attempts", "1", "--proxy", "", dead], {"ALL_PROXY": proxy})
    check(rc == 1 and out[0]["error"] == "connect_refused", "--proxy '' goes direct: %s" % out)
    check("proxy: none" in err3, err3)
    rc, out, err4 = run_env(["--max-attempts", "2", "--backoff-base", "1", "--breaker",
                             "--proxy", "http://127.0.0.1:%d" % srv.ports["refused"],
                             srv.base + "/ok"], {})
    check(rc == 1 and out[0]["error"] == "proxy_failure" and out[0]["attempts"] == 2,
          "a dead proxy is its own failure, retried: %s" % out)
    check("circuit closed" in err4, "the target's circuit stays closed: " + err4[-600:])
    body = fetch_body(srv.base)
    check(json.loads(body)["proxied"] == 1, "the server saw one proxied request: " + body)
    for text in (err, err2, err3, err4, json.dumps(out)):
        check("Pr0xySecret" not in text and "puser" not in text, "a proxy password leaked: " + text)


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    passed = failed = 0
    with Server() as srv:
        for t in tests:
            try:
                t(srv)
                print("ok   %s" % t.__name__)
                passed += 1
            except Exception:
                print("FAIL %s" % t.__name__)
                traceback.print_exc()
                failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
