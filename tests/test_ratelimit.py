"""plugin-ratelimit (docs/redis.md) against a real redis-server started by
this module: each limit refuses exactly past its count, the window slides,
a message counts when accepted (not when refused at MAIL or by an earlier
plugin), and two front ends (two tcpserver listeners) sharing one Redis
admit no more than the configured count under 50 concurrent clients."""
import base64
import concurrent.futures
import os
import re
import shutil
import smtplib
import tempfile
import time
import unittest

import harness
from test_redis import RedisServer, RedisTestCase, session

RL = ("ratelimit", "accept")


def message(sender="a@b.example", rcpts=("c@d.example",)):
    return ([f"MAIL FROM:<{sender}>"] + [f"RCPT TO:<{r}>" for r in rcpts]
            + ["DATA", "Subject: t", "", "body", "."])


class RatelimitTest(RedisTestCase):
    def run_session(self, lines, plugins=RL, **env):
        out, log, _ = session(self, lines + ["QUIT"], plugins, **self.r.env(**env))
        return out, log

    def test_ratelimit_rcpts_per_ip(self):
        rcpts = [f"r{i}@d.example" for i in range(5)]
        out, _ = self.run_session(["MAIL FROM:<a@b.example>"] + [f"RCPT TO:<{r}>" for r in rcpts],
                                  RATELIMIT_RCPTS_PER_IP="3/60")
        self.assertEqual([l[:3] for l in out[2:7]], ["250", "250", "250", "451", "451"])
        self.assertTrue(out[5].startswith("451 4.7.0 Recipient rate limit exceeded (rcpts-ip), try again in "), out)
        # Shared by the next session from the same address, not another one.
        out, _ = self.run_session(["MAIL FROM:<a@b.example>", "RCPT TO:<x@d.example>"], RATELIMIT_RCPTS_PER_IP="3/60")
        self.assertTrue(out[2].startswith("451 4.7.0"), out)
        out, _ = self.run_session(["MAIL FROM:<a@b.example>", "RCPT TO:<x@d.example>"], RATELIMIT_RCPTS_PER_IP="3/60",
                                  TCPREMOTEIP="198.51.100.1")
        self.assertEqual(out[2], "250 Recipient='x@d.example'.")

    def test_ratelimit_rcpts_per_domain(self):
        lines = ["MAIL FROM:<a@b.example>", "RCPT TO:<x@D.example>", "RCPT TO:<y@d.EXAMPLE>",
                 "RCPT TO:<z@other.example>", "RCPT TO:<postmaster>"]
        out, _ = self.run_session(lines, RATELIMIT_RCPTS_PER_DOMAIN="1/60")
        self.assertEqual(out[2][:3], "250")
        self.assertTrue(out[3].startswith("451 4.7.0 Recipient rate limit exceeded (rcpts-domain)"), out)
        self.assertEqual(out[4][:3], "250")
        self.assertEqual(out[5][:3], "250")       # no domain: not limited per domain

    def test_ratelimit_msgs_per_sender_counted_when_accepted(self):
        env = dict(RATELIMIT_MSGS_PER_SENDER="2/60")
        out, _ = self.run_session(message() + message() + message(), **env)
        acc = [l for l in out if l.startswith("250 Received")]
        self.assertEqual(len(acc), 2, out)
        # The third MAIL is refused before any data (checked, not counted).
        refused = [l for l in out if l.startswith("451 4.7.0 Message rate limit exceeded (msgs-sender)")]
        self.assertEqual(len(refused), 1, out)
        self.assertEqual(self.r.cmd("ZCARD", "mailfront:rl:msgs-sender:a@b.example"), 2)
        out, _ = self.run_session(message(sender="A@B.EXAMPLE"), **env)
        self.assertTrue([l for l in out if "msgs-sender" in l], out)
        out, _ = self.run_session(message(sender="other@b.example"), **env)
        self.assertTrue([l for l in out if l.startswith("250 Received")], out)

    def test_ratelimit_null_sender_not_limited_per_sender(self):
        out, _ = self.run_session(message(sender="") + message(sender="") + message(sender=""),
                                  RATELIMIT_MSGS_PER_SENDER="1/60")
        self.assertEqual(len([l for l in out if l.startswith("250 Received")]), 3, out)

    def test_ratelimit_message_refused_by_earlier_plugin_not_counted(self):
        env = dict(RATELIMIT_MSGS_PER_IP="1/60", DATABYTES="30")
        big = ["MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA", "x" * 50, "."]
        out, _ = self.run_session(big, plugins=("counters", "ratelimit", "accept"), **env)
        self.assertTrue([l for l in out if l.startswith("552")], out)
        self.assertEqual(self.r.cmd("ZCARD", "mailfront:rl:msgs-ip:192.0.2.7/32"), 0)
        out, _ = self.run_session(message() + message(), plugins=("counters", "ratelimit", "accept"), **env)
        self.assertEqual(len([l for l in out if l.startswith("250 Received")]), 1, out)

    def test_ratelimit_msgs_per_ip_prefix(self):
        env = dict(RATELIMIT_MSGS_PER_IP="1/60", RATELIMIT_PREFIX6="48")
        out, _ = self.run_session(message(), TCPREMOTEIP="2001:db8:1:2::1", **env)
        self.assertTrue([l for l in out if l.startswith("250 Received")], out)
        out, _ = self.run_session(message(), TCPREMOTEIP="2001:db8:1:ffff::9", **env)
        self.assertTrue([l for l in out if "msgs-ip" in l], out)
        self.assertEqual(self.r.cmd("KEYS", "mailfront:rl:msgs-ip:*"), ["mailfront:rl:msgs-ip:2001:db8:1::/48"])

    def test_ratelimit_conn_per_ip(self):
        env = dict(RATELIMIT_CONN_PER_IP="2/60")
        for _ in range(2):
            out, _ = self.run_session([], **env)
            self.assertEqual(out[0], "220 mx.example mailfront ESMTP")
        p = harness.mailfront(["smtp", "echo"] + list(RL), b"QUIT\r\n", timeout=30, TCPLOCALHOST="mx.example",
                              TCPREMOTEIP="192.0.2.7", **self.r.env(**env))
        out = p.stdout.decode().split("\r\n")
        self.assertTrue(out[0].startswith("421 4.7.0 Too many connections from your network (conn-ip), try again in "), out)
        self.assertEqual(len(out), 2, out)     # closed after the reply

    def test_ratelimit_window_slides(self):
        env = dict(RATELIMIT_RCPTS_PER_IP="2/3")
        lines = ["MAIL FROM:<a@b.example>"] + ["RCPT TO:<c@d.example>"] * 3
        out, _ = self.run_session(lines, **env)
        self.assertEqual([l[:3] for l in out[2:5]], ["250", "250", "451"])
        wait = int(re.search(r"try again in (\d+) seconds", out[4]).group(1))
        self.assertTrue(1 <= wait <= 3, out[4])
        ttl = self.r.cmd("TTL", "mailfront:rl:rcpts-ip:192.0.2.7/32")
        self.assertTrue(0 < ttl <= 3, ttl)
        time.sleep(3.3)
        out, _ = self.run_session(lines, **env)
        self.assertEqual([l[:3] for l in out[2:5]], ["250", "250", "451"])

    def test_ratelimit_all_or_nothing(self):
        """An event over one limit counts against none."""
        env = dict(RATELIMIT_RCPTS_PER_IP="10/60", RATELIMIT_RCPTS_PER_DOMAIN="1/60")
        out, _ = self.run_session(["MAIL FROM:<a@b.example>", "RCPT TO:<x@d.example>", "RCPT TO:<y@d.example>"], **env)
        self.assertEqual(out[3][:3], "451")
        self.assertEqual(self.r.cmd("ZCARD", "mailfront:rl:rcpts-ip:192.0.2.7/32"), 1)

    def test_ratelimit_invalid_setting(self):
        for v in ("abc", "10", "0/60", "10/0", "10/x", "/60", "10/60x"):
            with self.subTest(v=v):
                out, log = self.run_session(["MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>"],
                                            RATELIMIT_RCPTS_PER_IP=v)
                self.assertEqual(out[2], "451 4.3.5 Rate limiting is misconfigured")
                self.assertTrue([l for l in log if "$RATELIMIT_RCPTS_PER_IP" in l], log)

    def test_ratelimit_disable(self):
        out, _ = self.run_session(["MAIL FROM:<a@b.example>"] + ["RCPT TO:<c@d.example>"] * 3,
                                  RATELIMIT_RCPTS_PER_IP="1/60", RATELIMIT_DISABLE="1")
        self.assertEqual([l[:3] for l in out[2:5]], ["250"] * 3)
        self.assertEqual(self.r.cmd("KEYS", "*"), [])

    def test_ratelimit_fail_modes(self):
        dead = harness.free_port()
        out, log = self.run_session(message(), RATELIMIT_MSGS_PER_IP="1/60", REDIS_HOST=f"127.0.0.1:{dead}")
        self.assertTrue([l for l in out if l.startswith("250 Received")], out)
        self.assertTrue([l for l in log if "ratelimit: redis error" in l and "failing open" in l], log)
        out, log = self.run_session(message(), RATELIMIT_MSGS_PER_IP="1/60", REDIS_HOST=f"127.0.0.1:{dead}",
                                    REDIS_FAIL="tempfail")
        self.assertEqual(out[1], "451 4.3.0 Policy service unavailable, try again later")

    def test_ratelimit_with_greylist_one_connection(self):
        out, _ = self.run_session(["MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>"],
                                  plugins=("ratelimit", "greylist", "accept"), RATELIMIT_RCPTS_PER_IP="5/60")
        self.assertEqual(out[2], "451 4.7.1 Greylisted, please try again later")
        self.assertEqual(self.r.cmd("ZCARD", "mailfront:rl:rcpts-ip:192.0.2.7/32"), 1)


