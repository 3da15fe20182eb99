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
import re
import shutil
import signal
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
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def build_load():
    out = os.path.join(BUILD, "bench", "smtpload")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
                    os.path.join(ROOT, "bench", "smtpload.c")], check=True)
    return out


def start_clamd(tmp):
    clamd = shutil.which("clamd") or "/usr/sbin/clamd"
    db = os.path.join(tmp, "db")
    os.mkdir(db)
    with open(os.path.join(db, "eicar.ndb"), "w") as f:
        f.write("Eicar-Test-Signature:0:*:%s\n" % EICAR.hex())
    port = harness.free_port()
    conf = os.path.join(tmp, "clamd.conf")
    with open(conf, "w") as f:
        f.write("DatabaseDirectory %s\nTCPSocket %d\nTCPAddr 127.0.0.1\nForeground yes\n"
                "LogFile %s\nBytecode no\nMaxThreads 16\nMaxConnectionQueueLength 64\n"
                % (db, port, os.path.join(tmp, "clamd.log")))
    p = subprocess.Popen([clamd, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    harness.wait_port(port, timeout=60)
    return p, port


def impls():
    res = [{"name": "ours", "argv": [harness.bin_path("mailfront")], "env": {"MODULE_PATH": harness.LIB}}]
    if os.path.exists(REF) and os.path.exists("/usr/lib/mailfront/plugin-clamav.so"):
        res.append({"name": "reference", "argv": [REF], "env": {}})
    return res


def run_load(load, impl, clamd_port, size, conc, sessions, per):
    env = {"PATH": "/usr/bin:/bin", "TCPLOCALHOST": "bench.example",
           "CLAMAV_HOST": "127.0.0.1", "CLAMAV_PORT": str(clamd_port)}
    env.update(impl["env"])
    port = harness.free_port()
    with harness.tcpserver(impl["argv"] + ["smtp", "echo", "clamav", "accept"], env=env, port=port,
                           limit=conc + 4):
        out = subprocess.run([load, str(port), str(conc), str(sessions), str(per), str(size)],
                             capture_output=True, text=True, timeout=600)
    m = re.search(r"msgs_per_sec=([\d.]+) failures=(\d+)", out.stdout)
    if not m or out.returncode != 0:
        raise RuntimeError(f"load failed for {impl['name']}: {out.stdout} {out.stderr}")
    return float(m.group(1)), int(m.group(2))


def main():
    if not shutil.which("clamd") and not os.path.exists("/usr/sbin/clamd"):
        print("clamd not installed: nothing to measure")
        return
    load = build_load()
    tmp = tempfile.mkdtemp(prefix="mfscanbench.")
    clamd, cport = start_clamd(tmp)
    try:
        scale = 0.25 if QUICK else 1.0
        scenarios = [  # size, concurrency, sessions, messages per session
            (1024, 4, int(200 * scale), 5),
            (100 * 1024, 4, int(100 * scale), 2),
            (1 << 20, 2, int(30 * scale), 2),
        ]
        ims = impls()
        print(f"clamav scan bench: {len(ims)} implementation(s), {ROUNDS} alternating rounds, median msgs/s")
        print(f"{'scenario':<22}" + "".join(f"{i['name']:>14}" for i in ims) + ("   ratio" if len(ims) > 1 else ""))
        for size, conc, sessions, per in scenarios:
            results = {i["name"]: [] for i in ims}
            fails = {i["name"]: 0 for i in ims}
            for _ in range(ROUNDS):
                for i in ims:
                    rate, failures = run_load(load, i, cport, size, conc, sessions, per)
                    results[i["name"]].append(rate)
                    fails[i["name"]] += failures
            med = {k: statistics.median(v) for k, v in results.items()}
            label = f"clamav {size // 1024} KiB x{conc}"
            line = f"{label:<22}" + "".join(f"{med[i['name']]:>14.1f}" for i in ims)
            if len(ims) > 1:
                line += f"   {med['ours'] / med['reference']:.2f}x"
            if any(fails.values()):
                line += "   failures: " + ", ".join(f"{k}={v}" for k, v in fails.items())
            print(line, flush=True)
    finally:
        clamd.send_signal(signal.SIGTERM)
        try:
            clamd.wait(10)
        except subprocess.TimeoutExpired:
            clamd.kill()
            clamd.wait()
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
