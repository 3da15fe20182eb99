"""plugin-greylist (docs/redis.md) against a real redis-server started by
this module (TCP port with a password; the UNIX socket is covered by
test_redis): first refused, refused again before the delay, accepted after
it; the retry window and the expiry of passed triplets; auto-allow of a
client network; network prefixes; skipped for relay clients; two front
ends sharing the state.  Delays are one second or two."""
import os
import shutil
import tempfile
import time
import unittest

import harness
from test_ratelimit import auth_env, auth_plain
from test_redis import RedisServer, RedisTestCase, session, GREYLISTED

GL = ("greylist", "accept")
OK_RCPT = "250 Recipient='c@d.example'."


def attempt(tc, server, ip="192.0.2.7", sender="a@b.example", rcpt="c@d.example", plugins=GL, **env):
    lines = [f"MAIL FROM:<{sender}>", f"RCPT TO:<{rcpt}>", "QUIT"]
    env.setdefault("GREYLIST_DELAY", "1")
    out, log, _ = session(tc, lines, plugins, TCPREMOTEIP=ip, **server.env(**env))
    return out[2]


class GreylistTest(RedisTestCase):
    def test_greylist_refused_then_accepted_after_delay(self):
        env = dict(GREYLIST_DELAY="3")
        self.assertEqual(attempt(self, self.r, **env), GREYLISTED)
        self.assertEqual(attempt(self, self.r, **env), GREYLISTED)          # too early
        time.sleep(3.2)
        self.assertEqual(attempt(self, self.r, **env), OK_RCPT)
        self.assertEqual(attempt(self, self.r, **env), OK_RCPT)             # known now
        key = "mailfront:gl:t:192.0.2.0/24|a@b.example|c@d.example"
        self.assertEqual(self.r.cmd("GET", key), "pass")

    def test_greylist_triplet_parts_each_matter(self):
        self.assertEqual(attempt(self, self.r), GREYLISTED)
        time.sleep(1.2)
        self.assertEqual(attempt(self, self.r), OK_RCPT)
        self.assertEqual(attempt(self, self.r, sender="other@b.example"), GREYLISTED)
        self.assertEqual(attempt(self, self.r, rcpt="x@d.example"), GREYLISTED)
        self.assertEqual(attempt(self, self.r, ip="198.51.100.7"), GREYLISTED)

    def test_greylist_addresses_compared_in_lower_case(self):
        self.assertEqual(attempt(self, self.r, sender="A@B.Example"), GREYLISTED)
        time.sleep(1.2)
        self.assertEqual(attempt(self, self.r, rcpt="C@D.EXAMPLE"), "250 Recipient='C@D.EXAMPLE'.")

    def test_greylist_client_network_prefix(self):
        self.assertEqual(attempt(self, self.r, ip="192.0.2.7"), GREYLISTED)
        time.sleep(1.2)
        self.assertEqual(attempt(self, self.r, ip="192.0.2.200"), OK_RCPT)   # same /24
        self.assertEqual(attempt(self, self.r, ip="192.0.3.7"), GREYLISTED)
        self.assertEqual(attempt(self, self.r, ip="192.0.2.99", GREYLIST_PREFIX4="32"), GREYLISTED)

    def test_greylist_ipv6_prefix(self):
        self.assertEqual(attempt(self, self.r, ip="2001:db8:1:2::7"), GREYLISTED)
        self.assertIn("mailfront:gl:t:2001:db8:1:2::/64|a@b.example|c@d.example", self.r.cmd("KEYS", "*"))
        time.sleep(1.2)
        self.assertEqual(attempt(self, self.r, ip="2001:db8:1:2:ffff::1"), OK_RCPT)
        self.assertEqual(attempt(self, self.r, ip="2001:db8:1:3::7"), GREYLISTED)

    def test_greylist_retry_window_expires_pending_triplet(self):
        env = dict(GREYLIST_RETRY_WINDOW="3")
        self.assertEqual(attempt(self, self.r, **env), GREYLISTED)
        ttl = self.r.cmd("PTTL", "mailfront:gl:t:192.0.2.0/24|a@b.example|c@d.example")
        self.assertTrue(0 < ttl <= 4000, ttl)                       # delay + window
        time.sleep(4.3)
        self.assertEqual(attempt(self, self.r, **env), GREYLISTED)   # started over
        time.sleep(1.2)
        self.assertEqual(attempt(self, self.r, **env), OK_RCPT)

    def test_greylist_expiry_of_passed_triplet(self):
        env = dict(GREYLIST_EXPIRE="3", GREYLIST_AUTO_ALLOW="0")
        self.assertEqual(attempt(self, self.r, **env), GREYLISTED)
        time.sleep(1.2)
        self.assertEqual(attempt(self, self.r, **env), OK_RCPT)
        ttl = self.r.cmd("TTL", "mailfront:gl:t:192.0.2.0/24|a@b.example|c@d.example")
        self.assertTrue(0 < ttl <= 3, ttl)
        time.sleep(3.3)
        self.assertEqual(attempt(self, self.r, **env), GREYLISTED)

    def test_greylist_default_expire_is_long(self):
        self.assertEqual(attempt(self, self.r), GREYLISTED)
        time.sleep(1.2)
        attempt(self, self.r)
        ttl = self.r.cmd("TTL", "mailfront:gl:t:192.0.2.0/24|a@b.example|c@d.example")
        self.assertTrue(35 * 86400 - 10 < ttl <= 35 * 86400, ttl)

    def test_greylist_auto_allow_after_passes(self):
        env = dict(GREYLIST_AUTO_ALLOW="2")
        for rcpt in ("r1@d.example", "r2@d.example"):
            self.assertEqual(attempt(self, self.r, rcpt=rcpt, **env), GREYLISTED)
        time.sleep(1.2)
        for rcpt in ("r1@d.example", "r2@d.example"):
            self.assertEqual(attempt(self, self.r, rcpt=rcpt, **env), f"250 Recipient='{rcpt}'.")
        # Two passes: the network is allowed without greylisting.
        self.assertEqual(attempt(self, self.r, rcpt="new@d.example", **env), "250 Recipient='new@d.example'.")
        self.assertEqual(attempt(self, self.r, ip="192.0.2.8", sender="z@y.example", **env), OK_RCPT)
        self.assertEqual(attempt(self, self.r, ip="203.0.113.1", **env), GREYLISTED)
        self.assertEqual(self.r.cmd("GET", "mailfront:gl:c:192.0.2.0/24"), "2")

    def test_greylist_auto_allow_off(self):
        env = dict(GREYLIST_AUTO_ALLOW="0")
        for rcpt in ("r1@d.example", "r2@d.example"):
            attempt(self, self.r, rcpt=rcpt, **env)
        time.sleep(1.2)
        for rcpt in ("r1@d.example", "r2@d.example"):
            attempt(self, self.r, rcpt=rcpt, **env)
        self.assertEqual(attempt(self, self.r, rcpt="new@d.example", **env), GREYLISTED)

    def test_greylist_skipped_for_relay_clients(self):
        self.assertEqual(attempt(self, self.r, RELAYCLIENT=""), OK_RCPT)
        self.assertEqual(attempt(self, self.r, GREYLIST_DISABLE="1"), OK_RCPT)
        self.assertEqual(self.r.cmd("KEYS", "*"), [])

    def test_greylist_skipped_for_authenticated_users(self):
        tmp = tempfile.mkdtemp(prefix="mfgl.")
        self.addCleanup(shutil.rmtree, tmp, True)
        lines = ["EHLO client.example", auth_plain(b"alice", b"secret"), "MAIL FROM:<a@b.example>",
                 "RCPT TO:<c@d.example>", "QUIT"]
        out, _, _ = session(self, lines, ("cvm-authenticate", "greylist", "accept"),
                            **self.r.env(GREYLIST_DELAY="1", **auth_env(tmp)))
        self.assertIn("235 2.7.0 Authentication succeeded.", out)
        self.assertIn(OK_RCPT, out)
        self.assertEqual(self.r.cmd("KEYS", "*"), [])

    def test_greylist_skipped_without_client_address(self):
        out, _, _ = session(self, ["MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "QUIT"], GL,
                            TCPREMOTEIP=None, **self.r.env())
        self.assertEqual(out[2], OK_RCPT)

    def test_greylist_zero_delay_passes_first_time(self):
        self.assertEqual(attempt(self, self.r, GREYLIST_DELAY="0"), OK_RCPT)

    def test_greylist_with_counters_and_mailrules_order(self):
        """The plugin composes with counters in either order."""
        for plugins in (("counters", "greylist", "accept"), ("greylist", "counters", "accept")):
            self.r.cmd("FLUSHALL")
            with self.subTest(plugins=plugins):
                self.assertEqual(attempt(self, self.r, plugins=plugins, MAXRCPTS="5"), GREYLISTED)

    def test_greylist_switched_off_by_mailrules(self):
        """mailrules before greylist sets $GREYLIST_DISABLE for one sender."""
        tmp = tempfile.mkdtemp(prefix="mfgl.")
        self.addCleanup(shutil.rmtree, tmp, True)
        rules = os.path.join(tmp, "rules")
        with open(rules, "w") as f:
            f.write(":sender\nn*@trusted.example:::::GREYLIST_DISABLE=1\n")
        plugins = ("mailrules", "greylist", "accept")
        self.assertEqual(attempt(self, self.r, sender="x@trusted.example", plugins=plugins, MAILRULES=rules),
                         OK_RCPT)
        self.assertEqual(attempt(self, self.r, sender="x@other.example", plugins=plugins, MAILRULES=rules),
                         GREYLISTED)
        self.assertEqual(len(self.r.cmd("KEYS", "mailfront:gl:t:*")), 1)

    def test_greylist_two_front_ends_share_state(self):
        """A retry through the other front end passes (two tcpserver listeners)."""
        env = harness.base_env(**self.r.env(GREYLIST_DELAY="3", TCPLOCALHOST="mx.example"))
        argv = [harness.bin_path("mailfront"), "smtp", "echo", "greylist", "accept"]
        with harness.tcpserver(argv, env=env) as (p1, _), harness.tcpserver(argv, env=env) as (p2, _):
            import smtplib
            def rcpt(port):
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                    s.ehlo("client.example")
                    s.mail("a@b.example")
                    return s.rcpt("c@d.example")[0]
            self.assertEqual(rcpt(p1), 451)
            self.assertEqual(rcpt(p2), 451)                # too early, on the other one
            time.sleep(3.2)
            self.assertEqual(rcpt(p2), 250)
            self.assertEqual(rcpt(p1), 250)


if __name__ == "__main__":
    unittest.main()
