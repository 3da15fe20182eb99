"""What the SMTP benchmarks share: one home for the load generator, the
implementations compared, one measured run, the alternating rounds and
the side-by-side table, and the callgrind instruction count.

build_load() compiles bench/smtpload.c into $MF_BUILD/bench/smtpload.
impls() lists ours and, when installed, Debian's 2.12 (a black box).
smtpload() runs one tcpserver with a mailfront per connection and drives
it with smtpload; it returns (msgs/s, failures) or raises RuntimeError.
Table prints the header and one row of medians per scenario.  callgrind()
counts the instructions of one session on stdin (None without valgrind).
Environment: BENCH_ROUNDS (3), BENCH_QUICK=1 for a short run.
Nothing here asserts: benchmarks measure, tests check.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(os.path.join(ROOT, "tests"))   # after bench/: bench/run.py is not tests/run.py
import harness  # noqa: E402

BUILD = harness.BUILD
REF = "/usr/sbin/mailfront"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
QUICK = bool(os.environ.get("BENCH_QUICK"))
SCALE = 0.25 if QUICK else 1.0


def build_load():
    out = os.path.join(BUILD, "bench", "smtpload")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
                    os.path.join(ROOT, "bench", "smtpload.c")], check=True, timeout=120)
    return out


def impls(*ref_files):
    """Ours, and the reference when it and every file of `ref_files` (the
    2.12 plug-ins a chain needs) are installed."""
    res = [{"name": "ours", "argv": [harness.bin_path("mailfront")], "env": {"MODULE_PATH": harness.LIB}}]
    if all(os.path.exists(f) for f in (REF,) + ref_files):
        res.append({"name": "reference", "argv": [REF], "env": {}})
    return res


def base_env(impl, **extra):
    env = {"PATH": "/usr/bin:/bin", "TCPLOCALHOST": "bench.example"}
    env.update(extra)
    env.update(impl["env"])
    return env


def smtpload(load, impl, modules, env, size, conc, sessions, per):
    """One measured run: `mailfront smtp MODULES...` of impl under tcpserver
    with env, `sessions` sessions of `per` messages of `size` bytes,
    `conc` at a time; returns (msgs/s, failures)."""
    port = harness.free_port()
    with harness.tcpserver(impl["argv"] + ["smtp"] + list(modules), env=env, port=port, limit=conc + 4):
        out = subprocess.run([load, str(port), str(conc), str(sessions), str(per), str(size)],
                             capture_output=True, text=True, timeout=600)
    m = re.search(r"msgs_per_sec=([\d.]+) failures=(\d+)", out.stdout)
    if not m or out.returncode != 0:
        raise RuntimeError(f"load failed for {impl['name']}: {out.stdout} {out.stderr}")
    return float(m.group(1)), int(m.group(2))


class Table:
    """The side-by-side table: a header naming the implementations, then
    per scenario the median of ROUNDS alternating runs and the ratio."""

    def __init__(self, ims):
        self.ims = ims
        print(f"{'scenario':<22}" + "".join(f"{i['name']:>14}" for i in ims) + ("   ratio" if len(ims) > 1 else ""))

    def row(self, label, measure):
        """measure(impl) -> msgs/s or (msgs/s, failures), called ROUNDS
        times per implementation, alternating; prints the medians (and the
        failures, if any) and returns the medians by name."""
        results = {i["name"]: [] for i in self.ims}
        fails = {i["name"]: 0 for i in self.ims}
        for _ in range(ROUNDS):
            for i in self.ims:
                got = measure(i)
                rate, failures = got if isinstance(got, tuple) else (got, 0)
                results[i["name"]].append(rate)
                fails[i["name"]] += failures
        med = {k: statistics.median(v) for k, v in results.items()}
        line = f"{label:<22}" + "".join(f"{med[i['name']]:>14.1f}" for i in self.ims)
        if len(self.ims) > 1:
            line += f"   {med['ours'] / med['reference']:.2f}x"
        if any(fails.values()):
            line += "   failures: " + ", ".join(f"{k}={v}" for k, v in fails.items())
        print(line, flush=True)
        return med


def session_bytes(n, size):
    body = b"Subject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * max(1, size // 78) + b".\r\n"
    msg = b"MAIL FROM:<s@bench.example>\r\nRCPT TO:<r@bench.example>\r\nDATA\r\n" + body
    return b"EHLO bench.example\r\n" + msg * n + b"QUIT\r\n"


def callgrind(argv, data, env):
    """Instructions executed by argv on stdin `data` (None without valgrind
    or when callgrind fails)."""
    if not shutil.which("valgrind"):
        return None
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + argv, input=data,
                       env=env, capture_output=True, timeout=600)
    m = re.search(rb"Collected : (\d+)", p.stderr)
    return int(m.group(1)) if m else None


def print_instructions(ims, count, failed="valgrind unavailable"):
    """The per-message instruction lines: count(impl, n) for 1 and 41
    messages of 1 KiB; (Ir(41) - Ir(1)) / 40 per message."""
    for i in ims:
        a, b = count(i, 1), count(i, 41)
        if a is None or b is None:
            print(f"  {i['name']}: {failed}")
            continue
        print(f"  {i['name']:<10} start-up+1 msg: {a:>10}   per message: {(b - a) / 40:>10.0f}")
