#!/usr/bin/python3
"""Soak: many concurrent SMTP sessions for a long time against a listener
(ucspi-tcp's tcpserver running build/bin/mailfront, or build/bin/mailfrontd),
both with `smtp queuedir accept` on 127.0.0.1.

Not a benchmark of speed: it checks that under a sustained mixed load no good
session fails, no acknowledged message is lost, no session crashes, and the
listener's memory and file descriptors stay flat.  Standard library only
(asyncio); run with Debian's /usr/bin/python3.  `make soak` runs it with its
defaults; see docs/soak.md.

Client mix (each of --clients tasks loops, picking a kind by weight):
  normal     45  EHLO, one message of 1 KiB .. 1 MiB (log-spread sizes), QUIT
  pipelined  15  EHLO, 2..5 messages with MAIL/RCPT/RCPT/DATA in one write
  slowdrip   10  a small message sent one byte every 150..400 ms
  abandoned  18  closes before the greeting, mid-command or mid-DATA
                 (half of those with an RST)
  hostile    12  garbage with NUL bytes, an overlong line, BDAT with bad
                 sizes, 10,000 RCPTs
Good kinds (normal, pipelined, slowdrip) fail on any unexpected reply,
timeout or reset; a hostile session fails only when the server does not end
it within the deadline after QUIT (a hang).  Any session that ends by a
signal (listener log) or a sanitizer report fails the run.

Every 10 s: the listener's RSS and fd count (/proc), sessions done, messages
queued (files in new/, which are removed as they arrive), errors.  Exit
status 1 when a good session failed, a message was lost, a session crashed,
or the listener grew beyond the bounds: RSS more than --rss-bound KiB above
its first sample under load (default 2048), or more open fds when idle after
the run than when idle before it."""
import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("MF_BUILD", os.path.join(ROOT, "build"))
SANITIZED = bool(os.environ.get("MF_SANITIZED"))

WEIGHTS = {"normal": 45, "pipelined": 15, "slowdrip": 10, "abandoned": 18, "hostile": 12}
GOOD = ("normal", "pipelined", "slowdrip")
IO_TIMEOUT = 60.0        # every single read/write/connect
SERVER_TIMEOUT = 30      # the server's $TIMEOUT (slow-drip bytes come far faster)
DRAIN_SECONDS = 150      # how long sessions in progress may take after the end
SIZES = [1 << 10, 3 << 10, 10 << 10, 30 << 10, 100 << 10, 300 << 10, 1 << 20]


class Failure(Exception):
    pass


def make_body(size, seed):
    """A message of about `size` bytes, already dot-stuffed, ending in CRLF;
    some lines start with '.' to exercise stuffing."""
    rnd = random.Random(seed)
    head = (f"From: soak@example.com\r\nTo: rcpt@example.com\r\nSubject: soak {size}\r\n"
            f"Message-ID: <soak.{seed}@example.com>\r\n\r\n").encode()
    lines = [head]
    n = len(head)
    i = 0
    while n < size:
        word = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
        line = (("." if i % 37 == 5 else "") + (word + " ") * 9).encode()
        if line.startswith(b"."):
            line = b"." + line
        lines.append(line + b"\r\n")
        n += len(line) + 2
        i += 1
    return b"".join(lines)


class Stats:
    def __init__(self):
        self.done = {k: 0 for k in WEIGHTS}
        self.failed = {k: 0 for k in WEIGHTS}
        self.acked = 0          # messages that got 250 after the final dot
        self.unsure = 0         # messages sent completely whose reply never came
        self.errors = []        # first failures, for the report

    def fail(self, kind, why):
        self.failed[kind] += 1
        if len(self.errors) < 30:
            self.errors.append(f"{kind}: {why}")
            print(f"   failure: {kind}: {why}", flush=True)


class Conn:
    def __init__(self, r, w):
        self.r, self.w = r, w

    async def send(self, data):
        self.w.write(data)
        await asyncio.wait_for(self.w.drain(), IO_TIMEOUT)

    async def reply(self):
        """One (possibly multi-line) reply: (code, text)."""
        text = []
        while True:
            line = await asyncio.wait_for(self.r.readline(), IO_TIMEOUT)
            if not line.endswith(b"\n"):
                raise Failure(f"connection closed (after {text!r})")
            text.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return line[:3], b"".join(text)

    async def expect(self, code, what):
        c, t = await self.reply()
        if c != code:
            raise Failure(f"{what}: expected {code.decode()}, got {t[:200]!r}")
        return t

    def close(self, rst=False):
        if rst:
            sock = self.w.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                except OSError:
                    pass
        self.w.close()


