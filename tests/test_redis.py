"""The Redis client layer of plugin-greylist and plugin-ratelimit
(docs/redis.md) against real redis-server processes (Debian redis-server)
started by this module on loopback: TCP with a password, a UNIX socket,
database selection and key prefix, servers tried in order (a refused
port, a read-only replica), EVALSHA with the EVAL fallback, and the fail
modes when Redis is down, killed mid-session or hanging (SIGSTOP).

RedisServer and resp() are the helpers test_greylist and test_ratelimit
use too."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import assert_no_sanitizer_report
from test_smtp_session import crlf, log_lines

PASSWORD = "s3cret pass"
GREETING = "220 mx.example mailfront ESMTP"
TEMPFAIL = "451 4.3.0 Policy service unavailable, try again later"


def _encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    """A minimal RESP client with a deadline on every read."""

    def __init__(self, port=None, path=None, password=None, timeout=5.0):
        if path:
            self.s = socket.socket(socket.AF_UNIX)
            self.s.settimeout(timeout)
            self.s.connect(path)
        else:
            self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        if password:
            self.cmd("AUTH", password)

    def close(self):
        self.s.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise ConnectionError("redis closed the connection")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode("latin-1")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError(f"bad RESP line {line!r}")

    def cmd(self, *args):
        self.s.sendall(_encode(args))
        return self._read()


class RedisServer:
    """redis-server on a free loopback port and a UNIX socket, with a
    password, no persistence; stopped by pid (process group)."""

    def __init__(self, password=PASSWORD, extra=()):
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(exe):
            raise RuntimeError("redis-server (Debian redis-server) is not installed")
        self.dir = tempfile.mkdtemp(prefix="mfredis.")
        self.port = harness.free_port()
        self.path = os.path.join(self.dir, "redis.sock")
        self.password = password
        argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--unixsocket", self.path,
                "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--loglevel", "warning"]
        if password:
            argv += ["--requirepass", password, "--masterauth", password]
        argv += list(extra)
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, start_new_session=True)
        end = time.time() + 10
        while True:
            try:
                c = self.conn()
                c.cmd("PING")
                c.close()
                break
            except (OSError, RuntimeError, ConnectionError):
                if time.time() > end or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)

    def conn(self, timeout=5.0):
        return Conn(self.port, password=self.password, timeout=timeout)

    def cmd(self, *args):
        c = self.conn()
        try:
            return c.cmd(*args)
        finally:
            c.close()

    def env(self, **extra):
        e = {"REDIS_HOST": f"127.0.0.1:{self.port}", "REDIS_PASSWORD": self.password or None,
             "REDIS_TIMEOUT": "2"}
        e.update(extra)
        return e

    def signal(self, sig):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self):
        if self.proc.poll() is None:
            with_suppressed = [signal.SIGCONT, signal.SIGKILL]
            for s in with_suppressed:
                try:
                    os.killpg(self.proc.pid, s)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, True)


def command_calls(server):
    """Calls per command name since the last CONFIG RESETSTAT (commands run
    by scripts count under their own names)."""
    calls = {}
    for line in server.cmd("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            calls[name[8:]] = int(rest.split(",")[0].split("=")[1])
    return calls


def session(tc, lines, plugins, timeout=30, **env):
    """One mailfront SMTP session on stdin; returns (reply lines, log lines, proc)."""
    env.setdefault("TCPLOCALHOST", "mx.example")
    env.setdefault("TCPREMOTEIP", "192.0.2.7")
    p = harness.mailfront(["smtp", "echo"] + list(plugins), crlf(*lines), timeout=timeout, **env)
    assert_no_sanitizer_report(tc, p)
    tc.assertEqual(p.returncode, 0, p.stderr.decode("latin-1"))
    return p.stdout.decode("latin-1").split("\r\n")[:-1], log_lines(p), p


class Interactive:
    """A mailfront session driven line by line (for mid-session events)."""

    def __init__(self, plugins, **env):
        env.setdefault("TCPLOCALHOST", "mx.example")
        env.setdefault("TCPREMOTEIP", "192.0.2.7")
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen([harness.bin_path("mailfront"), "smtp", "echo"] + list(plugins),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  env=harness.base_env(**env))
        os.set_blocking(self.p.stdout.fileno(), True)
        self.buf = b""

    def reply(self, timeout=10.0):
        end = time.time() + timeout
        import select
        while b"\r\n" not in self.buf:
            left = end - time.time()
            if left <= 0:
                raise TimeoutError("no reply from mailfront")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 4096)
                if not chunk:
                    raise ConnectionError("mailfront closed")
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("latin-1")

    def send(self, line, timeout=10.0):
        self.p.stdin.write(line.encode() + b"\r\n")
        self.p.stdin.flush()
        return self.reply(timeout)

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
        self.err.seek(0)
        log = self.err.read().decode("latin-1")
        self.err.close()
        return self.p.returncode, log


GL = ("greylist", "accept")
MAIL = ["MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "QUIT"]
GREYLISTED = "451 4.7.1 Greylisted, please try again later"


class RedisTestCase(unittest.TestCase):
    """One redis-server per test class, emptied before each test (shared by
    test_greylist and test_ratelimit)."""
    @classmethod
    def setUpClass(cls):
        cls.r = RedisServer()

    @classmethod
    def tearDownClass(cls):
        cls.r.stop()

    def setUp(self):
        self.r.cmd("FLUSHALL")


class RedisClientTest(RedisTestCase):
    def test_redis_tcp_with_password(self):
        out, _, _ = session(self, MAIL, GL, **self.r.env())
        self.assertEqual(out[2], GREYLISTED)
        keys = self.r.cmd("KEYS", "*")
        self.assertIn("mailfront:gl:t:192.0.2.0/24|a@b.example|c@d.example", keys)

    def test_redis_unix_socket(self):
        out, _, _ = session(self, MAIL, GL, REDIS_PATH=self.r.path, REDIS_PASSWORD=PASSWORD)
        self.assertEqual(out[2], GREYLISTED)
        self.assertEqual(len(self.r.cmd("KEYS", "mailfront:gl:t:*")), 1)

    def test_redis_db_and_prefix(self):
        out, _, _ = session(self, MAIL, GL, **self.r.env(REDIS_DB="3", REDIS_PREFIX="mx1/"))
        self.assertEqual(out[2], GREYLISTED)
        self.assertEqual(self.r.cmd("KEYS", "*"), [])
        c = self.r.conn()
        try:
            c.cmd("SELECT", "3")
            self.assertEqual(sorted(c.cmd("KEYS", "*")),
                             ["mx1/gl:t:192.0.2.0/24|a@b.example|c@d.example"])
        finally:
            c.close()

    def test_redis_wrong_password_fails_open_with_log(self):
        out, log, _ = session(self, MAIL, GL, **self.r.env(REDIS_PASSWORD="wrong"))
        self.assertEqual(out[2], "250 Recipient='c@d.example'.")
        lines = [l for l in log if "greylist: redis error" in l]
        self.assertEqual(len(lines), 1, log)
        self.assertIn("AUTH refused", lines[0])
        self.assertIn("failing open", lines[0])
        self.assertNotIn("wrong", " ".join(log))

    def test_redis_password_never_logged(self):
        _, log, _ = session(self, MAIL, GL, **self.r.env(REDIS_HOST="127.0.0.1:1", REDIS_FAIL="tempfail"))
        self.assertNotIn(PASSWORD, "\n".join(log))

    def test_redis_servers_tried_in_order(self):
        dead = harness.free_port()
        out, log, _ = session(self, MAIL, GL, **self.r.env(REDIS_HOST=f"127.0.0.1:{dead}, 127.0.0.1:{self.r.port}"))
        self.assertEqual(out[2], GREYLISTED)
        self.assertFalse([l for l in log if "redis error" in l], log)

    def test_redis_default_port_from_redis_port(self):
        out, _, _ = session(self, MAIL, GL, **self.r.env(REDIS_HOST="127.0.0.1", REDIS_PORT=str(self.r.port)))
        self.assertEqual(out[2], GREYLISTED)

    def test_redis_evalsha_after_first_load_and_noscript_fallback(self):
        self.r.cmd("SCRIPT", "FLUSH")
        self.r.cmd("CONFIG", "RESETSTAT")
        session(self, MAIL, GL, **self.r.env())      # NOSCRIPT -> EVAL
        session(self, MAIL, GL, **self.r.env())      # EVALSHA hits
        calls = command_calls(self.r)
        self.assertEqual(calls.get("evalsha"), 2, calls)
        self.assertEqual(calls.get("eval"), 1, calls)

    def test_redis_one_round_trip_per_recipient(self):
        rcpts = [f"RCPT TO:<r{i}@d.example>" for i in range(10)]
        session(self, ["MAIL FROM:<a@b.example>"] + rcpts + ["QUIT"], GL, **self.r.env())  # loads the script
        self.r.cmd("CONFIG", "RESETSTAT")
        out, _, _ = session(self, ["MAIL FROM:<x@b.example>"] + rcpts + ["QUIT"], GL, **self.r.env())
        self.assertEqual(out.count(GREYLISTED), 10)
        calls = command_calls(self.r)
        # One connection (AUTH once), then one EVALSHA per recipient; the
        # INFO connection of the test adds one AUTH of its own.
        self.assertEqual(calls.get("evalsha"), 10, calls)
        self.assertEqual(calls.get("auth"), 2, calls)
        self.assertNotIn("eval", calls)
        self.assertNotIn("script", calls)

    def test_redis_invalid_settings_refused(self):
        for var, value in (("REDIS_TIMEOUT", "abc"), ("REDIS_TIMEOUT", "0"), ("REDIS_PORT", "70000"),
                           ("REDIS_FAIL", "maybe"), ("REDIS_HOST", "[::1"), ("REDIS_DB", "x"),
                           ("REDIS_RETRY", "-1"), ("REDIS_RETRY", "3601")):
            with self.subTest(var=var, value=value):
                out, log, _ = session(self, MAIL, GL, **self.r.env(**{var: value}))
                self.assertEqual(out[2], "451 4.3.5 Greylisting is misconfigured")
                self.assertTrue([l for l in log if f"${var}" in l], log)


class RedisReplicaTest(unittest.TestCase):
    """A read-only replica listed first: the client moves on to the primary
    (the Sentinel/proxy story without a proxy)."""

    @classmethod
    def setUpClass(cls):
        cls.primary = RedisServer()
        try:
            cls.replica = RedisServer(extra=["--replicaof", "127.0.0.1", str(cls.primary.port)])
        except Exception:
            cls.primary.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.replica.stop()
        cls.primary.stop()

    def test_redis_readonly_replica_skipped(self):
        env = self.primary.env(REDIS_HOST=f"127.0.0.1:{self.replica.port} 127.0.0.1:{self.primary.port}")
        out, log, _ = session(self, MAIL, GL, **env)
        self.assertEqual(out[2], GREYLISTED)
        self.assertFalse([l for l in log if "redis error" in l], log)
        self.assertEqual(len(self.primary.cmd("KEYS", "mailfront:gl:t:*")), 1)

    def test_redis_only_replica_fails_with_reason(self):
        env = self.primary.env(REDIS_HOST=f"127.0.0.1:{self.replica.port}", REDIS_FAIL="tempfail")
        out, log, _ = session(self, MAIL, GL, **env)
        self.assertEqual(out[2], TEMPFAIL)
        self.assertTrue([l for l in log if "READONLY" in l], log)


class RedisFailureTest(unittest.TestCase):
    """Each test has its own server, which it stops, kills or freezes."""

    def setUp(self):
        self.r = RedisServer()
        self.addCleanup(self.r.stop)

    def test_redis_down_fail_open_and_tempfail(self):
        self.r.stop()
        out, log, _ = session(self, MAIL, GL, **self.r.env())
        self.assertEqual(out[2], "250 Recipient='c@d.example'.")
        self.assertTrue([l for l in log if "greylist: redis error: cannot connect" in l and "failing open" in l], log)
        out, log, _ = session(self, MAIL, GL, **self.r.env(REDIS_FAIL="tempfail"))
        self.assertEqual(out[2], TEMPFAIL)
        self.assertTrue([l for l in log if "failing tempfail" in l], log)

    def test_redis_hanging_bounded_by_deadline(self):
        self.r.signal(signal.SIGSTOP)
        rcpts = [f"RCPT TO:<r{i}@d.example>" for i in range(20)]
        start = time.monotonic()
        out, log, _ = session(self, ["MAIL FROM:<a@b.example>"] + rcpts + ["QUIT"], GL, timeout=60,
                              **self.r.env(REDIS_TIMEOUT="0.5", REDIS_FAIL="tempfail"))
        elapsed = time.monotonic() - start
        self.assertEqual(out.count(TEMPFAIL), 20, out)
        # One deadline (0.5 s) is spent; later calls fail at once.  Without a
        # deadline the session would hang until the test's timeout.
        self.assertLess(elapsed, 10, elapsed)
        failures = [l for l in log if "redis error" in l]
        self.assertEqual(len(failures), 20)
        self.assertIn("timed out", failures[0])

    def test_redis_hanging_fail_open_per_session(self):
        self.r.signal(signal.SIGSTOP)
        out, log, _ = session(self, MAIL, GL, **self.r.env(REDIS_TIMEOUT="0.3"))
        self.assertEqual(out[2], "250 Recipient='c@d.example'.")

    def test_redis_killed_mid_session(self):
        s = Interactive(GL, **self.r.env(REDIS_FAIL="tempfail"))
        try:
            self.assertEqual(s.reply(), GREETING)
            self.assertEqual(s.send("MAIL FROM:<a@b.example>"), "250 Sender='a@b.example'.")
            self.assertEqual(s.send("RCPT TO:<c@d.example>"), GREYLISTED)
            self.r.signal(signal.SIGKILL)
            self.r.proc.wait(timeout=10)
            self.assertEqual(s.send("RCPT TO:<e@d.example>"), TEMPFAIL)
            self.assertEqual(s.send("RCPT TO:<f@d.example>"), TEMPFAIL)
            self.assertEqual(s.send("QUIT"), "221 2.0.0 Good bye.")
        finally:
            rc, log = s.close()
        self.assertEqual(rc, 0, log)
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)

    def test_redis_back_after_holdoff(self):
        """After a failure the session waits $REDIS_RETRY seconds before trying again."""
        s = Interactive(GL, **self.r.env(REDIS_FAIL="tempfail", REDIS_TIMEOUT="3", REDIS_RETRY="4"))
        try:
            self.assertEqual(s.reply(), GREETING)
            s.send("MAIL FROM:<a@b.example>")
            self.assertEqual(s.send("RCPT TO:<c@d.example>"), GREYLISTED)
            self.r.signal(signal.SIGSTOP)
            self.assertEqual(s.send("RCPT TO:<e@d.example>"), TEMPFAIL)
            self.r.signal(signal.SIGCONT)
            start = time.monotonic()
            self.assertEqual(s.send("RCPT TO:<f@d.example>"), TEMPFAIL)      # held off: no wait
            self.assertLess(time.monotonic() - start, 2.5)   # a new try would wait 3 s
            time.sleep(4.3)
            self.assertEqual(s.send("RCPT TO:<g@d.example>"), GREYLISTED)
            s.send("QUIT")
        finally:
            rc, log = s.close()
        self.assertEqual(rc, 0, log)

    def test_redis_restarted_between_calls_reconnects(self):
        """A kept connection closed by the server (CLIENT KILL) is replaced."""
        s = Interactive(GL, **self.r.env())
        try:
            self.assertEqual(s.reply(), GREETING)
            s.send("MAIL FROM:<a@b.example>")
            self.assertEqual(s.send("RCPT TO:<c@d.example>"), GREYLISTED)
            self.r.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            self.assertEqual(s.send("RCPT TO:<e@d.example>"), GREYLISTED)
            s.send("QUIT")
        finally:
            rc, log = s.close()
        self.assertEqual(rc, 0, log)
        self.assertNotIn("redis error", log)
        self.assertEqual(len(self.r.cmd("KEYS", "mailfront:gl:t:*")), 2)


if __name__ == "__main__":
    unittest.main()
