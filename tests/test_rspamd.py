"""plugin-rspamd against Debian's rspamd, started once for the class.

rspamd runs with a minimal configuration of its own in a temp dir: no
Redis, no network lookups (DNS points at a closed local port), the
built-in GTUBE check, and a small Lua rule (written by the test) whose
score or action is picked by the message's Subject and which asks for a
header to be added and one removed through rspamd's milter block.  The
normal worker listens on a loopback port and a UNIX socket, the
controller on another port with a password.  A scripted server checks the
request the plugin sends and its handling of broken replies.
"""
import os
import time
import unittest

import harness
import servers
from harness import mailfront, assert_no_sanitizer_report, replies, end_of_data

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

RULES = """-- Test rules: the Subject picks a score or an action.
rspamd_config:register_symbol({
  name = 'MF_TEST',
  score = 1.0,
  callback = function(task)
    local subj = task:get_header('Subject') or ''
    task:set_milter_reply({ add_headers = { ['X-Rspamd-Test'] = 'checked' },
                            remove_headers = { ['X-Remove-Me'] = 0 } })
    local s = subj:match('score%-(%d+)')
    if s then task:insert_result('MF_TEST', tonumber(s)) end
    if subj:find('softreject') then task:set_pre_result('soft reject', 'come back later') end
  end
})
"""


def session(subject, body=b"hello\r\n", extra=b""):
    return (b"HELO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<e@f.example>\r\n"
            b"DATA\r\nFrom: a@b.example\r\nSubject: " + subject + b"\r\nX-Remove-Me: yes\r\n" + extra + b"\r\n"
            + body + b".\r\nQUIT\r\n")


class RspamdBase(harness.StandinTest):
    def deliver(self, data, plugins=("accept", "rspamd"), **env):
        env = {"TCPREMOTEIP": "127.0.0.1", "RSPAMD_TIMEOUT": "10000", **env}
        return super().deliver(plugins, data, **env)