async def connect(port):
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, limit=1 << 20), IO_TIMEOUT)
    return Conn(r, w)


class Soak:
    def __init__(self, port, stats, bodies, rnd):
        self.port, self.stats, self.bodies, self.rnd = port, stats, bodies, rnd

    async def normal(self):
        c = await connect(self.port)
        try:
            await c.expect(b"220", "greeting")
            await c.send(b"EHLO soak.example\r\n")
            await c.expect(b"250", "EHLO")
            await self.message(c, self.rnd.choice(self.bodies), pipelined=False)
            await c.send(b"QUIT\r\n")
            await c.expect(b"221", "QUIT")
        finally:
            c.close()

    async def message(self, c, body, pipelined):
        env = b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
        if pipelined:
            await c.send(env)
            for what in ("MAIL", "RCPT", "RCPT"):
                await c.expect(b"250", what)
        else:
            for line in env.split(b"\r\n")[:3]:
                await c.send(line + b"\r\n")
                await c.expect(b"250", line[:4].decode())
            await c.send(b"DATA\r\n")
        await c.expect(b"354", "DATA")
        await c.send(body + b".\r\n")
        await self.end_of_data(c)

    async def end_of_data(self, c):
        """The reply to a message's end: acked on 250; a message without a
        reply is unsure (queued or not, the client cannot know)."""
        try:
            await c.expect(b"250", "end of data")
        except (Failure, OSError, asyncio.TimeoutError):
            self.stats.unsure += 1
            raise
        self.stats.acked += 1

    async def pipelined(self):
        c = await connect(self.port)
        try:
            await c.expect(b"220", "greeting")
            await c.send(b"EHLO soak.example\r\n")
            t = await c.expect(b"250", "EHLO")
            if b"PIPELINING" not in t:
                raise Failure("PIPELINING not advertised")
            for i in range(self.rnd.randint(2, 5)):
                if i:
                    await c.send(b"RSET\r\n")
                    await c.expect(b"250", "RSET")
                await self.message(c, self.rnd.choice(self.bodies[:5]), pipelined=True)
            await c.send(b"QUIT\r\n")
            await c.expect(b"221", "QUIT")
        finally:
            c.close()

    async def slowdrip(self):
        c = await connect(self.port)
        rnd = self.rnd

        async def drip(data):
            for i in range(len(data)):
                await c.send(data[i:i + 1])
                await asyncio.sleep(rnd.uniform(0.15, 0.4))
        try:
            await c.expect(b"220", "greeting")
            for cmd, code in ((b"HELO drip.example\r\n", b"250"), (b"MAIL FROM:<d@example.com>\r\n", b"250"),
                              (b"RCPT TO:<r@example.com>\r\n", b"250"), (b"DATA\r\n", b"354")):
                await drip(cmd)
                await c.expect(code, cmd[:4].decode())
            await drip(b"Subject: drip\r\n\r\nslow\r\n.\r\n")
            await self.end_of_data(c)
            await drip(b"QUIT\r\n")
            await c.expect(b"221", "QUIT")
        finally:
            c.close()

    async def abandoned(self):
        """Errors here are not failures: the point is the server's side."""
        rnd = self.rnd
        how = rnd.choice(("before-greeting", "mid-command", "mid-envelope", "mid-data"))
        c = await connect(self.port)
        try:
            if how != "before-greeting":
                await c.expect(b"220", "greeting")
                if how == "mid-command":
                    await c.send(b"EHLO soak.example\r\nMAIL FROM:<half@exam")
                elif how == "mid-envelope":
                    await c.send(b"EHLO soak.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
                else:
                    await c.send(b"HELO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
                    for _ in range(4):
                        await c.reply()
                    body = rnd.choice(self.bodies)
                    await c.send(body[:rnd.randint(1, len(body) - 1)])
                await asyncio.sleep(rnd.uniform(0, 0.5))
        except (Failure, OSError, asyncio.TimeoutError):
            pass
        finally:
            c.close(rst=rnd.random() < 0.5)

    async def hostile(self):
        rnd = self.rnd
        how = rnd.choice(("garbage", "overlong", "bdat", "rcpts"))
        c = await connect(self.port)
        try:
            await c.expect(b"220", "greeting")
            if how == "garbage":
                junk = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(100, 20000)))
                await c.send(b"EHLO \x00\x00nul\r\n" + junk + b"\r\nMAIL FROM:<\x00@x>\r\n")
            elif how == "overlong":
                await c.send(b"EHLO " + b"x" * rnd.randint(5000, 300000) + b"\r\n"
                             + b"MAIL FROM:<" + b"y" * 100000 + b"@example.com>\r\n")
            elif how == "bdat":
                await c.send(b"EHLO soak.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
                             b"BDAT 18446744073709551616 LAST\r\nBDAT -1\r\nBDAT abc LAST\r\n"
                             b"BDAT 99999999999\r\n0123456789\r\nBDAT 5 LAST\r\nabcdefghij\r\n")
            else:
                await c.send(b"EHLO soak.example\r\nMAIL FROM:<many@example.com>\r\n")
                rcpts = b"".join(b"RCPT TO:<u%d@example.com>\r\n" % i for i in range(10000))
                await c.send(rcpts + b"RSET\r\n")
            await c.send(b"QUIT\r\n")
        except (OSError, asyncio.TimeoutError):
            c.close()
            return          # the server may close first
        try:
            # the server must end the session: 221 or a close, within the deadline
            end = time.monotonic() + 5 * IO_TIMEOUT
            tail = b"\n"
            while time.monotonic() < end:
                data = await asyncio.wait_for(c.r.read(1 << 16), IO_TIMEOUT)
                if not data or re.search(rb"\n221 ", tail + data):
                    return
                tail = data[-8:]
            raise Failure(f"{how}: no end after QUIT")
        except (ConnectionError, BrokenPipeError):
            return
        except asyncio.TimeoutError:
            raise Failure(f"{how}: server silent after QUIT (hang)")
        finally:
            c.close()