PWFILE = shutil.which("cvm-pwfile") or "/usr/bin/cvm-pwfile"


def auth_env(tmp):
    """cvm-pwfile (Debian cvm) as the PLAIN module, users alice and bob."""
    pw = os.path.join(tmp, "passwd")
    with open(pw, "w") as f:
        f.write(f"alice:secret:1000:1001:Alice:{tmp}:/bin/sh\n")
        f.write(f"bob:hunter2:1002:1003:Bob:{tmp}:/bin/sh\n")
    return {"CVM_SASL_PLAIN": PWFILE, "CVM_PWFILE_PATH": pw}


def auth_plain(user, pw):
    return "AUTH PLAIN " + base64.b64encode(b"\0" + user + b"\0" + pw).decode()


class RatelimitUserTest(unittest.TestCase):
    """Per authenticated user (cvm-authenticate with cvm-pwfile)."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(PWFILE):
            raise RuntimeError("cvm-pwfile (Debian package cvm) is not installed")
        cls.r = RedisServer()
        cls.tmp = tempfile.mkdtemp(prefix="mfrl.")

    @classmethod
    def tearDownClass(cls):
        cls.r.stop()
        shutil.rmtree(cls.tmp, True)

    def test_ratelimit_msgs_per_user(self):
        env = self.r.env(RATELIMIT_MSGS_PER_USER="1/60", **auth_env(self.tmp))
        plugins = ("cvm-authenticate", "ratelimit", "accept")
        lines = ["EHLO client.example", auth_plain(b"alice", b"secret")] + message() + message() + ["QUIT"]
        out, _, _ = session(self, lines, plugins, **env)
        self.assertIn("235 2.7.0 Authentication succeeded.", out)
        self.assertEqual(len([l for l in out if l.startswith("250 Received")]), 1, out)
        self.assertTrue([l for l in out if l.startswith("451 4.7.0 Message rate limit exceeded (msgs-user)")], out)
        self.assertEqual(self.r.cmd("KEYS", "mailfront:rl:msgs-user:*"), ["mailfront:rl:msgs-user:alice"])
        # Another user has a count of their own; an anonymous session has none.
        lines = ["EHLO client.example", auth_plain(b"bob", b"hunter2")] + message() + ["QUIT"]
        out, _, _ = session(self, lines, plugins, **env)
        self.assertEqual(len([l for l in out if l.startswith("250 Received")]), 1, out)
        out, _, _ = session(self, ["EHLO client.example"] + message() + message() + ["QUIT"], plugins, **env)
        self.assertEqual(len([l for l in out if l.startswith("250 Received")]), 2, out)


class RatelimitFleetTest(RedisTestCase):
    """Two front ends, one Redis (emptied before each test), 50 concurrent
    clients."""

    LIMIT = 20

    def fleet(self, env, client, probe_key=None):
        env = harness.base_env(**self.r.env(TCPLOCALHOST="mx.example", REDIS_TIMEOUT="5", **env))
        argv = [harness.bin_path("mailfront"), "smtp", "echo", "ratelimit", "accept"]
        with harness.tcpserver(argv, env=env, limit=60) as (p1, s1), \
                harness.tcpserver(argv, env=env, limit=60) as (p2, s2):
            if probe_key:
                # harness.tcpserver's readiness probes were sessions too:
                # wait until both are counted, then start from zero.
                end = time.time() + 10
                while self.r.cmd("ZCARD", probe_key) < 2 and time.time() < end:
                    time.sleep(0.05)
                self.assertEqual(self.r.cmd("ZCARD", probe_key), 2)
                self.r.cmd("DEL", probe_key)
            with concurrent.futures.ThreadPoolExecutor(50) as pool:
                results = list(pool.map(lambda i: client(p1 if i % 2 else p2, i), range(50)))
            logs = s1.stderr.read() + s2.stderr.read()
        self.assertNotIn(b"AddressSanitizer", logs)
        self.assertNotIn(b"runtime error:", logs)
        self.assertNotIn(b"redis error", logs)
        return results

    def test_ratelimit_two_front_ends_messages(self):
        def client(port, i):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                s.ehlo("client.example")
                code, _ = s.mail(f"s{i}@b.example")
                if code != 250:
                    return code
                s.rcpt("c@d.example")
                code, _ = s.data(b"Subject: t\r\n\r\nbody\r\n")
                return code

        # Every client sends while the others do; MAIL's early check lets
        # all through, the count at end of data admits exactly LIMIT.
        results = self.fleet({"RATELIMIT_MSGS_PER_IP": f"{self.LIMIT}/3600"}, client)
        self.assertEqual(results.count(250), self.LIMIT, results)
        self.assertEqual(results.count(451), 50 - self.LIMIT, results)
        self.assertEqual(self.r.cmd("ZCARD", "mailfront:rl:msgs-ip:127.0.0.1/32"), self.LIMIT)

    def test_ratelimit_two_front_ends_connections(self):
        def client(port, i):
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                    return s.noop()[0]
            except smtplib.SMTPConnectError as e:
                return e.smtp_code

        results = self.fleet({"RATELIMIT_CONN_PER_IP": f"{self.LIMIT}/3600"}, client,
                             probe_key="mailfront:rl:conn-ip:127.0.0.1/32")
        self.assertEqual(results.count(250), self.LIMIT, results)
        self.assertEqual(results.count(421), 50 - self.LIMIT, results)


if __name__ == "__main__":
    unittest.main()
