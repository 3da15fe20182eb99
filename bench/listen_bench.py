#!/usr/bin/env python3
"""The built-in listener: mailfrontd against the same sessions under
tcpserver (the original 2.12, and our own mailfront) and against Postfix's
do-nothing smtp-sink, side by side in one run.

Columns: mailfrontd as it runs by default (a session process serves up
to -n 100 connections of one client), mailfrontd -n 1 (a process per
connection), our mailfront and the original under tcpserver, smtp-sink.

Not a test (no assertions on speed).  Load generator: bench/smtpload.c
(C, forked workers), the same for every server; one connection per
message, 20 parallel clients, messages of 1 KiB, 100 KiB and 10 MiB
(`smtp echo accept`; every server's stderr goes to /dev/null).  smtp-sink
comes from Debian's postfix package, fetched with `apt-get download
postfix` and unpacked with `dpkg -x` into a cache directory (never
installed); without it that column is left out.

Then: STARTTLS sessions per second (EHLO, STARTTLS, EHLO, QUIT; 8 client
processes using Python's ssl) for mailfrontd against our mailfront under
tcpserver; a storm of 10,000 connections (greeting, EHLO, QUIT; 200
parallel clients) that must see no failure; the parent's RSS over
100,000 connections (sampled every 10,000); and a slow-client flood from
127.0.0.2 capped by -C while 127.0.0.1 keeps sending.

First, the floor of any process-per-connection server on this machine:
the wall and CPU time of fork + _exit + waitpid of a minimal C process
(FLOOR_C below), and the connections per second that CPU time allows on
all CPUs: mailfrontd cannot beat it, whatever it does per session.
Then the load average (the figures depend on it: other work on the
machine takes CPU from every column).

Environment: BENCH_ROUNDS (3; the median is shown), BENCH_QUICK=1 (a
short run), BENCH_POSTFIX_DIR (cache of the unpacked package, default
/tmp/mf-bench-postfix), MF_BUILD (default build/)."""
import glob
import multiprocessing
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import harness  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "bench"))
from common import build_load  # noqa: E402

BUILD = harness.BUILD
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
QUICK = bool(os.environ.get("BENCH_QUICK"))
PFDIR = os.environ.get("BENCH_POSTFIX_DIR", "/tmp/mf-bench-postfix")
REF = "/usr/sbin/mailfront"
CONC = 20
TIMEOUT = 900