async def client_loop(soak, kind_pick, stop_at, stats):
    while time.monotonic() < stop_at:
        kind = kind_pick()
        try:
            await getattr(soak, kind)()
            stats.done[kind] += 1
        except Failure as e:
            if kind != "abandoned":
                stats.fail(kind, str(e))
            else:
                stats.done[kind] += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            if kind in GOOD or (kind == "hostile" and isinstance(e, asyncio.TimeoutError)):
                stats.fail(kind, f"{type(e).__name__}: {e}")
            else:
                stats.done[kind] += 1


class LogWatch:
    """Scans the listener's log (a file: a busy server never waits for this
    script) for sessions ended by a signal and sanitizer reports.
    tcpserver logs `end PID status WSTAT` (the raw wait status: a signal is
    in its low 7 bits); mailfrontd `end ... signal=SEGV`.  Anchored at line
    starts: a client's words logged by a session never match."""
    TCPS_END = re.compile(rb"^tcpserver: end \d+ status (\d+|crashed)$", re.M)
    OTHER = re.compile(rb"^(mailfrontd\[\d+\]: end .*signal=.*|==\d+==ERROR: AddressSanitizer.*"
                       rb"|\S+:\d+:\d+: runtime error:.*)$", re.M)

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.crashes = []
        self.lines = 0
        self.lock = threading.Lock()

    def scan(self):
        with self.lock, open(self.path, "rb") as f:
            f.seek(self.pos)
            while True:
                chunk = f.read(1 << 22)
                cut = chunk.rfind(b"\n") + 1
                if not cut:
                    break
                chunk = chunk[:cut]
                self.pos += cut
                f.seek(self.pos)
                self.lines += chunk.count(b"\n")
                bad = [m.group(0) for m in self.TCPS_END.finditer(chunk)
                       if m.group(1) == b"crashed" or int(m.group(1)) & 0x7f]
                bad += [m.group(0) for m in self.OTHER.finditer(chunk)]
                for line in bad[:1000 - len(self.crashes)]:
                    self.crashes.append(line.decode("utf-8", "replace"))


