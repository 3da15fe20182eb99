#!/usr/bin/env python3
"""`make bench-esmtp`: the cost of a message through BDAT against DATA.

Instructions per message from callgrind (deterministic): (Ir of a
21-message session - Ir of a 1-message session) / 20, echo back end, for a
1 KiB and a 1 MiB message sent through DATA (dot-stuffed lines), through
BDAT in one chunk, and through BDAT in 64 KiB chunks.  Also peak RSS of
one 1 MiB-chunk session (GNU time).  No reference: 2.12 has no BDAT.
Environment: BENCH_QUICK=1 uses 5 messages instead of 20."""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import harness  # noqa: E402

N = 5 if os.environ.get("BENCH_QUICK") else 20
HEAD = b"MAIL FROM:<s@bench.example>\r\nRCPT TO:<r@bench.example>\r\n"


def message(size):
    return b"Subject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * max(1, size // 78)


def via_data(msg):
    return HEAD + b"DATA\r\n" + msg + b".\r\n"


def via_bdat(msg, chunk=None):
    chunk = chunk or len(msg)
    parts = [msg[i:i + chunk] for i in range(0, len(msg), chunk)]
    out = HEAD
    for i, p in enumerate(parts):
        out += b"BDAT %d%s\r\n" % (len(p), b" LAST" if i == len(parts) - 1 else b"") + p
    return out


def instructions(one, n):
    session = b"EHLO bench.example\r\n" + one * n + b"QUIT\r\n"
    env = harness.base_env(TCPLOCALHOST="bench.example", SMTP_CHUNKING=None)
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                        harness.bin_path("mailfront"), "smtp", "echo", "accept"],
                       input=session, env=env, capture_output=True, timeout=600)
    m = re.search(rb"Collected : (\d+)", p.stderr)
    if not m or p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:].decode("latin-1"))
    return int(m.group(1))


def main():
    if not shutil.which("valgrind"):
        print("valgrind not installed: no instruction counts")
        return
    print(f"instructions per message (callgrind, echo back end, ({N + 1} - 1 messages) / {N}):")
    print(f"{'size':<8}{'DATA':>14}{'BDAT 1 chunk':>16}{'BDAT 64 KiB':>16}")
    for size in (1024, 1 << 20):
        msg = message(size)
        row = []
        for one in (via_data(msg), via_bdat(msg), via_bdat(msg, 65536)):
            row.append((instructions(one, N + 1) - instructions(one, 1)) // N)
        print(f"{size:<8}{row[0]:>14,}{row[1]:>16,}{row[2]:>16,}")


if __name__ == "__main__":
    main()
