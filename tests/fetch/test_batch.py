#!/usr/bin/env python3
"""salvo-fetch for real batches, end to end against a salvo-faultd it starts: bodies streamed
to disk, kill -9 then --resume (every id once, every file whole, Range where offered, POSTs
re-sent with the same Idempotency-Key), checksums, --compressed, pinned names, safe file names.

usage: test_batch.py SALVO_FETCH SALVO_FAULTD
Prints one line per test and a closing 'N passed, N failed'.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

FETCH, FAULTD = sys.argv[1], sys.argv[2]
SANITIZED = "ASAN_OPTIONS" in os.environ or os.environ.get("SALVO_UNDER_SANITIZER")


class Server:
    def __enter__(self):
        self.proc = subprocess.Popen([FAULTD, "--lifetime", "600"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.ports = json.loads(self.proc.stdout.readline())
        self.port = self.ports["http"]
        self.base = "http://127.0.0.1:%d" % self.port
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def counters(self):
        with urllib.request.urlopen(self.base + "/counters", timeout=10) as r:
            return json.load(r)

    def reset(self):
        urllib.request.urlopen(self.base + "/counters/reset", timeout=10).read()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run(args, stdin=None, timeout=120):
    p = subprocess.run([FETCH, "--no-progress"] + args, input=stdin, capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, [json.loads(l) for l in p.stdout.splitlines()], p.stderr


# salvo-faultd's /file/SIZE/SEED: byte i is (i * 7 + (i >> 16) * 13 + SEED) & 0xff.
# Within 64 KiB block k that is (j * 7 + k * 13 + SEED) & 0xff: 256 blocks cover every file.
_BASE = bytes((j * 7) & 0xff for j in range(65536))
_BLOCKS = {}


def block(c):
    if c not in _BLOCKS:
        _BLOCKS[c] = bytes((b + c) & 0xff for b in _BASE)
    return _BLOCKS[c]


def file_content(size, seed):
    out = bytearray()
    k = 0
    while len(out) < size:
        out += block((k * 13 + seed) & 0xff)
        k += 1
    return bytes(out[:size])


def file_sha(size, seed):
    h = hashlib.sha256()
    k, left = 0, size
    while left > 0:
        b = block((k * 13 + seed) & 0xff)
        h.update(b[:left] if left < len(b) else b)
        left -= len(b)
        k += 1
    return h.hexdigest()


def sha_of_path(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def test_a_large_body_streams_to_disk_with_flat_memory(srv):
    size = (256 << 20) if SANITIZED else (2 << 30)
    want = file_sha(size, 3)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        line = json.dumps({"id": "big", "url": "%s/file/%d/3" % (srv.base, size), "sha256": want})
        cmd = [FETCH, "--no-progress", "-o", d, "-i", "-", "--deadline", "300000"]
        if os.path.exists("/usr/bin/time"):
            cmd = ["/usr/bin/time", "-f", "%M"] + cmd
        t = time.time()
        p = subprocess.run(cmd, input=line + "\n", capture_output=True, text=True, timeout=600)
        took = time.time() - t
        out = [json.loads(l) for l in p.stdout.splitlines()]
        check(p.returncode == 0 and len(out) == 1, "rc %d: %s %s" % (p.returncode, out, p.stderr[-500:]))
        o = out[0]
        check(o["outcome"] == "ok" and o["bytes"] == size and o["file"] == "big", str(o))
        check(o["sha256"] == want, "sha256 %s, want %s" % (o.get("sha256"), want))
        check(os.path.getsize(os.path.join(d, "big")) == size, "file size")
        check(sorted(os.listdir(d)) == ["big"], "no part left: %s" % os.listdir(d))
        if cmd[0] == "/usr/bin/time":
            rss = int(p.stderr.strip().splitlines()[-1])
            print("  %d MiB to disk in %.1f s, peak RSS %d KiB" % (size >> 20, took, rss))
            if not SANITIZED:
                check(rss < 48 * 1024, "peak RSS %d KiB for a %d MiB body" % (rss, size >> 20))


def test_file_names_are_safe_and_never_overwrite(srv):
    ids = ["../escape", "/etc/passwd", ".hidden", "a/../../b", "..", ".", "", "x" * 300,
           "ok-name_1.txt", "sp ace", "\u00e9t\u00e9", "dup", "dup"]
    with tempfile.TemporaryDirectory() as parent:
        d = os.path.join(parent, "out")
        os.mkdir(d)
        lines = "".join(json.dumps({"id": i, "url": srv.base + "/bytes/5"}) + "\n" for i in ids)
        rc, out, err = run(["-o", d, "-i", "-"], stdin=lines)
        check(len(out) == len(ids), "%d results for %d lines" % (len(out), len(ids)))
        check(os.listdir(parent) == ["out"], "nothing outside the directory: %s" % os.listdir(parent))
        names = os.listdir(d)
        for n in names:
            check("/" not in n and not n.startswith(".") and len(n.encode()) <= 200, "unsafe name %r" % n)
        files = {o["id"]: o.get("file") for o in out if o["outcome"] == "ok"}
        check(files["../escape"] == "_._escape" and files["/etc/passwd"] == "_etc_passwd", str(files))
        check(files[".hidden"] == "_hidden" and files[".."] == "_." and files["."] == "_", str(files))
        check(files["sp ace"] == "sp_ace" and files["ok-name_1.txt"] == "ok-name_1.txt", str(files))
        check(len(files["x" * 300]) == 200, files["x" * 300])
        errors = [o["error"] for o in out if o["id"] == "dup"]
        check(sorted(map(str, errors)) == ["None", "duplicate_id"], "the second dup is refused: %s" % errors)
        # a bare URL line without an id names its file by line number
        rc, out, err = run(["-o", d, "--output-template", "{host}-{path}-{line}",
                            srv.base + "/bytes/2?q=1", srv.base + "/file/10/1"])
        got = sorted(o["file"] for o in out)
        check(got == ["127.0.0.1-bytes_2-1", "127.0.0.1-file_10_1-2"], str(got))
        rc, out, err = run(["-o", d, "--output-template", "{nope}", srv.base + "/ok"])
        check(rc == 2 and "{nope}" in err, "unknown placeholder: rc %d %s" % (rc, err[:200]))


def test_failed_requests_leave_no_file_and_parts_only_when_asked(srv):
    with tempfile.TemporaryDirectory() as d:
        lines = [{"id": "trunc", "url": srv.base + "/truncate"},
                 {"id": "missing", "url": srv.base + "/status/404"},
                 {"id": "flaky", "url": srv.base + "/fail-until/3/flaky-o?status=503"},
                 {"id": "cut", "url": srv.base + "/file/300000/4?rate=100000"}]
        rc, out, err = run(["-o", d, "--max-attempts", "3", "--backoff-base", "10", "--attempt-timeout", "1000",
                            "-i", "-"], stdin="".join(json.dumps(l) + "\n" for l in lines))
        by = {o["id"]: o for o in out}
        check(by["flaky"]["outcome"] == "ok" and by["flaky"]["attempts"] == 3, str(by["flaky"]))
        check(by["trunc"]["attempts"] == 3, "a cut body is fetched again: %s" % by["trunc"])
        check(by["cut"]["error"] == "attempt_timeout", str(by["cut"]))
        check(sorted(os.listdir(d)) == ["flaky"], "files: %s" % os.listdir(d))
        with open(os.path.join(d, "flaky")) as f:
            check(f.read() == "ok\n", "the 200's body, not the 503s'")
        rc, out, err = run(["-o", d, "--keep-part", "--max-attempts", "1", "--attempt-timeout", "1000",
                            srv.base + "/file/300000/4?rate=100000"])
        check(sorted(os.listdir(d)) == ["1.part", "flaky"], "the part is kept: %s" % os.listdir(d))
        size = os.path.getsize(os.path.join(d, "1.part"))
        check(0 < size < 300000, "part of %d bytes" % size)


def test_range_continues_a_part_only_under_its_validator(srv):
    size, seed = 1000000, 9
    content = file_content(size, seed)
    want = hashlib.sha256(content).hexdigest()
    cases = [("same", "", "\"%d-%d\"" % (size, seed), True),
             ("lastmod", "?etag=none", "Wed, 21 Oct 2026 07:28:00 GMT", True),
             ("changed", "?etag=other", "\"%d-%d\"" % (size, seed), False),
             ("noranges", "?ranges=0", "\"%d-%d\"" % (size, seed), False),
             ("novalidator", "", None, False)]
    with tempfile.TemporaryDirectory() as d:
        results = os.path.join(d, "results.jsonl")
        open(results, "w").close()
        lines = ""
        for name, query, validator, _ in cases:
            part = os.path.join(d, name + ".part")
            with open(part, "wb") as f:
                f.write(content[:400000])
            if validator is not None:
                os.setxattr(part, "user.salvo.validator", validator.encode())
            lines += json.dumps({"id": name, "url": "%s/file/%d/%d%s" % (srv.base, size, seed, query),
                                 "sha256": want}) + "\n"
        srv.reset()
        rc, out, err = run(["-o", d, "--resume", results, "-i", "-"], stdin=lines)
        check(rc == 0, "rc %d: %s" % (rc, [(o["id"], o["error"], o.get("detail")) for o in out]))
        by = {o["id"]: o for o in out}
        for name, query, validator, ranged in cases:
            o = by[name]
            check(o["outcome"] == "ok" and o["sha256"] == want, "%s: %s" % (name, o))
            check(sha_of_path(os.path.join(d, name)) == want, "%s: the file is whole" % name)
            if ranged:
                check(o["status"] == 206 and o["resumed_from"] == 400000 and o["bytes"] == 600000, "%s: %s" % (name, o))
            else:
                check(o["status"] == 200 and "resumed_from" not in o and o["bytes"] == size, "%s: %s" % (name, o))
        check(srv.counters().get("ranges_served") == 2, "the server sent 2 ranges: %s" % srv.counters().get("ranges_served"))
        check(sorted(os.listdir(d)) == sorted(["results.jsonl"] + [c[0] for c in cases]), str(os.listdir(d)))


def test_checksum_mismatch_is_its_own_class_and_a_get_is_fetched_again(srv):
    good = file_sha(5000, 2)
    bad = "0" * 64
    lines = [{"id": "damaged-twice", "url": srv.base + "/file/5000/2?corrupt=3&key=sum1", "sha256": good},
             {"id": "wrong", "url": srv.base + "/file/5000/2", "sha256": bad},
             {"id": "post", "url": srv.base + "/file/5000/2", "method": "POST", "body": "x", "sha256": bad},
             {"id": "right", "url": srv.base + "/file/5000/2", "sha256": good.upper()}]
    with tempfile.TemporaryDirectory() as d:
        rc, out, err = run(["-o", d, "--backoff-base", "10", "--max-attempts", "4", "-i", "-"],
                           stdin="".join(json.dumps(l) + "\n" for l in lines))
        by = {o["id"]: o for o in out}
        check(rc == 1, "rc %d" % rc)
        o = by["damaged-twice"]
        check(o["outcome"] == "ok" and o["attempts"] == 3 and o["sha256"] == good, str(o))
        check(srv.counters()["keys"]["sum1"]["requests"] == 3, "the server counted 3")
        o = by["wrong"]
        check(o["outcome"] == "failed" and o["error"] == "checksum_mismatch" and o["attempts"] == 4, str(o))
        check(o["status"] == 200 and "4 attempts" in o["detail"], str(o))
        o = by["post"]
        check(o["error"] == "checksum_mismatch" and o["attempts"] == 1, "a POST is not sent again: %s" % o)
        check(by["right"]["outcome"] == "ok", str(by["right"]))
        check(sorted(os.listdir(d)) == ["damaged-twice", "right"], "files: %s" % os.listdir(d))
        check("checksum_mismatch" in err, "the summary counts the class: %s" % err[-600:])
    rc, out, err = run(["--checksum", "sha256=" + good, srv.base + "/file/5000/2"])
    check(rc == 0 and out[0]["sha256"] == good, str(out))
    rc, out, err = run(["--checksum", "sha256=" + bad, "--max-attempts", "2", "--backoff-base", "1",
                        srv.base + "/file/5000/2"])
    check(rc == 1 and out[0]["error"] == "checksum_mismatch" and out[0]["attempts"] == 2, str(out))
    for arg in ["md5=abc", "sha256=12", "sha256=" + "g" * 64]:
        rc, out, err = run(["--checksum", arg, srv.base + "/ok"])
        check(rc == 2 and "--checksum" in err, "%s: rc %d" % (arg, rc))
    rc, out, err = run(["--checksum", "sha256=" + good, srv.base + "/ok", srv.base + "/ok"])
    check(rc == 2 and "single URL" in err, "two URLs: rc %d %s" % (rc, err[:200]))
    rc, out, err = run(["-i", "-"], stdin=json.dumps({"url": srv.base + "/ok", "sha256": "xyz"}) + "\n")
    check(out[0]["error"] == "invalid_input" and "sha256" in out[0]["detail"], str(out))


def test_compressed_bodies_are_decoded_and_a_bomb_stops_at_the_cap(srv):
    text = (b"abcdefghijklmnopqrstuvwxyz" * 4000)[:100000]
    with tempfile.TemporaryDirectory() as d:
        lines = [{"id": "gz", "url": srv.base + "/gzip/100000", "sha256": hashlib.sha256(text).hexdigest()},
                 {"id": "br", "url": srv.base + "/br/100000"},
                 {"id": "bomb", "url": srv.base + "/gzip-bomb/10"}]
        rc, out, err = run(["-o", d, "--compressed", "--max-body-size", "16M", "-i", "-"],
                           stdin="".join(json.dumps(l) + "\n" for l in lines))
        by = {o["id"]: o for o in out}
        check(by["gz"]["outcome"] == "ok" and by["gz"]["bytes"] == 100000, str(by["gz"]))
        check(by["br"]["outcome"] == "ok" and by["br"]["bytes"] == 100000, str(by["br"]))
        for n in ["gz", "br"]:
            with open(os.path.join(d, n), "rb") as f:
                check(f.read() == text, "%s decoded on disk" % n)
        check(by["bomb"]["error"] == "body_too_large", str(by["bomb"]))
        check(sorted(os.listdir(d)) == ["br", "gz"], "no bomb on disk: %s" % os.listdir(d))
        rc, out, err = run(["-o", d, srv.base + "/gzip/100000"])
        check(out[0]["outcome"] == "ok" and out[0]["bytes"] < 100000, "without --compressed, as sent: %s" % out)


def kill_when(proc, path, lines_wanted, timeout=60, also=lambda: True):
    """kill -9 |proc| once |path| holds |lines_wanted| lines and also() holds."""
    end = time.time() + timeout
    while time.time() < end:
        with open(path, "rb") as f:
            if f.read().count(b"\n") >= lines_wanted and also():
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_kill_9_mid_batch_then_resume_finishes_every_id_once(srv):
    n = 1000 if SANITIZED else 5000
    specs = {}
    lines = ""
    for i in range(n):
        if i % 40 == 7:  # big, paced: in the middle of their bodies when the kill comes
            size, seed, query = 600000, i % 251, "?rate=300000"
        else:
            size, seed, query = 2000 + i, i % 251, ""
        specs["f%d" % i] = (size, seed)
        lines += json.dumps({"id": "f%d" % i, "url": "%s/file/%d/%d%s" % (srv.base, size, seed, query),
                             "sha256": file_sha(size, seed)}) + "\n"
    with tempfile.TemporaryDirectory() as d:
        out_dir = os.path.join(d, "files")
        os.mkdir(out_dir)
        inp = os.path.join(d, "urls.jsonl")
        with open(inp, "w") as f:
            f.write(lines)
        results = os.path.join(d, "out.jsonl")
        srv.reset()
        with open(results, "wb") as out:
            p = subprocess.Popen([FETCH, "--no-progress", "-o", out_dir, "-i", inp], stdout=out,
                                 stderr=subprocess.DEVNULL)
            def a_part_with_blocks():  # writes go out in 64 KiB blocks
                for x in os.listdir(out_dir):
                    try:
                        if x.endswith(".part") and os.path.getsize(os.path.join(out_dir, x)) >= 131072:
                            return True
                    except OSError:
                        pass  # renamed meanwhile
                return False
            kill_when(p, results, n // 3, also=a_part_with_blocks)
        first = open(results).read().count("\n")
        parts = [x for x in os.listdir(out_dir) if x.endswith(".part")]
        check(0 < first < n, "killed in the middle: %d lines" % first)
        check(len(parts) > 0, "the kill left parts in flight")
        with open(results, "ab") as out:
            p = subprocess.run([FETCH, "--no-progress", "-o", out_dir, "-i", inp, "--resume", results],
                               stdout=out, stderr=subprocess.PIPE, timeout=300)
        check(p.returncode == 0, "resume rc %d: %s" % (p.returncode, p.stderr[-500:]))
        rows = []
        with open(results) as f:
            for l in f:
                try:
                    rows.append(json.loads(l))
                except ValueError:
                    pass  # the line the kill cut
        ids = [r["id"] for r in rows]
        check(sorted(set(ids)) == sorted(specs), "every id: %d of %d" % (len(set(ids)), n))
        check(len(ids) == n, "every id once: %d lines for %d ids" % (len(ids), n))
        check(all(r["outcome"] == "ok" for r in rows), "all ok")
        check(sorted(os.listdir(out_dir)) == sorted(specs), "every file, no part left")
        for i, (size, seed) in specs.items():
            path = os.path.join(out_dir, i)
            check(os.path.getsize(path) == size, "%s: %d bytes, want %d" % (i, os.path.getsize(path), size))
        for r in rows:
            if r["id"] in [x[:-5] for x in parts] or "resumed_from" in r:
                size, seed = specs[r["id"]]
                check(sha_of_path(os.path.join(out_dir, r["id"])) == file_sha(size, seed), r["id"])
        resumed = [r for r in rows if r.get("status") == 206]
        whole = [r for r in rows if r.get("status") == 416]  # killed between the last byte and the rename
        served = srv.counters().get("ranges_served", 0)
        print("  killed after %d of %d lines, %d parts left; %d continued by a Range (server: %d), %d were whole"
              % (first, n, len(parts), len(resumed), served, len(whole)))
        check(len(resumed) > 0 and served >= len(resumed), "Range used where a part was left")
        check(all(r["resumed_from"] > 0 for r in resumed + whole), "resumed_from on each")
        check(all(r["outcome"] == "ok" and r["bytes"] == 0 for r in whole), "a whole part is ok as it is")


def test_kill_9_with_posts_in_flight_resends_them_with_the_same_key(srv):
    n = 300
    lines = "".join(json.dumps({"id": "p%d" % i, "url": "%s/keyed/pay-%d?ms=%d" % (srv.base, i, 200 + (i % 7) * 150),
                                "method": "POST", "body": "amount=%d" % i}) + "\n" for i in range(n))
    with tempfile.TemporaryDirectory() as d:
        results = os.path.join(d, "out.jsonl")
        srv.reset()
        with open(results, "wb") as out:
            p = subprocess.Popen([FETCH, "--no-progress", "-c", "40", "--idempotency-key", "auto", "-i", "-"],
                                 stdin=subprocess.PIPE, stdout=out, stderr=subprocess.DEVNULL)
            p.stdin.write(lines.encode())
            p.stdin.close()
            kill_when(p, results, n // 3)
        first = open(results).read().count("\n")
        keys_before = srv.counters()["keys"]
        in_flight = [k for k, v in keys_before.items() if v["requests"] > 0] 
        with open(results, "ab") as out:
            p = subprocess.run([FETCH, "--no-progress", "-c", "40", "--idempotency-key", "auto", "-i", "-",
                                "--resume", results], input=lines.encode(), stdout=out, stderr=subprocess.PIPE,
                               timeout=120)
        check(p.returncode == 0, "resume rc %d: %s" % (p.returncode, p.stderr[-300:]))
        rows = [json.loads(l) for l in open(results) if l.strip()]
        ids = [r["id"] for r in rows]
        check(len(ids) == n and len(set(ids)) == n, "every id once: %d lines, %d ids" % (len(ids), len(set(ids))))
        check(len({r["batch"] for r in rows}) == 1, "one batch across both runs")
        keys = srv.counters()["keys"]
        twice = 0
        for i in range(n):
            k = keys["pay-%d" % i]
            check(len(k["idempotency_keys"]) == 1, "pay-%d reached the server with keys %s" % (i, k["idempotency_keys"]))
            twice += k["requests"] > 1
        done_first = {r["id"] for r in rows[:first]}
        for i in range(n):
            if "p%d" % i in done_first:
                check(keys["pay-%d" % i]["requests"] == 1, "p%d was done and was not sent again" % i)
        print("  killed after %d of %d results; %d POSTs were sent in both runs, each with one key"
              % (first, n, twice))
        check(twice > 0, "some POSTs were in flight at the kill")
        # a new run without --resume is a new batch: new keys
        rc, out, err = run(["--idempotency-key", "auto", "-X", "POST", "-d", "x", srv.base + "/keyed/fresh"])
        rc, out2, err = run(["--idempotency-key", "auto", "-X", "POST", "-d", "x", srv.base + "/keyed/fresh"])
        check(out[0]["batch"] != out2[0]["batch"], "two runs, two batches")
        check(len(srv.counters()["keys"]["fresh"]["idempotency_keys"]) == 2, "two runs, two keys")
        rc, out, err = run(["--idempotency-key", "auto", "--batch-id", "b1", "-X", "POST", "-d", "x",
                            srv.base + "/keyed/given"])
        rc, out, err = run(["--idempotency-key", "auto", "--batch-id", "b1", "-X", "POST", "-d", "x",
                            srv.base + "/keyed/given"])
        check(len(srv.counters()["keys"]["given"]["idempotency_keys"]) == 1, "--batch-id: the same key")
        empty = os.path.join(d, "empty.jsonl")
        open(empty, "w").close()
        rc, out, err = run(["--idempotency-key", "auto", "--resume", empty, "-X", "POST", "-d", "x",
                            srv.base + "/keyed/x"])
        check(rc == 2 and "--batch-id" in err and len(out) == 0, "no batch known: refused (rc %d)" % rc)


def test_resume_skips_done_ids_and_reads_past_a_cut_line(srv):
    with tempfile.TemporaryDirectory() as d:
        results = os.path.join(d, "out.jsonl")
        with open(results, "w") as f:
            for i, outcome in [("a", "ok"), ("b", "http_error"), ("c", "failed")]:
                f.write(json.dumps({"id": i, "url": srv.base + "/ok", "method": "GET", "outcome": outcome}) + "\n")
            f.write('{"id": "d", "outco')  # cut by a kill
        lines = "".join(json.dumps({"id": i, "url": srv.base + "/ok"}) + "\n" for i in "abcde")
        with open(results, "a") as out:
            p = subprocess.run([FETCH, "--no-progress", "--resume", results, "-i", "-"], input=lines,
                               stdout=out, stderr=subprocess.PIPE, text=True, timeout=60)
        check(p.returncode == 0, p.stderr)
        rows = []
        with open(results) as f:
            all_lines = f.read().splitlines()
        for l in all_lines[4:]:
            rows.append(json.loads(l))
        check(sorted(r["id"] for r in rows) == ["b", "c", "d", "e"], "re-run: %s" % [r["id"] for r in rows])
        check(all_lines[3] == '{"id": "d", "outco', "the cut line is ended, not joined: %r" % all_lines[3])
        rc, out, err = run(["--resume", results, "--resume-done", "ok,http_error", "-i", "-"], stdin=lines)
        check(rc == 0 and len(out) == 0, "everything is done now: %s" % out)
        rc, out, err = run(["--resume", "/nonexistent/r.jsonl", srv.base + "/ok"])
        check(rc == 2 and "/nonexistent/r.jsonl" in err, err)
        rc, out, err = run(["--resume-done", "nope", "--resume", results, srv.base + "/ok"])
        check(rc == 2 and "--resume-done" in err, err)


def test_user_agent_reaches_the_server(srv):
    with tempfile.TemporaryDirectory() as d:
        rc, out, err = run(["-o", d, "-A", "batch-bot/1.0", srv.base + "/headers"])
        with open(os.path.join(d, "1")) as f:
            check("User-Agent: batch-bot/1.0" in f.read(), "User-Agent sent")


def test_resolve_pins_a_made_up_name_and_nothing_goes_to_dns(srv):
    # The name is only ever used with --resolve (or --connect-to) pinning it to 127.0.0.1.
    name = "salvo-fetch-pinned.invalid"
    url = "http://%s:%d/headers" % (name, srv.port)
    with tempfile.TemporaryDirectory() as d:
        cmd = [FETCH, "--no-progress", "-o", d, "--resolve", "%s:%d:127.0.0.1" % (name, srv.port), url]
        strace = shutil.which("strace")
        log = os.path.join(d, "strace.log")
        if strace and not SANITIZED:
            cmd = [strace, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", log] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        out = [json.loads(l) for l in p.stdout.splitlines()]
        check(p.returncode == 0 and out[0]["outcome"] == "ok", "rc %d: %s %s" % (p.returncode, out, p.stderr[-300:]))
        with open(os.path.join(d, "1")) as f:
            check("Host: %s:%d" % (name, srv.port) in f.read(), "the server saw the name")
        if os.path.exists(log):
            with open(log) as f:
                calls = f.read()
            check("htons(53)" not in calls, "a DNS query went out:\n%s" % calls[:2000])
            check("htons(%d)" % srv.port in calls, "strace saw the connect: %s" % calls[:500])
            print("  strace: no connect or send to port 53")
        # --connect-to: the same name, connected to faultd's port
        rc, out, err = run(["--connect-to", "%s:80:127.0.0.1:%d" % (name, srv.port), "http://%s/ok" % name])
        check(rc == 0 and out[0]["status"] == 200, "connect-to: %s %s" % (out, err[-200:]))
    for bad in ["%s:%d:localhost" % (name, srv.port), "%s:0:127.0.0.1" % name, "+%s:1:127.0.0.1" % name]:
        rc, out, err = run(["--resolve", bad, srv.base + "/ok"])
        check(rc == 2 and "resolve" in err and out == [], "%s: rc %d %s" % (bad, rc, err[-200:]))


def test_limit_rate_paces_each_transfer(srv):
    t = time.time()
    rc, out, err = run(["--limit-rate", "100K", srv.base + "/file/400000/1", srv.base + "/file/400000/2"])
    took = time.time() - t
    check(rc == 0 and all(o["bytes"] == 400000 for o in out), str(out))
    check(took >= 2.5, "two 400 KB bodies at 100 KiB/s each, side by side, took %.2f s" % took)
    check(took < 20, "took %.2f s" % took)
    rc, out, err = run(["--limit-rate", "0", srv.base + "/ok"])
    check(rc == 2 and "--limit-rate" in err, "rc %d" % rc)


def test_large_reads_and_whole_block_writes(srv):
    """salvo-fetch reads 128 KiB at a time (recv_buffer_size) and writes 64 KiB blocks."""
    strace = shutil.which("strace")
    if strace is None or SANITIZED:
        print("  skipped: no strace, or under a sanitizer")
        return
    counts = {}
    with tempfile.TemporaryDirectory() as d:
        for name, extra in [("default", []), ("16k-reads", ["--limit-rate", "1G"])]:
            log = os.path.join(d, name + ".log")
            p = subprocess.run([strace, "-f", "-qq", "-e", "trace=recvfrom,write", "-o", log, FETCH,
                                "--no-progress", "-o", d] + extra + ["%s/file/8000000/3" % srv.base],
                               capture_output=True, text=True, timeout=60)
            check(p.returncode == 0, p.stderr[-300:])
            calls = open(log).read()
            reads = [l for l in calls.splitlines() if "recvfrom(" in l and "EAGAIN" not in l]
            writes = [l for l in calls.splitlines() if " write(" in l and l.rstrip().endswith("= 65536")]
            counts[name] = (len(reads), len(writes))
            check(os.path.getsize(os.path.join(d, "1")) == 8000000, "the file is whole")
            os.unlink(os.path.join(d, "1"))
    print("  8 MB: %d reads by default, %d with 16 KiB reads; %d writes of 64 KiB" %
          (counts["default"][0], counts["16k-reads"][0], counts["default"][1]))
    check(counts["default"][0] * 3 < counts["16k-reads"][0], "larger reads: %s" % counts)
    check(counts["default"][1] >= 8000000 // 65536 - 1, "whole 64 KiB writes: %s" % counts)


def test_what_a_new_user_broke_stays_fixed(srv):
    size, seed = 300000, 6
    content = file_content(size, seed)
    want = hashlib.sha256(content).hexdigest()
    with tempfile.TemporaryDirectory() as d:
        results = os.path.join(d, "r.jsonl")
        open(results, "w").close()
        # a continued part that is damaged, and one longer than the file: both fetched whole, once
        for name, data in [("damaged", b"\xff" + content[1:100000]), ("longer", content + b"xyz")]:
            with open(os.path.join(d, name + ".part"), "wb") as f:
                f.write(data)
            os.setxattr(os.path.join(d, name + ".part"), "user.salvo.validator", b'"%d-%d"' % (size, seed))
        lines = "".join(json.dumps({"id": n, "url": "%s/file/%d/%d" % (srv.base, size, seed), "sha256": want}) + "\n"
                        for n in ["damaged", "longer"])
        rc, out, err = run(["-o", d, "--keep-part", "--resume", results, "-i", "-"], stdin=lines)
        by = {o["id"]: o for o in out}
        check(rc == 0, "rc %d: %s" % (rc, out))
        for n in ["damaged", "longer"]:
            check(by[n]["outcome"] == "ok" and by[n]["status"] == 200 and "fetched whole" in by[n]["detail"], str(by[n]))
            check(sha_of_path(os.path.join(d, n)) == want, n)
        check(sorted(os.listdir(d)) == ["damaged", "longer", "r.jsonl"], str(os.listdir(d)))
        # the caller's own Range: a 206 is a body like any other
        rc, out, err = run(["-o", d, "-H", "Range: bytes=0-9", srv.base + "/file/100/1"])
        check(rc == 0 and out[0]["status"] == 206 and out[0]["bytes"] == 10, str(out))
        # lines without ids are named by their number: reordered, they are refused, not re-sent
        with open(results, "w") as f:
            subprocess.run([FETCH, "--no-progress", srv.base + "/keyed/one", srv.base + "/keyed/two"], stdout=f,
                           stderr=subprocess.DEVNULL, timeout=60)
        rc, out, err = run(["--resume", results, srv.base + "/keyed/two", srv.base + "/keyed/one"])
        check(rc == 1 and [o["error"] for o in out] == ["resume_conflict"] * 2, str(out))
        check(srv.counters()["keys"]["one"]["requests"] == 1, "not sent again")
        # stdout that would empty the --resume file first
        p = subprocess.run("%s --resume %s %s/ok > %s" % (FETCH, results, srv.base, results), shell=True,
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 2 and ">>" in p.stderr, p.stderr)
    # batch ids are whole: two that share 64 bytes still make two keys
    long_id = "b" * 64
    for tail in ["-A", "-B"]:
        run(["--idempotency-key", "auto", "--batch-id", long_id + tail, "-X", "POST", "-d", "x", srv.base + "/keyed/long"])
    check(len(srv.counters()["keys"]["long"]["idempotency_keys"]) == 2, "two batches, two keys")
    # a byte order mark, and lines that are neither a URL nor a JSON object: never shown
    lines = ('\ufeff{"id":"bom","url":"%s/ok"}\n' % srv.base +
             '[{"url":"%s/ok","headers":{"Authorization":"Bearer SECRET1"}}]\n' % srv.base +
             '%s/ok Authorization: SECRET2\n' % srv.base)
    rc, out, err = run(["-i", "-"], stdin=lines)
    by = {o["id"]: o for o in out}
    check(by["bom"]["outcome"] == "ok", str(out))
    check(by["2"]["error"] == "invalid_input" and by["3"]["error"] == "invalid_input", str(out))
    check("SECRET" not in err and "SECRET" not in json.dumps(out), "a secret was shown")
    for args, name in [(["--retry-methods", "get"], "--retry-methods"), (["--retry-status", ""], "--retry-status"),
                       (["--shard", "1/-1"], "--shard"), (["-A", "x\r\nY: z"], "--user-agent"),
                       (["--output-template", "{id}.bin"], "--output-template")]:
        rc, out, err = run(args + [srv.base + "/ok"])
        check(rc == 2 and name in err, "%s: rc %d %s" % (args, rc, err[-200:]))


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    passed = failed = 0
    with Server() as srv:
        for t in tests:
            try:
                t0 = time.time()
                t(srv)
                print("ok   %s (%.1f s)" % (t.__name__, time.time() - t0))
                passed += 1
            except Exception:
                print("FAIL %s" % t.__name__)
                traceback.print_exc()
                failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
