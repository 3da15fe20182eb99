#!/usr/bin/env python3
"""Cost of the shared-state policies (not a test; nothing is asserted).

The same chain with and without greylist + ratelimit:
  base:   smtp echo counters add-received accept
  redis:  smtp echo counters greylist ratelimit add-received accept
against one redis-server started here (loopback TCP with a password, and
its UNIX socket), every ratelimit limit set (high enough never to refuse)
and greylisting with a zero delay (every triplet passes on its first try,
so each recipient still costs its script run).  Per message that is four
Redis round trips: MAIL (message limits checked), RCPT (greylist triplet,
recipient limits), end of data (message limits counted).  A tcpserver
starts one mailfront per connection; bench/smtpload drives concurrent
pipelined sessions as in bench/run.py.  Runs alternate, ROUNDS times;
printed: median messages/s of each chain and the ratio redis/base, and
the Redis commands per message counted by the server.
Environment: BENCH_ROUNDS (3), BENCH_QUICK=1 for a short run."""
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import build_load, harness  # noqa: E402  (puts tests/ on the path)
from test_redis import RedisServer, command_calls  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
QUICK = bool(os.environ.get("BENCH_QUICK"))
BASE = ["counters", "add-received", "accept"]
REDIS = ["counters", "greylist", "ratelimit", "add-received", "accept"]
HIGH = "1000000/60"


def env_for(redis, via):
    env = {"PATH": "/usr/bin:/bin", "TCPLOCALHOST": "bench.example", "MODULE_PATH": harness.LIB,
           "DATABYTES": "10000000", "GREYLIST_DELAY": "0", "REDIS_PASSWORD": redis.password}
    if via == "unix":
        env["REDIS_PATH"] = redis.path
    else:
        env["REDIS_HOST"] = f"127.0.0.1:{redis.port}"
    for v in ("CONN_PER_IP", "MSGS_PER_IP", "RCPTS_PER_IP", "MSGS_PER_SENDER", "RCPTS_PER_DOMAIN"):
        env["RATELIMIT_" + v] = HIGH
    return env


def run_load(load, plugins, env, size, conc, sessions, per):
    port = harness.free_port()
    argv = [harness.bin_path("mailfront"), "smtp", "echo"] + plugins
    with harness.tcpserver(argv, env=env, port=port, limit=conc + 4):
        out = subprocess.run([load, str(port), str(conc), str(sessions), str(per), str(size)],
                             capture_output=True, text=True, timeout=600)
    m = re.search(r"messages=(\d+) .*msgs_per_sec=([\d.]+) failures=(\d+)", out.stdout)
    if not m or out.returncode != 0 or m.group(3) != "0":
        raise RuntimeError(f"load failed: {out.stdout} {out.stderr}")
    return int(m.group(1)), float(m.group(2))


def main():
    load = build_load()
    redis = RedisServer()
    try:
        scale = 0.25 if QUICK else 1.0
        scenarios = [(1024, 8, int(400 * scale), 5)]
        print("redis bench: smtp echo " + " ".join(BASE) + "  vs  smtp echo " + " ".join(REDIS))
        print(f"  {ROUNDS} alternating rounds, median msgs/s; ratio = with redis / without")
        print(f"{'scenario':<26}{'base':>12}{'redis':>12}{'ratio':>9}{'cmds/msg':>10}")
        for via in ("tcp", "unix"):
            env = env_for(redis, via)
            for size, conc, sessions, per in scenarios:
                base, withr, cmds = [], [], []
                for _ in range(ROUNDS):
                    base.append(run_load(load, BASE, env, size, conc, sessions, per)[1])
                    redis.cmd("FLUSHALL")
                    redis.cmd("CONFIG", "RESETSTAT")
                    n, rate = run_load(load, REDIS, env, size, conc, sessions, per)
                    withr.append(rate)
                    calls = command_calls(redis)
                    cmds.append((calls.get("evalsha", 0) + calls.get("eval", 0)) / n)
                b, r = statistics.median(base), statistics.median(withr)
                name = f"{size // 1024} KiB x{conc} redis/{via}"
                print(f"{name:<26}{b:>12.1f}{r:>12.1f}{r / b:>8.2f}x{statistics.median(cmds):>10.2f}", flush=True)
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