def proc_figures(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Queue:
    """Empties new/ as messages arrive (keeps the disk bounded)."""

    def __init__(self, qdir):
        self.new = os.path.join(qdir, "new")
        self.tmp = os.path.join(qdir, "tmp")
        self.count = 0
        self.lock = threading.Lock()

    def sweep(self):
        with self.lock:
            for name in os.listdir(self.new):
                try:
                    os.unlink(os.path.join(self.new, name))
                    self.count += 1
                except FileNotFoundError:
                    pass
            return self.count


def start_server(which, port, qdir, clients, logpath):
    env = {"PATH": "/usr/bin:/bin", "MODULE_PATH": os.path.join(BUILD, "lib"), "QUEUEDIR": qdir,
           "TIMEOUT": str(SERVER_TIMEOUT), "TCPLOCALHOST": "soak.example"}
    if SANITIZED:
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:exitcode=99"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=98"
    limit = str(clients + 100)
    common = ["-R", "-H", "-c", limit, "-b", "1024", "-l", "soak.example", "127.0.0.1", str(port)]
    if which == "tcpserver":
        tcps = shutil.which("tcpserver")
        if not tcps:
            raise SystemExit("soak: tcpserver (ucspi-tcp) is not installed")
        argv = [tcps] + common + [os.path.join(BUILD, "bin", "mailfront"), "smtp", "queuedir", "accept"]
    else:
        # processes serve several sessions (-n 100, the default); an idle
        # one ends after -w 2 s, before the idle fd count after the run
        argv = [os.path.join(BUILD, "bin", "mailfrontd"), "-w", "2"] + common + ["smtp", "queuedir", "accept"]
    with open(logpath, "ab") as log:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=log, start_new_session=True)
    watch = LogWatch(logpath)
    end = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.settimeout(10)
                if s.recv(100).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    s.recv(100)
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > end:
            stop_server(proc)
            raise SystemExit(f"soak: {which} did not start: {argv}")
        time.sleep(0.1)
    return proc, watch


