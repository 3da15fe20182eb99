#!/usr/bin/env python3
"""Benchmark of plugin-mailrules with large inputs (not a test).

Builds, in a temporary directory, a 100,000-line rules file (sender and
recipient rules: literals, globs, negations, a text list) and a
1,000,000-key cdb (built with tinycdb's `cdb -c`), then runs one SMTP
session with many RCPT commands through ours ($MF_BUILD/bin/mailfront) and
through the reference /usr/sbin/mailfront when installed.  Most recipients
walk the whole rule list and end in a cdb lookup (the worst case).

Printed per implementation: start-up time (a session with one RCPT),
session time, time per RCPT beyond start-up, peak RSS; then ratios
ours/reference.  Usage: MF_BUILD=$PWD/build python3 bench/rules_bench.py
[--rcpts N] [--rules N] [--keys N]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("MF_BUILD", os.path.join(os.path.dirname(HERE), "build"))
REFERENCE = "/usr/sbin/mailfront"


def make_cdb(path, nkeys):
    """A cdb with keys user<i>@d<i%1000>.example and d<i>.example."""
    p = subprocess.Popen(["cdb", "-c", path], stdin=subprocess.PIPE)
    chunk = []
    for i in range(nkeys):
        k = (b"user%d@d%d.example" % (i, i % 1000)) if i % 2 else (b"d%d.example" % i)
        chunk.append(b"+%d,1:%s->1\n" % (len(k), k))
        if len(chunk) >= 10000:
            p.stdin.write(b"".join(chunk))
            chunk = []
    p.stdin.write(b"".join(chunk) + b"\n")
    p.stdin.close()
    if p.wait() != 0:
        sys.exit("cdb -c failed")


def make_rules(path, nrules, listpath, cdbpath):
    with open(listpath, "w") as f:
        for i in range(1000):
            f.write("blocked%d@list.example\n" % i)
    with open(path, "w") as f:
        f.write(":sender\n")
        f.write("d[[%s]]:*:listed sender\n" % listpath)
        n = 2
        for i in range(nrules // 10):
            f.write("dspammer%d@*.example:*:5.7.1 go away\n" % i)
            n += 1
        f.write("k*\n:recipient\n")
        n += 2
        i = 0
        while n < nrules - 3:
            kind = i % 4
            if kind == 0:
                f.write("duser%d@host%d.example:*:5.1.1 no such user\n" % (i, i))
            elif kind == 1:
                f.write("d*:*@bad%d.example:rejected\n" % i)
            elif kind == 2:
                f.write("z*:!*@*.example:deferred %d\n" % i)
            else:
                f.write("n*:old%d@*:::%d::MARK%d=1\n" % (i, 100000 + i, i))
            i += 1
            n += 1
        f.write("k*:[[%s]]:in cdb\n" % cdbpath)
        f.write("k*:[[@%s]]:domain in cdb\n" % cdbpath)
        f.write("d*:*:not listed\n")


def measure(binary, modules, rules, rcpts, cwd):
    """(seconds, peak RSS KiB, reply lines) for one session, via GNU time if
    present, else resource usage of children."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    script = ["HELO bench", "MAIL FROM:<someone@sender.example>"]
    for i in range(rcpts):
        j = (i * 7919) % 1000000
        if i % 3 == 0:
            script.append("RCPT TO:<User%d@D%d.example>" % (j | 1, (j | 1) % 1000))   # whole address in cdb
        elif i % 3 == 1:
            script.append("RCPT TO:<x@d%d.example>" % (j & ~1))                        # domain in cdb
        else:
            script.append("RCPT TO:<nobody%d@nowhere.example>" % i)                    # walks everything, refused
    script.append("QUIT")
    data = ("\r\n".join(script) + "\r\n").encode()
    env = {"PATH": "/usr/bin:/bin", "MAILRULES": rules, "TCPLOCALHOST": "bench.example"}
    if modules:
        env["MODULE_PATH"] = modules
    timer = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    argv = [binary, "smtp", "echo", "mailrules"]
    rss_file = os.path.join(cwd, "rss")
    if timer:
        argv = [timer, "-f", "%M", "-o", rss_file] + argv
    t0 = time.monotonic()
    p = subprocess.run(argv, input=data, capture_output=True, env=env, cwd=cwd, timeout=3600)
    elapsed = time.monotonic() - t0
    if timer:
        with open(rss_file) as f:
            rss = int(f.read().split()[-1])
    else:
        rss = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    replies = p.stdout.decode("latin-1").split("\r\n")
    return elapsed, rss, replies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rcpts", type=int, default=1000)
    ap.add_argument("--rules", type=int, default=100000)
    ap.add_argument("--keys", type=int, default=1000000)
    a = ap.parse_args()
    if not shutil.which("cdb"):
        sys.exit("needs the cdb tool (Debian package tinycdb)")
    ours = os.path.join(BUILD, "bin", "mailfront")
    if not os.path.exists(os.path.join(BUILD, "lib", "plugin-mailrules.so")):
        sys.exit("build plugin-mailrules first (make)")
    d = tempfile.mkdtemp(prefix="rulesbench.")
    try:
        t = time.monotonic()
        cdbpath = os.path.join(d, "big.cdb")
        make_cdb(cdbpath, a.keys)
        rules = os.path.join(d, "rules")
        make_rules(rules, a.rules, os.path.join(d, "list"), cdbpath)
        with open(rules) as f:
            nlines = sum(1 for _ in f)
        print("inputs: %d-line rules file (%.1f MB), %d-key cdb (%.1f MB), built in %.1fs"
              % (nlines, os.path.getsize(rules) / 1e6, a.keys, os.path.getsize(cdbpath) / 1e6, time.monotonic() - t))
        impls = [("ours", ours, os.path.join(BUILD, "lib"))]
        if os.path.exists(REFERENCE):
            impls.append(("reference 2.12", REFERENCE, None))
        results = {}
        for name, binary, mods in impls:
            s1, rss1, _ = measure(binary, mods, rules, 1, d)
            sn, rss, replies = measure(binary, mods, rules, a.rcpts, d)
            codes = {}
            for l in replies:
                if l[:3].isdigit():
                    codes[l[:3]] = codes.get(l[:3], 0) + 1
            per = (sn - s1) / max(a.rcpts - 1, 1)
            results[name] = (s1, sn, per, rss, rss1)
            print("%-15s start-up %.3fs (peak RSS %d KiB)  session(%d RCPT) %.3fs  per RCPT %.1f us  peak RSS %d KiB"
                  "  replies %s" % (name, s1, rss1, a.rcpts, sn, per * 1e6, rss, dict(sorted(codes.items()))))
        if len(results) == 2:
            o, r = results["ours"], results["reference 2.12"]
            ratio = lambda x, y: (x / y) if y else float("nan")
            print("ratios ours/reference: start-up %.2f  session %.2f  per RCPT %.2f  peak RSS %.2f"
                  "  start-up RSS %.2f" % (ratio(o[0], r[0]), ratio(o[1], r[1]), ratio(o[2], r[2]),
                                           ratio(o[3], r[3]), ratio(o[4], r[4])))
            print("(peak RSS includes the pages of the memory-mapped cdb that the lookups touched)")
        else:
            print("reference not installed: no ratios")
    finally:
        shutil.rmtree(d, True)


if __name__ == "__main__":
    main()