@unittest.skipUnless(servers.Rspamd.EXE, "rspamd not installed")
class RspamdTest(RspamdBase):
    @classmethod
    def setUpClass(cls):
        cls.rspamd = servers.Rspamd(RULES, password="testpass")
        cls.port, cls.cport, cls.sock = cls.rspamd.port, cls.rspamd.cport, cls.rspamd.sock

    @classmethod
    def tearDownClass(cls):
        cls.rspamd.stop()

    def tcp(self, **env):
        e = {"RSPAMD_HOST": "127.0.0.1", "RSPAMD_PORT": self.port}
        e.update(env)
        return e

    def test_rspamd_gtube_rejected(self):
        p, msg = self.deliver(session(b"test", GTUBE + b"\r\n"), **self.tcp())
        self.assertEqual(end_of_data(p), "554 5.7.1 Gtube pattern")
        self.assertIsNone(msg)

    def test_rspamd_clean_message_gets_headers(self):
        p, msg = self.deliver(session(b"a clean note"), **self.tcp())
        self.assertTrue(end_of_data(p).startswith("250 2.6.0"), replies(p))
        head, body = msg.split(b"\n\n", 1)
        lines = head.split(b"\n")
        self.assertEqual(lines[0], b"X-Spam-Status: No, score=0.00 required=15.00")
        self.assertIn(b"X-Rspamd-Test: checked", lines)          # rspamd's milter block
        self.assertNotIn(b"X-Remove-Me: yes", lines)
        self.assertIn(b"Subject: a clean note", lines)
        self.assertEqual(body, b"hello\n")

    def test_rspamd_actions(self):
        cases = [(b"score-7", "250 ", [b"X-Spam: Yes", b"X-Spam-Status: Yes, score=7.00 required=15.00"]),
                 (b"score-10", "250 ", [b"Subject: ***SPAM*** score-10"]),
                 (b"score-5", "451 4.7.1 Greylisted, try again later", None),
                 (b"softreject", "451 4.7.1 come back later", None),
                 (b"score-20", "554 5.7.1 Spam message rejected", None)]
        for subject, want, headers in cases:
            p, msg = self.deliver(session(subject), **self.tcp())
            self.assertTrue(end_of_data(p).startswith(want), (subject, replies(p)))
            if headers is None:
                self.assertIsNone(msg, subject)
                continue
            lines = msg.split(b"\n\n", 1)[0].split(b"\n")
            for h in headers:
                self.assertIn(h, lines, (subject, msg))

    def test_rspamd_unix_socket(self):
        p, msg = self.deliver(session(b"test", GTUBE + b"\r\n"), RSPAMD_SOCKET=self.sock)
        self.assertEqual(end_of_data(p), "554 5.7.1 Gtube pattern")
        p, msg = self.deliver(session(b"via socket"), RSPAMD_SOCKET=self.sock)
        self.assertTrue(end_of_data(p).startswith("250 "), replies(p))
        self.assertTrue(msg.startswith(b"X-Spam-Status: No"), msg)

    def test_rspamd_controller_password(self):
        p, msg = self.deliver(session(b"controller"), **self.tcp(RSPAMD_PORT=self.cport, RSPAMD_PASSWORD="testpass"))
        self.assertTrue(end_of_data(p).startswith("250 "), replies(p))
        self.assertTrue(msg.startswith(b"X-Spam-Status: No"), msg)
        p, msg = self.deliver(session(b"controller"), **self.tcp(RSPAMD_PORT=self.cport, RSPAMD_PASSWORD="wrong"))
        self.assertEqual(end_of_data(p), "451 4.7.1 Spam check unavailable, try again later")

    def test_rspamd_queuedir_backend_gets_the_headers(self):
        qd = os.path.join(self.tmp, "queue")
        for d in ("tmp", "new"):
            os.makedirs(os.path.join(qd, d))
        p = mailfront(["smtp", "queuedir", "accept", "rspamd"], session(b"score-7"), timeout=60, QUEUEDIR=qd,
                      QUEUEDIR_NOSYNC="1", TCPREMOTEIP="127.0.0.1", RSPAMD_PORT=self.port)
        assert_no_sanitizer_report(self, p)
        self.assertTrue(end_of_data(p).startswith("250 "), replies(p))
        files = os.listdir(os.path.join(qd, "new"))
        self.assertEqual(len(files), 1)
        with open(os.path.join(qd, "new", files[0]), "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"a@b.example\0c@d.example\0e@f.example\0\0X-Spam: Yes\n"), data[:200])


class ScriptedRspamd(servers.ScriptedServer):
    """Records one HTTP request per connection (up to its Content-Length)
    and answers `reply` (None: never)."""

    def exchange(self, c):
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                b = c.recv(65536)
                if not b:
                    break
                data += b
            head = data.split(b"\r\n\r\n", 1)[0]
            n = [int(l.split(b":", 1)[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
            while len(data) < len(head) + 4 + n:
                b = c.recv(65536)
                if not b:
                    break
                data += b
        except (OSError, IndexError, ValueError):
            pass
        self.requests.append(data)
        self.answer(c)


def http(body, status=b"200 OK"):
    return b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body


class RspamdScriptedTest(RspamdBase):
    def server(self, reply):
        s = ScriptedRspamd(reply, join=5)
        self.addCleanup(s.close)
        return s

    def test_rspamd_request_carries_the_envelope(self):
        s = self.server(http(b'{"action":"no action","score":1.5,"required_score":15}'))
        p, msg = self.deliver(session(b"x"), RSPAMD_PORT=s.port, TCPREMOTEHOST="client.example.net",
                              RSPAMD_PASSWORD="pw", RSPAMD_SETTINGS_ID="outbound")
        self.assertTrue(end_of_data(p).startswith("250 "), replies(p))
        head, body = s.requests[0].split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        self.assertEqual(lines[0], b"POST /checkv2 HTTP/1.0")
        for h in (b"From: a@b.example", b"Rcpt: c@d.example", b"Rcpt: e@f.example", b"IP: 127.0.0.1",
                  b"Helo: client.example", b"Hostname: client.example.net", b"Password: pw",
                  b"Settings-ID: outbound", b"Content-Length: %d" % len(body)):
            self.assertIn(h, lines)
        self.assertTrue(body.startswith(b"From: a@b.example\n"), body)
        self.assertTrue(msg.startswith(b"X-Spam-Status: No, score=1.50 required=15.00\n"), msg)

    def test_rspamd_reply_headers_and_dkim(self):
        s = self.server(http(b'{"action":"no action","score":0,"required_score":15,'
                             b'"dkim-signature":"v=1; a=rsa-sha256; d=b.example; b=abc",'
                             b'"milter":{"add_headers":{"X-A":{"value":"first \\u00e9","order":0},'
                             b'"X-B":[{"value":"one"},{"value":"two"}]},"remove_headers":{"X-Remove-Me":1}}}'))
        p, msg = self.deliver(session(b"x"), RSPAMD_PORT=s.port)
        self.assertTrue(end_of_data(p).startswith("250 "), replies(p))
        lines = msg.split(b"\n\n", 1)[0].split(b"\n")
        self.assertEqual(lines[0], b"DKIM-Signature: v=1; a=rsa-sha256; d=b.example; b=abc")
        self.assertIn("X-A: first \u00e9".encode(), lines)
        self.assertEqual(lines[-2:], [b"X-B: one", b"X-B: two"])
        self.assertNotIn(b"X-Remove-Me: yes", lines)

    def test_rspamd_broken_replies_fail_mode(self):
        for reply in (b"garbage\r\n\r\n", http(b"{not json"), http(b"[]"), http(b'{"score":1}'),
                      http(b"{}", b"500 Internal Server Error"), b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{}",
                      http(b'{"action":"reject"}' + b" " * 2000000),
                      b"HTTP/1.1 200 OK\r\n" + b"X-Pad: padding\r\n" * 100000 + b"\r\n{}"):
            s = self.server(reply)
            p, msg = self.deliver(session(b"x"), RSPAMD_PORT=s.port)
            self.assertEqual(end_of_data(p), "451 4.7.1 Spam check unavailable, try again later", reply[:60])
            self.assertIsNone(msg)
            p, msg = self.deliver(session(b"x"), RSPAMD_PORT=s.port, RSPAMD_FAIL="accept")
            self.assertTrue(end_of_data(p).startswith("250 2.6.0"), reply[:60])
            self.assertTrue(msg.startswith(b"From: a@b.example"), msg)

    def test_rspamd_down_and_silent(self):
        port = harness.free_port()
        p, msg = self.deliver(session(b"x"), RSPAMD_PORT=port)
        self.assertEqual(end_of_data(p), "451 4.7.1 Spam check unavailable, try again later")
        self.assertIn(b"rspamd: event=failure", p.stderr)
        p, msg = self.deliver(session(b"x"), RSPAMD_PORT=port, RSPAMD_FAIL="accept")
        self.assertTrue(end_of_data(p).startswith("250 2.6.0"), replies(p))
        s = self.server(None)
        t = time.monotonic()
        p, msg = self.deliver(session(b"x"), RSPAMD_PORT=s.port, RSPAMD_TIMEOUT="1000")
        self.assertEqual(end_of_data(p), "451 4.7.1 Spam check unavailable, try again later")
        self.assertLess(time.monotonic() - t, 8)

    def test_rspamd_maxsize_skips(self):
        s = self.server(http(b'{"action":"reject"}'))
        p, msg = self.deliver(session(b"x", b"y" * 5000 + b"\r\n"), RSPAMD_PORT=s.port, RSPAMD_MAXSIZE="1000")
        self.assertTrue(end_of_data(p).startswith("250 2.6.0"), replies(p))
        self.assertEqual(s.requests, [])


if __name__ == "__main__":
    unittest.main()
