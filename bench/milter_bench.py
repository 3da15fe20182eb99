#!/usr/bin/env python3
"""plugin-milter and plugin-rspamd cost: sessions/s and MB/s.

Starts OpenDKIM (signing, key made here) on a free loopback port, then runs
`mailfront smtp queuedir accept milter` sessions one after another on stdin
(no super-server, so the figure is the per-session cost: connect,
negotiation, every step, signing, the rewrite and the queue write) and one
large message for the streaming rate.  The same without the milter gives
the baseline.  BENCH_QUICK=1 for a short run.  Not a test: nothing is
asserted.  No reference: the original has no milter client."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import harness  # noqa: E402

QUICK = bool(os.environ.get("BENCH_QUICK"))
N = 50 if QUICK else 300
BIG = (8 if QUICK else 64) * 1024 * 1024


def start_opendkim(tmp):
    subprocess.run(["opendkim-genkey", "-D", tmp, "-d", "example.com", "-s", "b"], check=True, timeout=60)
    port = harness.free_port()
    conf = os.path.join(tmp, "o.conf")
    with open(conf, "w") as f:
        f.write("Mode s\nDomain example.com\nSelector b\nKeyFile %s/b.private\nSocket inet:%d@127.0.0.1\n"
                "Canonicalization relaxed/simple\nBackground no\nSyslog no\nRequireSafeKeys false\n"
                "PidFile %s/pid\n" % (tmp, port, tmp))
    p = subprocess.Popen(["opendkim", "-x", conf, "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    harness.wait_port(port, timeout=30)
    return p, port


def session_file(tmp, body_bytes):
    path = os.path.join(tmp, "in-%d" % body_bytes)
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    with open(path, "wb") as f:
        f.write(b"EHLO bench\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
                b"From: a@example.com\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n")
        left = body_bytes
        block = line * 1024
        while left >= len(block):
            f.write(block)
            left -= len(block)
        f.write(line * (left // len(line)))
        f.write(b".\r\nQUIT\r\n")
    return path


def run(tmp, plugins, inp, env):
    qd = os.path.join(tmp, "q")
    for d in ("tmp", "new"):
        os.makedirs(os.path.join(qd, d), exist_ok=True)
    e = harness.base_env(QUEUEDIR=qd, QUEUEDIR_NOSYNC="1", TCPREMOTEIP="127.0.0.1", TMPDIR=tmp, DATABYTES="0", **env)
    with open(inp, "rb") as f:
        r = subprocess.run([harness.bin_path("mailfront"), "smtp", "queuedir", "accept"] + plugins, stdin=f,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=e, timeout=600)
    if b"250 2.6.0" not in r.stdout:
        raise SystemExit("session failed: %r" % r.stdout[-300:])
    for name in os.listdir(os.path.join(qd, "new")):
        os.unlink(os.path.join(qd, "new", name))


def main():
    tmp = tempfile.mkdtemp(prefix="mfbench.")
    p = None
    try:
        p, port = start_opendkim(tmp)
        env = {"MILTERS": "inet:127.0.0.1:%d" % port}
        small = session_file(tmp, 4096)
        big = session_file(tmp, BIG)
        for label, plugins, e in (("no milter", [], {}), ("OpenDKIM via milter", ["milter"], env)):
            t = time.monotonic()
            for _ in range(N):
                run(tmp, plugins, small, e)
            rate = N / (time.monotonic() - t)
            t = time.monotonic()
            run(tmp, plugins, big, e)
            mbs = BIG / (1024 * 1024) / (time.monotonic() - t)
            print("%-22s %7.1f sessions/s (4 KiB)   %7.1f MiB/s (%d MiB message)" % (label, rate, mbs, BIG >> 20))
    finally:
        if p and p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
