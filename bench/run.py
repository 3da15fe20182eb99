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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import harness  # noqa: E402

BUILD = harness.BUILD
REF = "/usr/sbin/mailfront"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
QUICK = bool(os.environ.get("BENCH_QUICK"))


def build_load():
    out = os.path.join(BUILD, "bench", "smtpload")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
                    os.path.join(ROOT, "bench", "smtpload.c")], check=True)
    return out


def impls():
    ours = {"name": "ours", "argv": [harness.bin_path("mailfront")], "env": {"MODULE_PATH": harness.LIB}}
    res = [ours]
    if os.path.exists(REF):
        res.append({"name": "reference", "argv": [REF], "env": {}})
    return res


def run_load(load, impl, backend, size, conc, sessions, per, qdir):
    env = {"PATH": "/usr/bin:/bin", "TCPLOCALHOST": "bench.example"}
    env.update(impl["env"])
    if backend == "queuedir":
        env["QUEUEDIR"] = qdir
    port = harness.free_port()
    argv = impl["argv"] + ["smtp", backend, "accept"]
    with harness.tcpserver(argv, env=env, port=port, limit=conc + 4):
        out = subprocess.run([load, str(port), str(conc), str(sessions), str(per), str(size)],
                             capture_output=True, text=True, timeout=600)
    m = re.search(r"msgs_per_sec=([\d.]+) failures=(\d+)", out.stdout)
    if not m or out.returncode != 0:
        raise RuntimeError(f"load failed for {impl['name']}: {out.stdout} {out.stderr}")
    if backend == "queuedir":
        for f in os.listdir(os.path.join(qdir, "new")):
            os.unlink(os.path.join(qdir, "new", f))
    return float(m.group(1))


def session_bytes(n, size):
    body = b"Subject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * max(1, size // 78) + b".\r\n"
    msg = b"MAIL FROM:<s@bench.example>\r\nRCPT TO:<r@bench.example>\r\nDATA\r\n" + body
    return b"EHLO bench.example\r\n" + msg * n + b"QUIT\r\n"


def instructions(impl, n, size):
    if not shutil.which("valgrind"):
        return None
    env = {"PATH": "/usr/bin:/bin", "TCPLOCALHOST": "bench.example"}
    env.update(impl["env"])
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + impl["argv"]
                       + ["smtp", "echo", "accept"], input=session_bytes(n, size), env=env,
                       capture_output=True, timeout=600)
    m = re.search(rb"Collected : (\d+)", p.stderr)
    return int(m.group(1)) if m else None


def main():
    load = build_load()
    qdir = tempfile.mkdtemp(prefix="mfbench.")
    for d in ("tmp", "new"):
        os.makedirs(os.path.join(qdir, d))
    scale = 0.25 if QUICK else 1.0
    scenarios = [
        ("echo", 1024, 8, int(400 * scale), 5),
        ("echo", 1 << 20, 4, int(40 * scale), 2),
        ("queuedir", 1024, 8, int(200 * scale), 5),
        ("queuedir", 1 << 20, 4, int(24 * scale), 2),
    ]
    ims = impls()
    print(f"mailfront bench: {len(ims)} implementation(s), {ROUNDS} alternating rounds, median msgs/s")
    print(f"{'scenario':<22}" + "".join(f"{i['name']:>14}" for i in ims) + ("   ratio" if len(ims) > 1 else ""))
    for backend, size, conc, sessions, per in scenarios:
        results = {i["name"]: [] for i in ims}
        for _ in range(ROUNDS):
            for i in ims:
                results[i["name"]].append(run_load(load, i, backend, size, conc, sessions, per, qdir))
        med = {k: statistics.median(v) for k, v in results.items()}
        label = f"{backend} {size // 1024} KiB x{conc}"
        line = f"{label:<22}" + "".join(f"{med[i['name']]:>14.1f}" for i in ims)
        if len(ims) > 1:
            line += f"   {med['ours'] / med['reference']:.2f}x"
        print(line, flush=True)
    print()
    print("instructions per 1 KiB message (callgrind, echo back end, one session):")
    for i in ims:
        a, b = instructions(i, 1, 1024), instructions(i, 41, 1024)
        if a is None or b is None:
            print(f"  {i['name']}: valgrind unavailable")
            continue
        print(f"  {i['name']:<10} start-up+1 msg: {a:>10}   per message: {(b - a) / 40:>10.0f}")
    shutil.rmtree(qdir, True)


if __name__ == "__main__":
    main()
