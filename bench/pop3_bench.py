#!/usr/bin/env python3
"""pop3front-maildir benchmark: ours, the original and Dovecot side by side.

Usage: MF_BUILD=/abs/build python3 bench/pop3_bench.py [--messages N | --large]
                                                       [--rounds R] [--keep DIR]

A maildir of N generated messages (default 20,000; --large: 100,000) is
written once: sizes from 1 to ~100 KiB, a mix of names with Courier `,S=`
and Dovecot `,S=...,W=` size indicators and plain names that need stat(2),
in new/ and cur/.  For each implementation two sessions are timed, each
from process start to the reply of the last command (so start-up and the
directory scan are included):

  list   STAT, LIST, UIDL
  retr   RETR 1..N, pipelined

and the peak RSS (VmHWM, read from /proc while the session is still open)
is recorded.  Sessions end at EOF without QUIT, so the maildir is never
changed.  Implementations: ours ($MF_BUILD/bin/pop3front-maildir), the
reference (/usr/sbin/pop3front-maildir, if installed) and Dovecot's pop3
(/usr/lib/dovecot/pop3, if installed; run pre-authenticated with a
generated config, as user nobody, on its own copy of the maildir).  One
warm-up round, then the median of --rounds (default 3).  Ratios are
other/ours: above 1 means ours is faster or smaller.  Output of ours and
the reference is compared (sha256): it must be identical.
"""
import argparse
import hashlib
import os
import pwd
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("MF_BUILD", os.path.join(ROOT, "build"))
OURS = os.path.join(BUILD, "bin", "pop3front-maildir")
REFERENCE = "/usr/sbin/pop3front-maildir"
DOVECOT = "/usr/lib/dovecot/pop3"
END = b"XBENCHEND\r\n"      # unknown command: its -ERR reply marks the end