def stop_server(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=40)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def sampler(pid, queue, watch, stats, t0, stop_evt, samples, period):
    header = f"{'t/s':>5} {'RSS/KiB':>8} {'fds':>4} {'sessions':>9} {'queued':>8} {'errors':>6}"
    print(header, flush=True)
    next_sample = time.monotonic() + period
    while not stop_evt.is_set():
        try:
            await asyncio.wait_for(stop_evt.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
        queued = await asyncio.to_thread(queue.sweep)
        if time.monotonic() >= next_sample:
            next_sample += period
            rss, fds = proc_figures(pid)
            await asyncio.to_thread(watch.scan)
            sessions = sum(stats.done.values()) + sum(stats.failed.values())
            errors = sum(stats.failed[k] for k in WEIGHTS)
            samples.append((time.monotonic() - t0, rss, fds, sessions, queued, errors))
            print(f"{samples[-1][0]:>5.0f} {rss:>8} {fds:>4} {sessions:>9} {queued:>8} {errors:>6}", flush=True)


async def soak_async(port, pid, queue, watch, args, stats, samples):
    rnd = random.Random(args.seed)
    bodies = [make_body(s, i) for i, s in enumerate(SIZES)]
    kinds, weights = zip(*WEIGHTS.items())
    t0 = time.monotonic()
    stop_at = t0 + args.seconds
    stop_evt = asyncio.Event()
    samp = asyncio.create_task(sampler(pid, queue, watch, stats, t0, stop_evt, samples, args.period))
    tasks = []
    for i in range(args.clients):
        crnd = random.Random(rnd.getrandbits(64))
        soak = Soak(port, stats, bodies, crnd)
        tasks.append(asyncio.create_task(client_loop(soak, lambda r=crnd: r.choices(kinds, weights)[0],
                                                     stop_at, stats)))
        await asyncio.sleep(min(0.01, 5.0 / args.clients))   # ramp up over a few seconds
    done, pending = await asyncio.wait(tasks, timeout=args.seconds + DRAIN_SECONDS - (time.monotonic() - t0))
    for t in pending:
        t.cancel()
        stats.fail("normal", "session still running at the end of the drain (hang)")
    for t in done:
        if t.exception() is not None:
            stats.fail("normal", f"client task crashed: {t.exception()!r}")
    elapsed = time.monotonic() - t0
    stop_evt.set()
    await samp
    return elapsed


def run_one(which, args):
    print(f"\n== soak: {which}, {args.clients} clients, {args.seconds} s "
          f"(weights {', '.join(f'{k} {v}' for k, v in WEIGHTS.items())})", flush=True)
    tmp = tempfile.mkdtemp(prefix="mf-soak.")
    proc = None
    try:
        qdir = os.path.join(tmp, "queue")
        for d in ("new", "tmp"):
            os.makedirs(os.path.join(qdir, d))
        port = free_port()
        proc, watch = start_server(which, port, qdir, args.clients, os.path.join(tmp, "listener.log"))
        time.sleep(1.0)
        rss0, fds0 = proc_figures(proc.pid)
        queue = Queue(qdir)
        stats = Stats()
        samples = []
        elapsed = asyncio.run(soak_async(port, proc.pid, queue, watch, args, stats, samples))
        time.sleep(3.0)      # let the last children exit
        queued = queue.sweep()
        rss1, fds1 = proc_figures(proc.pid)
        leftovers = len(os.listdir(queue.tmp))
    finally:
        if proc is not None:
            stop_server(proc)
            watch.scan()
        shutil.rmtree(tmp, ignore_errors=True)

    fails = []
    good_failed = sum(stats.failed[k] for k in GOOD)
    if good_failed:
        fails.append(f"{good_failed} good sessions failed")
    if stats.failed["hostile"]:
        fails.append(f"{stats.failed['hostile']} hostile sessions hung")
    if queued < stats.acked or queued > stats.acked + stats.unsure:
        fails.append(f"queued {queued} messages, acknowledged {stats.acked} (+{stats.unsure} unsure)")
    if watch.crashes:
        fails.append(f"{len(watch.crashes)} sessions crashed or sanitizer reports")
    rss_first = samples[0][1] if samples else rss0
    rss_max = max([s[1] for s in samples] + [rss0, rss1])
    fds_max = max([s[2] for s in samples] + [fds0, fds1])
    if max(rss_max, rss1) > rss_first + args.rss_bound:
        fails.append(f"listener RSS grew from {rss_first} to {rss_max} KiB (bound +{args.rss_bound})")
    if fds1 > fds0:
        fails.append(f"listener fds {fds0} idle before, {fds1} idle after")

    print(f"-- summary {which}: {elapsed:.0f} s")
    print(f"   listener RSS KiB: start {rss0}, first under load {rss_first}, max {rss_max}, end {rss1}")
    print(f"   listener fds:     start {fds0}, max {fds_max}, end {fds1}")
    print("   sessions: " + ", ".join(f"{k} {stats.done[k]}" + (f" ({stats.failed[k]} FAILED)"
                                                              if stats.failed[k] else "") for k in WEIGHTS))
    print(f"   messages: {stats.acked} acknowledged, {queued} queued, {queued / elapsed:.1f} msgs/s; "
          f"{stats.unsure} without a reply; {leftovers} files left in tmp/")
    print(f"   listener log: {watch.lines} lines, {len(watch.crashes)} crash reports")
    for e in stats.errors[:20]:
        print(f"   failure: {e}")
    for line in watch.crashes[:10]:
        print(f"   crash: {line}")
    print(f"   result: {'FAIL: ' + '; '.join(fails) if fails else 'ok'}", flush=True)
    return not fails


def main():
    ap = argparse.ArgumentParser(description="SMTP soak test of mailfront under tcpserver and mailfrontd")
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--server", choices=("tcpserver", "mailfrontd", "both"), default="both")
    ap.add_argument("--period", type=float, default=10.0, help="seconds between samples (10)")
    ap.add_argument("--rss-bound", type=int, default=2048, help="allowed RSS growth of the listener, KiB (2048)")
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    if not 1 <= args.seconds <= 24 * 3600 or not 1 <= args.clients <= 5000:
        ap.error("--seconds 1..86400, --clients 1..5000")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, args.clients * 2 + 200)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    which = ("tcpserver", "mailfrontd") if args.server == "both" else (args.server,)
    ok = True
    for w in which:
        ok = run_one(w, args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
