#!/usr/bin/env python3
"""Overhead of the relay back end: Postfix's smtp-source sends 1 KiB and
10 MiB messages to Postfix's smtp-sink directly, then through mailfront
(`mailfront smtp smtp accept` under tcpserver, $RELAY_HOST = the sink);
the figure is relay time / direct time for the same load.  For context,
the same load to `mailfront smtp echo accept` (the front end alone, no next
hop) is measured too: relay / echo is what relaying itself adds.

Not a test (no assertions on speed).  Postfix is not installed: the
package is unpacked by tests/test_relay_postfix.py's helper into $MF_CACHE.
Scenarios: 1 KiB x 2000 messages over 4 sessions that stay connected
(-d: the relay keeps its downstream connection), 1 KiB x 500 with one
session per message (process start and downstream connect included),
10 MiB x 8 over 2 sessions.  Environment: BENCH_ROUNDS (3), BENCH_QUICK=1
for a short run, MF_BUILD (default build/)."""
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import harness  # noqa: E402
from test_relay import stop_process as stop  # noqa: E402
from test_relay_postfix import postfix_tree  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
QUICK = bool(os.environ.get("BENCH_QUICK"))
SCENARIOS = [
    # name, message bytes, messages, sessions, stay connected
    ("1 KiB, 4 sessions, connected", 1024, 200 if QUICK else 2000, 4, True),
    ("1 KiB, one session each", 1024, 50 if QUICK else 500, 4, False),
    ("10 MiB, 2 sessions", 10 * 1024 * 1024, 2 if QUICK else 8, 2, True),
]


def start(argv, env, port):
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    harness.wait_port(port)
    return p


def source(tools, env, port, size, msgs, sessions, connected):
    argv = [os.path.join(tools, "smtp-source"), "-s", str(sessions), "-m", str(msgs), "-l", str(size),
            "-f", "bench@example.org", "-t", "sink@example.net"]
    if connected:
        argv.append("-d")
    t = time.perf_counter()
    p = subprocess.run(argv + ["127.0.0.1:%d" % port], env=env, capture_output=True, timeout=1800)
    if p.returncode != 0:
        sys.exit("relay_bench: smtp-source failed: %s" % p.stderr.decode(errors="replace")[-500:])
    return time.perf_counter() - t


def main():
    root = postfix_tree()
    tools = os.path.join(root, "usr/sbin")
    penv = dict(PATH="/usr/bin:/bin", LD_LIBRARY_PATH=os.path.join(root, "usr/lib/postfix"))
    tcpserver = shutil.which("tcpserver")
    if not tcpserver:
        sys.exit("relay_bench: tcpserver (ucspi-tcp) is needed")
    sink_port, relay_port, echo_port = harness.free_port(), harness.free_port(), harness.free_port()
    sink_argv = [os.path.join(tools, "smtp-sink"), "-c", "-m", "200", "127.0.0.1:%d" % sink_port, "256"]
    if os.geteuid() == 0:
        sink_argv[1:1] = ["-u", "nobody"]
    sink = start(sink_argv, penv, sink_port)
    menv = harness.base_env(RELAY_HOST="127.0.0.1:%d" % sink_port, RELAY_TIMEOUT=300)
    relay = start([tcpserver, "-q", "-R", "-H", "-c", "64", "-l", "mx.test", "127.0.0.1", str(relay_port),
                   harness.bin_path("mailfront"), "smtp", "smtp", "accept"], menv, relay_port)
    echo = start([tcpserver, "-q", "-R", "-H", "-c", "64", "-l", "mx.test", "127.0.0.1", str(echo_port),
                  harness.bin_path("mailfront"), "smtp", "echo", "accept"], harness.base_env(), echo_port)
    try:
        print("relay overhead: smtp-source -> [mailfront smtp smtp] -> smtp-sink vs smtp-source -> smtp-sink")
        print("(echo: smtp-source -> mailfront smtp echo, the front end without a next hop; median of %d)" % ROUNDS)
        print("%-30s %10s %10s %10s %13s %11s" % ("scenario", "direct s", "echo s", "relay s", "relay/direct", "relay/echo"))
        for name, size, msgs, sessions, connected in SCENARIOS:
            runs = {"direct": [], "echo": [], "relay": []}
            for _ in range(ROUNDS):
                for key, port in (("direct", sink_port), ("echo", echo_port), ("relay", relay_port)):
                    runs[key].append(source(tools, penv, port, size, msgs, sessions, connected))
            d, e, v = (statistics.median(runs[k]) for k in ("direct", "echo", "relay"))
            print("%-30s %10.3f %10.3f %10.3f %13.2f %11.2f" % (name, d, e, v, v / d, v / e))
            mib = size * msgs / (1024 * 1024)
            print("%-30s %10.1f %10.1f %10.1f   MiB/s, %d messages" % ("", mib / d, mib / e, mib / v, msgs))
    finally:
        stop(echo)
        stop(relay)
        stop(sink)


if __name__ == "__main__":
    main()
