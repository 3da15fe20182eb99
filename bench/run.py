#!/usr/bin/env python3
"""`make bench`: SMTP throughput of ours against the reference, side by side.

For each scenario (echo and queuedir back ends, 1 KiB and 1 MiB messages)
a tcpserver on 127.0.0.1 runs one mailfront per connection; bench/smtpload
drives many concurrent pipelined sessions.  Runs alternate ours/reference,
ROUNDS times, and the median messages/s of each is reported with the
ratio.  Instructions per message come from callgrind (deterministic):
(Ir of a 41-message session - Ir of a 1-message session) / 40.
The reference is Debian's mailfront 2.12 (/usr/sbin/mailfront), used only
as a black box; without it only our figures are printed.
Environment: BENCH_ROUNDS (3), BENCH_QUICK=1 for a short run."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (SCALE, ROUNDS, Table, base_env, build_load, callgrind, impls,  # noqa: E402
                    print_instructions, session_bytes, smtpload)


def run_load(load, impl, backend, size, conc, sessions, per, qdir):
    env = base_env(impl, **({"QUEUEDIR": qdir} if backend == "queuedir" else {}))
    rate, _ = smtpload(load, impl, [backend, "accept"], env, size, conc, sessions, per)
    if backend == "queuedir":
        for f in os.listdir(os.path.join(qdir, "new")):
            os.unlink(os.path.join(qdir, "new", f))
    return rate


def instructions(impl, n, size):
    return callgrind(impl["argv"] + ["smtp", "echo", "accept"], session_bytes(n, size), base_env(impl))


def main():
    load = build_load()
    qdir = tempfile.mkdtemp(prefix="mfbench.")
    for d in ("tmp", "new"):
        os.makedirs(os.path.join(qdir, d))
    scenarios = [
        ("echo", 1024, 8, int(400 * SCALE), 5),
        ("echo", 1 << 20, 4, int(40 * SCALE), 2),
        ("queuedir", 1024, 8, int(200 * SCALE), 5),
        ("queuedir", 1 << 20, 4, int(24 * SCALE), 2),
    ]
    ims = impls()
    print(f"mailfront bench: {len(ims)} implementation(s), {ROUNDS} alternating rounds, median msgs/s")
    table = Table(ims)
    for backend, size, conc, sessions, per in scenarios:
        table.row(f"{backend} {size // 1024} KiB x{conc}",
                  lambda i: run_load(load, i, backend, size, conc, sessions, per, qdir))
    print()
    print("instructions per 1 KiB message (callgrind, echo back end, one session):")
    print_instructions(ims, lambda i, n: instructions(i, n, 1024))
    shutil.rmtree(qdir, True)


if __name__ == "__main__":
    main()