FLOOR_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double cpu(int who)
{
  struct rusage r;
  getrusage(who, &r);
  return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec;
}
int main(int argc, char** argv)
{
  int n = argc > 1 ? atoi(argv[1]) : 2000;
  struct timespec a, b;
  double s0 = cpu(RUSAGE_SELF), c0 = cpu(RUSAGE_CHILDREN);
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; i++) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    if (p < 0 || waitpid(p, 0, 0) != p) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("wall_us=%.1f cpu_us=%.1f\n", ((b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3) / n,
         (cpu(RUSAGE_SELF) - s0 + cpu(RUSAGE_CHILDREN) - c0) / n);
  return 0;
}
"""


def fork_floor():
    """fork + _exit + waitpid of a minimal process: (wall us, CPU us)."""
    d = os.path.join(BUILD, "bench")
    os.makedirs(d, exist_ok=True)
    src, exe = os.path.join(d, "fork_floor.c"), os.path.join(d, "fork_floor")
    with open(src, "w") as f:
        f.write(FLOOR_C)
    subprocess.run(["cc", "-O2", "-o", exe, src], check=True, timeout=120)
    out = subprocess.run([exe, "2000"], capture_output=True, text=True, timeout=TIMEOUT, check=True).stdout
    m = re.search(r"wall_us=([\d.]+) cpu_us=([\d.]+)", out)
    wall, cpu = float(m.group(1)), float(m.group(2))
    ncpu = os.cpu_count() or 1
    print(f"== floor: fork + _exit + waitpid of a minimal C process: {wall:.0f} us wall, {cpu:.0f} us CPU "
          f"-> at most {ncpu * 1e6 / cpu:.0f} processes/s on {ncpu} CPUs (load average "
          f"{os.getloadavg()[0]:.2f})")
    return cpu


def postfix_sink():
    """Path of smtp-sink unpacked from the postfix .deb, or None."""
    sink = os.path.join(PFDIR, "root", "usr", "sbin", "smtp-sink")
    if os.path.exists(sink):
        return sink
    os.makedirs(PFDIR, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", "postfix"], cwd=PFDIR, check=True, capture_output=True, timeout=300)
        deb = sorted(glob.glob(os.path.join(PFDIR, "postfix_*.deb")))[-1]
        subprocess.run(["dpkg", "-x", deb, os.path.join(PFDIR, "root")], check=True, timeout=300)
    except (OSError, subprocess.SubprocessError, IndexError) as e:
        print(f"(no smtp-sink: {e})")
        return None
    return sink if os.path.exists(sink) else None


class Server:
    """One listener on 127.0.0.1:port, stopped by its process group."""

    def __init__(self, argv, env, port):
        self.port = port
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        end = time.time() + 20
        while time.time() < end:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.recv(100)
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start: %s" % argv)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def base_env(**extra):
    env = {"PATH": "/usr/bin:/bin", "TCPLOCALHOST": "bench.example"}
    env.update(extra)
    return env


def servers(sink, tls_env=None):
    """name -> function(port) starting that server."""
    tcps = shutil.which("tcpserver")
    ours_env = base_env(MODULE_PATH=harness.LIB, **(tls_env or {}))
    out = {
        "mailfrontd": lambda p: Server([harness.bin_path("mailfrontd"), "-q", "-R", "-H", "-c", "200",
                                        "-l", "bench.example", "127.0.0.1", str(p), "smtp", "echo", "accept"],
                                       ours_env, p),
        # one process per connection (strict isolation): the design before -n
        "mailfrontd -n 1": lambda p: Server([harness.bin_path("mailfrontd"), "-q", "-R", "-H", "-c", "200", "-n", "1",
                                             "-l", "bench.example", "127.0.0.1", str(p), "smtp", "echo", "accept"],
                                            ours_env, p),
        "ours+tcpserver": lambda p: Server([tcps, "-R", "-H", "-c", "200", "-l", "bench.example", "127.0.0.1",
                                            str(p), harness.bin_path("mailfront"), "smtp", "echo", "accept"],
                                           ours_env, p),
    }
    if tls_env is None and os.path.exists(REF):
        out["original+tcpserver"] = lambda p: Server([tcps, "-R", "-H", "-c", "200", "-l", "bench.example",
                                                      "127.0.0.1", str(p), REF, "smtp", "echo", "accept"],
                                                     base_env(), p)
    if tls_env is None and sink:
        libdir = os.path.join(PFDIR, "root", "usr", "lib", "postfix")
        out["smtp-sink"] = lambda p: Server([sink, "-u", "nobody", "-c", "127.0.0.1:%d" % p, "256"],
                                            base_env(LD_LIBRARY_PATH=libdir), p)
    return out


def run_load(load, port, conc, sessions, per, size):
    out = subprocess.run([load, str(port), str(conc), str(sessions), str(per), str(size)],
                         capture_output=True, text=True, timeout=TIMEOUT)
    m = re.search(r"seconds=([\d.]+) msgs_per_sec=([\d.]+) failures=(\d+)", out.stdout)
    if not m:
        raise RuntimeError("load failed: %s %s" % (out.stdout, out.stderr))
    return float(m.group(1)), float(m.group(2)), int(m.group(3))


def throughput(load, sink, floor_cpu_us=None):
    scale = 0.25 if QUICK else 1.0
    sizes = [("1 KiB", 1024, int(2000 * scale)), ("100 KiB", 100 * 1024, int(400 * scale)),
             ("10 MiB", 10 << 20, max(4, int(20 * scale)))]
    srv = servers(sink)
    names = list(srv)
    print(f"\n== messages/s, one connection per message, {CONC} parallel clients "
          f"(median of {ROUNDS}; failures in brackets)")
    print(f"{'size':<9}" + "".join(f"{n:>20}" for n in names))
    results = {}
    for label, size, n in sizes:
        rates = {k: [] for k in names}
        fails = {k: 0 for k in names}
        for _ in range(ROUNDS):
            for name in names:
                port = harness.free_port()
                s = srv[name](port)
                try:
                    _, rate, f = run_load(load, port, CONC, n, 1, size)
                finally:
                    s.stop()
                rates[name].append(rate)
                fails[name] += f
        med = {k: statistics.median(v) for k, v in rates.items()}
        results[label] = med
        print(f"{label:<9}" + "".join(f"{med[k]:>14.1f} [{fails[k]:>2}]" for k in names))
    print("ratios:")
    for label in results:
        med = results[label]
        for ours in ("mailfrontd", "mailfrontd -n 1"):
            parts = []
            for other in ("original+tcpserver", "ours+tcpserver", "smtp-sink"):
                if other in med and med[other] > 0:
                    parts.append(f"{ours}/{other} = {med[ours] / med[other]:.2f}x")
            print(f"  {label:<8} " + ", ".join(parts))
    sinkrate = results.get("1 KiB", {}).get("smtp-sink")
    if floor_cpu_us and sinkrate:
        ceiling = (os.cpu_count() or 1) * 1e6 / floor_cpu_us
        print(f"  0.5x smtp-sink at 1 KiB = {sinkrate / 2:.0f} connections/s; a bare fork+exit+wait allows "
              f"{ceiling:.0f}/s here ({ceiling / sinkrate:.2f}x smtp-sink): the ceiling of one process per connection")
    print(f"  (load average after the throughput runs: {' '.join('%.2f' % x for x in os.getloadavg())})")


def tls_worker(args):
    port, n = args
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    done = 0
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = raw.makefile("rb")
            f.readline()
            raw.sendall(b"EHLO bench.example\r\n")
            while not f.readline().startswith(b"250 "):
                pass
            raw.sendall(b"STARTTLS\r\n")
            if not f.readline().startswith(b"220"):
                continue
            with ctx.wrap_socket(raw) as t:
                tf = t.makefile("rb")
                t.sendall(b"EHLO bench.example\r\n")
                while not tf.readline().startswith(b"250 "):
                    pass
                t.sendall(b"QUIT\r\n")
                if tf.readline().startswith(b"221"):
                    done += 1
    return done


def starttls():
    d = tempfile.mkdtemp(prefix="mfbench.tls.")
    pem = os.path.join(d, "server.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=bench.example", "-keyout", pem + ".key", "-out", pem],
                   check=True, capture_output=True, timeout=60)
    with open(pem, "a") as f, open(pem + ".key") as k:
        f.write(k.read())
    srv = servers(None, tls_env={"TLS_CERTFILE": pem})
    workers, per = 8, (50 if QUICK else 150)
    print(f"\n== STARTTLS sessions/s ({workers} client processes x {per} sessions, median of {ROUNDS})")
    rates = {k: [] for k in srv}
    with multiprocessing.Pool(workers) as pool:
        for _ in range(ROUNDS):
            for name in srv:
                port = harness.free_port()
                s = srv[name](port)
                try:
                    t0 = time.time()
                    ok = sum(pool.map(tls_worker, [(port, per)] * workers))
                    rates[name].append(ok / (time.time() - t0))
                finally:
                    s.stop()
    med = {k: statistics.median(v) for k, v in rates.items()}
    for k, v in med.items():
        print(f"  {k:<16} {v:8.1f} sessions/s")
    for ours in ("mailfrontd", "mailfrontd -n 1"):
        print(f"  ratio {ours}/ours+tcpserver = {med[ours] / med['ours+tcpserver']:.2f}x")
    shutil.rmtree(d, True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def storm_and_rss(load):
    port = harness.free_port()
    s = servers(None)["mailfrontd"](port)
    try:
        n = 2000 if QUICK else 10000
        secs, _, fails = run_load(load, port, 200, n, 0, 0)
        print(f"\n== connection storm: {n} connections (200 parallel, EHLO + QUIT): "
              f"{n / secs:.0f} connections/s, failures={fails}")
        total = 20000 if QUICK else 100000
        step = total // 10
        samples = [rss_kib(s.proc.pid)]
        for _ in range(10):
            _, _, f = run_load(load, port, 50, step, 0, 0)
            fails += f
            samples.append(rss_kib(s.proc.pid))
        print(f"== parent RSS over {total} connections (KiB, every {step}): {samples}; failures={fails}")
        print(f"   growth after the first {step}: {samples[-1] - samples[1]} KiB")
    finally:
        s.stop()


def flood(load):
    """-C 30: 60 idle connections from 127.0.0.2 while 127.0.0.1 sends mail
    with 4 clients (under its own cap, with room for sessions whose client
    has gone but whose process has not ended yet: -C counts processes)."""
    port = harness.free_port()
    s = Server([harness.bin_path("mailfrontd"), "-q", "-R", "-H", "-c", "150", "-C", "30", "-l", "bench.example",
                "127.0.0.1", str(port), "smtp", "echo", "accept"], base_env(MODULE_PATH=harness.LIB), port)
    idle, refused = [], 0
    try:
        for _ in range(60):
            c = socket.socket()
            c.settimeout(10)
            c.bind(("127.0.0.2", 0))
            c.connect(("127.0.0.1", port))
            first = c.recv(100)
            if first.startswith(b"421"):
                refused += 1
                c.close()
            else:
                idle.append(c)
        _, rate, fails = run_load(load, port, 4, 200 if QUICK else 1000, 1, 1024)
        print(f"\n== slow-client flood (-C 30): 60 idle connections from 127.0.0.2: {len(idle)} held, "
              f"{refused} refused with 421; meanwhile 127.0.0.1 (4 clients): {rate:.1f} msgs/s, failures={fails}")
    finally:
        for c in idle:
            c.close()
        s.stop()


def main():
    if not os.path.exists(harness.bin_path("mailfrontd")):
        sys.exit("build mailfrontd first (make)")
    load = build_load()
    sink = postfix_sink()
    floor = fork_floor()
    throughput(load, sink, floor)
    starttls()
    storm_and_rss(load)
    flood(load)


if __name__ == "__main__":
    main()