def generate(root, count, seed=42):
    """Write the maildir; returns total bytes."""
    rng = random.Random(seed)
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    words = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet", b"consectetur", b"adipiscing", b"elit",
             b".dotted", b"mail", b"front", b"pop3"]
    # a pool of body text; each message takes a slice starting at a line
    pool = b"\n".join(b" ".join(rng.choice(words) for _ in range(rng.randrange(1, 14)))
                      for _ in range(40000)) + b"\n"
    starts = [0] + [i + 1 for i in range(len(pool) - 1) if pool[i] == 10 and i < len(pool) - 200_000]
    t0 = 1600000000
    total = 0
    for i in range(count):
        r = rng.random()
        size = rng.randrange(100_000) if r < 0.02 else rng.randrange(500, 12_000)
        head = (b"Return-Path: <sender%d@example.org>\nMessage-ID: <%d.bench@example.org>\n"
                b"From: Sender <sender%d@example.org>\nTo: user@example.net\nSubject: message %d\n"
                b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n\n" % (i, i, i, i))
        b = rng.choice(starts)
        e = pool.index(b"\n", b + max(size - len(head), 1)) + 1
        content = head + pool[b:e]
        base = b"%d.M%dP%d.bench.example" % (t0 + i, rng.randrange(10**6), 10000 + i % 50000)
        kind = i % 3
        if kind == 1:
            base += b",S=%d" % len(content)
        elif kind == 2:
            base += b",S=%d,W=%d" % (len(content), len(content) + content.count(b"\n"))
        if i % 4 == 0:
            path = os.path.join(root.encode(), b"new", base)
        else:
            path = os.path.join(root.encode(), b"cur", base + (b":2,S" if i % 3 else b":2,"))
        with open(path, "wb") as f:
            f.write(content)
        total += len(content)
    return total


def session(argv, env, commands, cwd=None):
    """Run one session fed with commands + END; returns (seconds, VmHWM KiB,
    output sha256, output bytes).  The process is ended by EOF."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=env, cwd=cwd)
    digest = hashlib.sha256()
    state = {"n": 0, "tail": b"\n", "t": None, "errors": 0}
    done = threading.Event()

    def reader():
        while True:
            chunk = p.stdout.read1(1 << 20)
            if not chunk:
                break
            state["n"] += len(chunk)
            digest.update(chunk)
            state["errors"] += (state["tail"][-4:] + chunk).count(b"\n-ERR")
            state["tail"] = (state["tail"] + chunk)[-200:]
            if re.search(rb"(^|\r\n)-ERR [^\r\n]*\r\n$", state["tail"]):
                state["t"] = time.perf_counter()
                done.set()
        done.set()

    def writer():
        try:
            p.stdin.write(commands + END)
            p.stdin.flush()
        except BrokenPipeError:
            pass

    rt = threading.Thread(target=reader)
    wt = threading.Thread(target=writer)
    rt.start()
    wt.start()
    done.wait(3600)
    hwm = 0
    try:
        with open("/proc/%d/status" % p.pid) as f:
            hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
    except (OSError, AttributeError):
        pass
    wt.join()
    p.stdin.close()
    rt.join()
    p.wait()
    if state["t"] is None or state["errors"] != 1:
        raise RuntimeError("%s: session failed (%d error replies; end marker %s)"
                           % (argv[0], state["errors"], "seen" if state["t"] else "missing"))
    return state["t"] - t0, hwm, digest.hexdigest(), state["n"]


def dovecot_setup(work, maildir):
    """Copy of the maildir owned by nobody and a pre-auth config for it."""
    md = os.path.join(work, "dovecot-md")
    shutil.copytree(maildir, md, symlinks=True)
    nobody = pwd.getpwnam("nobody")
    for d, dirs, files in os.walk(md):
        for name in [d] + [os.path.join(d, f) for f in files]:
            os.chown(name, nobody.pw_uid, nobody.pw_gid)
    home = os.path.join(work, "dovecot-home")
    os.makedirs(home, exist_ok=True)
    conf = os.path.join(work, "dovecot.conf")
    with open(conf, "w") as f:
        f.write("protocols = pop3\nssl = no\nmail_location = maildir:%s\n"
                "mail_uid = %d\nmail_gid = %d\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n"
                "log_path = /dev/null\npop3_uidl_format = %%f\n" % (md, nobody.pw_uid, nobody.pw_gid))
    env = {"PATH": "/usr/bin:/bin", "USER": "bench", "HOME": home}
    return [DOVECOT, "-c", conf], env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--large", action="store_true", help="100,000 messages")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", help="generate into (and keep) this directory")
    args = ap.parse_args()
    count = 100000 if args.large else args.messages
    if not os.path.exists(OURS):
        sys.exit("no %s: build first (make)" % OURS)

    work = args.keep or tempfile.mkdtemp(prefix="pop3bench.")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)           # Dovecot runs as nobody
    maildir = os.path.join(work, "md")
    try:
        t = time.time()
        if os.path.isdir(maildir):
            total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(maildir) for f in fs)
        else:
            total = generate(maildir, count)
        print("maildir: %d messages, %.1f MiB (%.1fs to generate)" % (count, total / 2**20, time.time() - t))

        impls = [("ours", [OURS], {"PATH": "/usr/bin:/bin", "MAILBOX": maildir})]
        if os.path.exists(REFERENCE):
            impls.append(("reference", [REFERENCE], {"PATH": "/usr/bin:/bin", "MAILBOX": maildir}))
        else:
            print("reference %s not installed: skipped" % REFERENCE)
        if os.path.exists(DOVECOT) and os.geteuid() == 0:
            argv, env = dovecot_setup(work, maildir)
            impls.append(("dovecot", argv, env))
        else:
            print("dovecot %s not installed (or not root): skipped" % DOVECOT)

        list_cmds = b"STAT\r\nLIST\r\nUIDL\r\n"
        retr_cmds = b"".join(b"RETR %d\r\n" % i for i in range(1, count + 1))
        results = {}
        for name, argv, env in impls:
            session(argv, env, list_cmds)            # warm-up: page cache, Dovecot's index
            session(argv, env, retr_cmds)
            rows = {"list": [], "retr": [], "rss": [], "digest": set(), "bytes": 0}
            for _ in range(args.rounds):
                s, h1, d1, _ = session(argv, env, list_cmds)
                r, h2, d2, n = session(argv, env, retr_cmds)
                rows["list"].append(s)
                rows["retr"].append(r)
                rows["rss"].append(max(h1, h2))
                rows["digest"].add((d1, d2))
                rows["bytes"] = n
            results[name] = rows
            print("  %-9s done" % name, flush=True)

        print()
        print("%d messages, %.1f MiB; median of %d rounds; ratio = other / ours" % (count, total / 2**20, args.rounds))
        hdr = "%-10s %10s %10s %10s %12s %8s %8s %8s" % ("impl", "list s", "retr s", "retr MB/s", "peak RSS MiB",
                                                         "list x", "retr x", "RSS x")
        print(hdr)
        print("-" * len(hdr))
        base = results["ours"]
        b_list, b_retr, b_rss = (statistics.median(base["list"]), statistics.median(base["retr"]),
                                 max(base["rss"]))
        for name, rows in results.items():
            l, r, m = statistics.median(rows["list"]), statistics.median(rows["retr"]), max(rows["rss"])
            print("%-10s %10.3f %10.3f %10.1f %12.1f %8.2f %8.2f %8.2f" % (
                name, l, r, rows["bytes"] / r / 1e6, m / 1024, l / b_list, r / b_retr, m / b_rss if b_rss else 0))
        if "reference" in results:
            same = results["reference"]["digest"] == base["digest"] and len(base["digest"]) == 1
            print("\nours and reference output identical: %s" % ("yes" if same else "NO"))
    finally:
        if not args.keep:
            shutil.rmtree(work, True)


if __name__ == "__main__":
    main()
