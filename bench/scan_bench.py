#!/usr/bin/env python3
"""Messages/s with clamd in the chain: ours against the reference.

A clamd is started here (temporary DatabaseDirectory with one EICAR body
signature, TCPSocket on a free 127.0.0.1 port; no network) and stopped by
pid at the end.  For each scenario a tcpserver on 127.0.0.1 runs
`mailfront smtp echo clamav accept` per connection, with $CLAMAV_HOST /
$CLAMAV_PORT pointing at that clamd, and bench/smtpload (compiled as in
bench/run.py) drives concurrent pipelined sessions.  Runs alternate
ours/reference, BENCH_ROUNDS times (3); the median msgs/s is printed side by
side with the ratio.  BENCH_QUICK=1 for a short run.  Not a test: nothing
is asserted.  The reference is Debian's mailfront 2.12 (/usr/sbin/mailfront
with /usr/lib/mailfront/plugin-clamav.so), used only as a black box."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROUNDS, SCALE, Table, base_env, build_load, impls, smtpload  # noqa: E402
import servers  # noqa: E402  (tests/, on the path through common)

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def run_load(load, impl, clamd_port, size, conc, sessions, per):
    env = base_env(impl, CLAMAV_HOST="127.0.0.1", CLAMAV_PORT=str(clamd_port))
    return smtpload(load, impl, ["echo", "clamav", "accept"], env, size, conc, sessions, per)


def main():
    if not servers.Clamd.EXE:
        print("clamd not installed: nothing to measure")
        return
    load = build_load()
    clamd = servers.Clamd("Eicar-Test-Signature:0:*:%s\n" % EICAR.hex(),
                          conf="MaxThreads 16\nMaxConnectionQueueLength 64\n")
    try:
        scenarios = [  # size, concurrency, sessions, messages per session
            (1024, 4, int(200 * SCALE), 5),
            (100 * 1024, 4, int(100 * SCALE), 2),
            (1 << 20, 2, int(30 * SCALE), 2),
        ]
        ims = impls("/usr/lib/mailfront/plugin-clamav.so")
        print(f"clamav scan bench: {len(ims)} implementation(s), {ROUNDS} alternating rounds, median msgs/s")
        table = Table(ims)
        for size, conc, sessions, per in scenarios:
            table.row(f"clamav {size // 1024} KiB x{conc}",
                      lambda i: run_load(load, i, clamd.port, size, conc, sessions, per))
    finally:
        clamd.stop()


if __name__ == "__main__":
    main()
