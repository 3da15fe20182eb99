"""plugin-milter against a milter written with Debian's python3-milter
(tests/milter_test_milter.py, libmilter underneath) and against scripted
raw milters that misbehave.

Every session goes through the qmail back end (the qmail-queue stand-in
records the message and the envelope) or the queuedir back end.  The test
milter logs one JSON line per end of data with what it saw, so the
macros, the envelope and the content the plugin sent are checked too.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest

import harness
import servers
from harness import mailfront, assert_no_sanitizer_report

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "qmail_queue_standin.py")
TEST_MILTER = os.path.join(HERE, "milter_test_milter.py")
PY = "/usr/bin/python3"


def have_pymilter():
    return subprocess.run([PY, "-c", "import Milter"], capture_output=True, timeout=30).returncode == 0


def replies(p):
    return [l for l in p.stdout.decode("utf-8", "replace").split("\r\n") if l]


def smtp(sender="a@b.example", rcpts=("c@d.example",), headers=b"", body=b"hello\r\n", helo=b"client.example"):
    s = b"HELO " + helo + b"\r\nMAIL FROM:<" + sender.encode() + b">\r\n"
    for r in rcpts:
        s += b"RCPT TO:<" + r.encode() + b">\r\n"
    s += b"DATA\r\nFrom: a@b.example\r\nTo: c@d.example\r\nSubject: test\r\n" + headers + b"\r\n" + body
    if not body.endswith(b"\r\n"):
        s += b"\r\n"
    return s + b".\r\nQUIT\r\n"


class MilterProcess:
    """The python3-milter test milter on 127.0.0.1:PORT."""

    def __init__(self, tmp, mode=""):
        self.port = harness.free_port()
        self.log = os.path.join(tmp, "milter-%d.log" % self.port)
        self.err = open(os.path.join(tmp, "milter-%d.err" % self.port), "wb")
        self.p = subprocess.Popen([PY, TEST_MILTER, "inet:%d@127.0.0.1" % self.port, self.log, mode],
                                  stdout=self.err, stderr=self.err, start_new_session=True)
        harness.wait_port(self.port, timeout=20)

    @property
    def spec(self):
        return "inet:127.0.0.1:%d" % self.port

    def records(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(l) for l in f if l.strip()]

    def stop(self):
        # libmilter takes seconds to wind down after SIGTERM; the test
        # milter keeps no state worth a clean exit.
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait(10)
        self.err.close()


class RawMilter(servers.ScriptedServer):
    """A scripted milter: negotiates (protocol flags `proto`), then answers
    every command that wants an answer with `script(cmd)` bytes (None:
    say nothing and wait; CLOSE: hang up)."""

    def __init__(self, script, proto=0, actions=0x1ff, version=6):
        self.script, self.proto, self.actions, self.version = script, proto, actions, version
        self.seen = []
        super().__init__(join=5, conn_timeout=3)

    @property
    def spec(self):
        return "inet:127.0.0.1:%d" % self.port

    def exchange(self, c):
        try:
            self.serve(c)
        except OSError:
            pass
        c.close()

    def recv_packet(self, c):
        h = b""
        while len(h) < 4:
            b = c.recv(4 - len(h))
            if not b:
                return None, None
            h += b
        n = struct.unpack(">I", h)[0]
        d = b""
        while len(d) < n:
            b = c.recv(n - len(d))
            if not b:
                return None, None
            d += b
        return chr(d[0]), d[1:]

    def serve(self, c):
        while not self.stop:
            cmd, data = self.recv_packet(c)
            if cmd is None:
                return
            self.seen.append((cmd, data))
            if cmd == "O":
                pl = struct.pack(">III", self.version, self.actions, self.proto)
                c.sendall(struct.pack(">I", len(pl) + 1) + b"O" + pl)
                continue
            if cmd in "DAQ":
                continue
            out = self.script(cmd)
            if out is CLOSE:
                return
            if out is None:
                while not self.stop:
                    time.sleep(0.05)
                return
            c.sendall(out)


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


CONTINUE = packet(b"c")
CLOSE = object()          # a script's answer: hang up


class MilterBase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mftest.")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def session(self, data, milters, plugins=("accept", "milter"), backend="qmail", **env):
        """Runs one SMTP session; returns (process, message bytes or None,
        envelope bytes or None)."""
        out = os.path.join(self.tmp, "qq")
        for ext in (".msg", ".env"):
            if os.path.exists(out + ext):
                os.unlink(out + ext)
        settings = {"QMAILHOME": self.tmp, "QMAILQUEUE": STANDIN, "QQ_OUT": out, "MILTERS": milters,
                    "TCPREMOTEIP": "127.0.0.1", "TCPREMOTEPORT": "40000", "TCPLOCALHOST": "mx.test",
                    "MILTER_COMMAND_TIMEOUT": "5", "MILTER_CONTENT_TIMEOUT": "5", "MILTER_CONNECT_TIMEOUT": "5"}
        settings.update(env)
        p = mailfront(["smtp", backend] + list(plugins), data, timeout=120, **settings)
        assert_no_sanitizer_report(self, p)
        msg = env_ = None
        if os.path.exists(out + ".msg"):
            with open(out + ".msg", "rb") as f:
                msg = f.read()
            with open(out + ".env", "rb") as f:
                env_ = f.read()
        return p, msg, env_

    def end_of_data(self, p):
        r = replies(p)
        return r[-2] if len(r) >= 2 else ""


@unittest.skipUnless(have_pymilter(), "python3-milter not installed")
class MilterActionsTest(MilterBase):
    """Every reply and modification of a libmilter milter."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mfmilter.")
        cls.m = MilterProcess(cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.m.stop()
        shutil.rmtree(cls.dir, True)

    def run_(self, data, **env):
        return self.session(data, self.m.spec, **env)

    def last(self):
        r = self.m.records()
        self.assertTrue(r, "the milter saw no end of data")
        return r[-1]

    def test_milter_clean_message_macros_and_content(self):
        body = b"line one\r\nline two\r\n"
        p, msg, env = self.run_(smtp(rcpts=("c@d.example", "e@f.example"), headers=b"X-Tag: tag-clean\r\n",
                                     body=body))
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        self.assertEqual(msg, b"From: a@b.example\nTo: c@d.example\nSubject: test\nX-Tag: tag-clean\n\n"
                         b"line one\nline two\n")
        self.assertEqual(env, b"Fa@b.example\0Tc@d.example\0Te@f.example\0\0")
        rec = [r for r in self.m.records() if ["X-Tag", "tag-clean"] in r["headers"]][-1]
        self.assertEqual(rec["conn"]["addr"], ["127.0.0.1", 40000])
        self.assertEqual(rec["helo"], "client.example")
        self.assertEqual(rec["sender"], "<a@b.example>")
        self.assertEqual(rec["rcpts"], ["<c@d.example>", "<e@f.example>"])
        self.assertEqual(rec["headers"][:3], [["From", "a@b.example"], ["To", "c@d.example"], ["Subject", "test"]])
        self.assertEqual(rec["body"], hashlib.sha256(body).hexdigest())    # CRLF lines, as Postfix sends
        cm = rec["connmacros"]
        self.assertEqual(cm["j"], "mx.test")
        self.assertEqual(cm["{daemon_name}"], "mailfront")
        self.assertEqual(cm["{client_addr}"], "127.0.0.1")
        self.assertEqual(cm["_"], "unknown [127.0.0.1]")
        mac = rec["macros"]
        self.assertEqual(mac["{mail_addr}"], "a@b.example")
        self.assertEqual(mac["{rcpt_addr}"], "e@f.example")
        self.assertRegex(mac["i"], r"^[0-9A-F]{8,}$")

    def test_milter_queue_id_per_transaction(self):
        data = (b"HELO x\r\n" + b"".join(
            b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nFrom: a@b.example\r\nX-Tag: qid-%d\r\n"
            b"\r\nbody\r\n.\r\n" % i for i in range(2)) + b"QUIT\r\n")
        p, msg, env = self.run_(data)
        self.assertEqual(sum(1 for l in replies(p) if l.startswith("250 2.6.0")), 2, replies(p))
        recs = [r for r in self.m.records() if any(h[1].startswith("qid-") for h in r["headers"])][-2:]
        self.assertEqual(len(recs), 2)
        self.assertNotEqual(recs[0]["macros"]["i"], recs[1]["macros"]["i"])

    def test_milter_header_modifications(self):
        p, msg, env = self.run_(smtp(headers=b"X-Remove: bye\r\nX-Test: addheader insheader chgheader delheader\r\n"))
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        head, body = msg.split(b"\n\n", 1)
        lines = head.split(b"\n")
        self.assertEqual(lines[0], b"X-Inserted: at the top")
        self.assertIn(b"Subject: changed subject", lines)
        self.assertNotIn(b"Subject: test", lines)
        self.assertNotIn(b"X-Remove: bye", lines)
        self.assertEqual(lines[-3:], [b"X-Added: added by the milter", b"X-Folded: first", b"\tsecond"])
        self.assertEqual(body, b"hello\n")

    def test_milter_replace_body(self):
        p, msg, env = self.run_(smtp(headers=b"X-Test: replbody\r\n", body=b"original\r\n"))
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        self.assertTrue(msg.endswith(b"\n\nreplaced body line 1\nreplaced body line 2\n"), msg)
        self.assertNotIn(b"original", msg)

    def test_milter_envelope_changes(self):
        p, msg, env = self.run_(smtp(rcpts=("c@d.example", "e@f.example"), headers=b"X-Test: chgfrom addrcpt delrcpt\r\n"))
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        self.assertEqual(env, b"Fnew-sender@example.org\0Te@f.example\0Tadded@example.org\0\0")

    def test_milter_envelope_changes_queuedir_backend(self):
        qd = os.path.join(self.tmp, "queue")
        for d in ("tmp", "new"):
            os.makedirs(os.path.join(qd, d))
        p, msg, env = self.session(smtp(headers=b"X-Test: chgfrom addrcpt addheader\r\n"), self.m.spec,
                                   backend="queuedir", QUEUEDIR=qd, QUEUEDIR_NOSYNC="1")
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        files = os.listdir(os.path.join(qd, "new"))
        self.assertEqual(len(files), 1)
        with open(os.path.join(qd, "new", files[0]), "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"new-sender@example.org\0c@d.example\0added@example.org\0\0From: "), data)
        self.assertIn(b"\nX-Added: added by the milter\n", data)
        self.assertEqual(os.listdir(os.path.join(qd, "tmp")), [])

    def test_milter_mail_replies(self):
        cases = {"mail-reject": ["550 5.7.1 Command rejected"],
                 "mail-tempfail": ["451 4.7.1 Service unavailable - try again later"],
                 "mail-reply": ["553-5.1.8 first line", "553 5.1.8 second line"]}
        for local, want in cases.items():
            p, msg, env = self.run_(smtp(sender=local + "@b.example"))
            r = replies(p)
            self.assertEqual(r[2:2 + len(want)], want, (local, r))
            self.assertIsNone(msg)

    def test_milter_mail_discard_and_accept(self):
        p, msg, env = self.run_(smtp(sender="mail-discard@b.example"))
        self.assertEqual(self.end_of_data(p), "250 2.6.0 Message accepted", replies(p))
        self.assertIsNone(msg)
        n = len(self.m.records())
        p, msg, env = self.run_(smtp(sender="mail-accept@b.example", headers=b"X-Test: reject\r\n"))
        self.assertTrue(self.end_of_data(p).startswith("250 2.6.0 Accepted message"), replies(p))
        self.assertIsNotNone(msg)
        self.assertEqual(len(self.m.records()), n)       # accepted at MAIL: no more steps

    def test_milter_rcpt_replies(self):
        p, msg, env = self.run_(smtp(rcpts=("rcpt-reject@d.example", "rcpt-tempfail@d.example",
                                            "rcpt-reply@d.example", "ok@d.example")))
        r = replies(p)
        self.assertEqual(r[3:6], ["550 5.7.1 Command rejected", "451 4.7.1 Service unavailable - try again later",
                                  "550 5.1.1 no such user here"], r)
        self.assertTrue(self.end_of_data(p).startswith("250 "), r)
        self.assertEqual(env, b"Fa@b.example\0Tok@d.example\0\0")

    def test_milter_end_of_data_replies(self):
        cases = {b"reject": ["550 5.7.1 Message content rejected"],
                 b"tempfail": ["451 4.7.1 Service unavailable - try again later"],
                 b"reply": ["554-5.7.9 line one", "554-5.7.9 line two", "554 5.7.9 line three"],
                 b"header-reject": ["550 5.7.1 Message content rejected"],
                 b"body-reject": ["550 5.7.1 Message content rejected"]}
        for action, want in cases.items():
            p, msg, env = self.run_(smtp(headers=b"X-Test: " + action + b"\r\n"))
            r = replies(p)
            self.assertEqual(r[-1 - len(want):-1], want, (action, r))
            self.assertIsNone(msg, action)

    def test_milter_discard_at_end_of_data(self):
        p, msg, env = self.run_(smtp(headers=b"X-Test: discard addheader\r\n"))
        self.assertEqual(self.end_of_data(p), "250 2.6.0 Message accepted", replies(p))
        self.assertIsNone(msg)
        # The next transaction of the session is delivered again.
        data = smtp(headers=b"X-Test: discard\r\n")[:-len(b"QUIT\r\n")] + \
            b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nSubject: second\r\n\r\nx\r\n.\r\nQUIT\r\n"
        p, msg, env = self.run_(data)
        self.assertTrue(self.end_of_data(p).startswith("250 2.6.0 Accepted message"), replies(p))
        self.assertIn(b"Subject: second", msg)

    def test_milter_quarantine_mapping(self):
        p, msg, env = self.run_(smtp(headers=b"X-Test: quarantine\r\n"))
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        self.assertTrue(msg.startswith(b"X-Quarantine: held for review\n"), msg)
        p, msg, env = self.run_(smtp(headers=b"X-Test: quarantine\r\n"), MILTER_QUARANTINE="reject")
        self.assertEqual(self.end_of_data(p), "550 5.7.1 Message content rejected")
        self.assertIsNone(msg)

    def test_milter_progress_keeps_waiting(self):
        p, msg, env = self.run_(smtp(headers=b"X-Test: progress\r\n"), MILTER_CONTENT_TIMEOUT="1")
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))

    def test_milter_timeout_and_default_action(self):
        for action, want in (("tempfail", "451 4.7.1"), ("reject", "550 5.7.1"), ("accept", "250 2.6.0")):
            t = time.monotonic()
            p, msg, env = self.run_(smtp(headers=b"X-Test: sleep\r\n"), MILTER_CONTENT_TIMEOUT="1",
                                    MILTER_DEFAULT_ACTION=action)
            self.assertTrue(self.end_of_data(p).startswith(want), (action, replies(p)))
            self.assertEqual(msg is not None, action == "accept")
            self.assertIn(b"event=failure", p.stderr)
            self.assertLess(time.monotonic() - t, 7)

    def test_milter_skip_body(self):
        body = (b"x" * 100 + b"\r\n") * 2000             # 200 KB: several chunks
        p, msg, env = self.run_(smtp(headers=b"X-Test: body-skip\r\n", body=body))
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        rec = self.last()
        self.assertEqual(rec["chunks"], 1)
        self.assertEqual(len(msg), len(b"From: a@b.example\nTo: c@d.example\nSubject: test\nX-Test: body-skip\n\n")
                         + 101 * 2000)

    def test_milter_large_body_in_chunks(self):
        body = (b"y" * 998 + b"\r\n") * 300
        p, msg, env = self.run_(smtp(headers=b"X-Tag: chunks\r\n", body=body))
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        rec = self.last()
        self.assertEqual(rec["bodylen"], len(body))
        self.assertEqual(rec["body"], hashlib.sha256(body).hexdigest())
        self.assertGreaterEqual(rec["chunks"], 5)

    def test_milter_qmqp_message_before_envelope(self):
        # QMQP gives the message first: the whole transaction is sent at the end.
        msg = b"From: a@b.example\nSubject: qmqp\nX-Test: addheader\n\nqmqp body\n"
        def ns(b):
            return str(len(b)).encode() + b":" + b + b","
        payload = ns(msg) + ns(b"a@b.example") + ns(b"c@d.example")
        out = os.path.join(self.tmp, "qq")
        p = mailfront(["qmqp", "qmail", "accept", "milter"], ns(payload), timeout=60, QMAILHOME=self.tmp,
                      QMAILQUEUE=STANDIN, QQ_OUT=out, MILTERS=self.m.spec, TCPREMOTEIP="127.0.0.1")
        assert_no_sanitizer_report(self, p)
        self.assertTrue(p.stdout.startswith(b"K") or b":K" in p.stdout, p.stdout)
        with open(out + ".msg", "rb") as f:
            got = f.read()
        self.assertIn(b"\nX-Added: added by the milter\n", got)
        self.assertTrue(got.endswith(b"\n\nqmqp body\n"))
        rec = self.last()
        self.assertEqual(rec["sender"], "<a@b.example>")
        self.assertEqual(rec["rcpts"], ["<c@d.example>"])


@unittest.skipUnless(have_pymilter(), "python3-milter not installed")
class MilterModesTest(MilterBase):
    """Milters that answer at connect or HELO, skip replies, or want the
    header values with their leading space; a milter that dies."""

    def with_milter(self, mode):
        m = MilterProcess(self.tmp, mode)
        self.addCleanup(m.stop)
        return m

    def test_milter_connect_reject_sticks(self):
        m = self.with_milter("connect-reject")
        p, msg, env = self.session(smtp(), m.spec)
        r = replies(p)
        self.assertEqual(r[1], "550 5.7.1 Command rejected", r)
        self.assertEqual(r[2], "550 5.7.1 Command rejected", r)
        self.assertIsNone(msg)

    def test_milter_connect_tempfail(self):
        m = self.with_milter("connect-tempfail")
        p, msg, env = self.session(smtp(), m.spec)
        self.assertEqual(replies(p)[1], "451 4.7.1 Service unavailable - try again later")
        self.assertIsNone(msg)

    def test_milter_helo_reject_with_text(self):
        m = self.with_milter("helo-reject")
        p, msg, env = self.session(smtp(), m.spec)
        self.assertEqual(replies(p)[1], "554 5.7.0 helo refused by milter")
        self.assertIsNone(msg)

    def test_milter_no_reply_steps(self):
        m = self.with_milter("noreply")
        p, msg, env = self.session(smtp(headers=b"X-Test: addheader\r\n"), m.spec)
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        self.assertIn(b"\nX-Added: added by the milter\n", msg)
        proto = int(re.search(rb"event=negotiated .* protocol=0x([0-9a-f]+)", p.stderr).group(1), 16)
        self.assertEqual(proto & 0xdf080, 0xdf080)     # NR_CONN..NR_DATA, NR_EOH, NR_BODY, NR_HDR

    def test_milter_leading_space(self):
        m = self.with_milter("leadspc")
        p, msg, env = self.session(smtp(headers=b"X-Tag: spaced\r\nX-Test: addheader\r\n"), m.spec)
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        rec = m.records()[-1]
        self.assertIn(["X-Tag", " spaced"], rec["headers"])
        self.assertIn(b"\nX-Added:added by the milter\n", msg)

    def test_milter_crash(self):
        m = self.with_milter("")
        p, msg, env = self.session(smtp(headers=b"X-Test: crash\r\n"), m.spec)
        self.assertEqual(self.end_of_data(p), "451 4.7.1 Service unavailable - try again later")
        self.assertIsNone(msg)
        m.p.wait(10)
        # Down: the default action decides.
        p, msg, env = self.session(smtp(), m.spec, MILTER_DEFAULT_ACTION="accept")
        self.assertTrue(self.end_of_data(p).startswith("250 2.6.0 Accepted"), replies(p))
        p, msg, env = self.session(smtp(), m.spec, MILTER_DEFAULT_ACTION="reject")
        self.assertEqual(replies(p)[1], "550 5.7.1 Command rejected")

    def test_milter_two_milters_in_order(self):
        a = self.with_milter("")
        b = self.with_milter("")
        p, msg, env = self.session(smtp(headers=b"X-Test: addheader\r\n"), a.spec + ", " + b.spec)
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        self.assertEqual(msg.count(b"X-Added: added by the milter\n"), 2)
        self.assertEqual(len(a.records()), 1)
        self.assertEqual(len(b.records()), 1)


class MilterProtocolErrorsTest(MilterBase):
    """Scripted milters that break the protocol; milters that are down."""

    def raw(self, script, **kw):
        m = RawMilter(script, **kw)
        self.addCleanup(m.close)
        return m

    def test_milter_down_default_actions(self):
        spec = "inet:127.0.0.1:%d" % harness.free_port()
        p, msg, env = self.session(smtp(), spec)
        self.assertEqual(replies(p)[1], "451 4.7.1 Service unavailable - try again later")
        p, msg, env = self.session(smtp(), spec, MILTER_DEFAULT_ACTION="reject")
        self.assertEqual(replies(p)[1], "550 5.7.1 Command rejected")
        p, msg, env = self.session(smtp(), spec, MILTER_DEFAULT_ACTION="accept")
        self.assertTrue(self.end_of_data(p).startswith("250 2.6.0 Accepted"), replies(p))
        self.assertIsNotNone(msg)

    def test_milter_per_milter_settings(self):
        # Postfix's { address, name=value } form: this milter alone fails open.
        spec = "inet:127.0.0.1:%d" % harness.free_port()
        p, msg, env = self.session(smtp(), "{ %s, default_action=accept, connect_timeout=2s }" % spec)
        self.assertTrue(self.end_of_data(p).startswith("250 2.6.0 Accepted"), replies(p))
        m = self.raw(lambda c: None if c == "M" else CONTINUE)
        t = time.monotonic()
        p, msg, env = self.session(smtp(), "{%s,command_timeout=1}" % m.spec, MILTER_COMMAND_TIMEOUT="30")
        self.assertEqual(replies(p)[2], "451 4.7.1 Service unavailable - try again later")
        self.assertLess(time.monotonic() - t, 8)
        p, msg, env = self.session(smtp(), "{ %s, bogus_setting=1 }" % spec)
        self.assertEqual(replies(p)[1], "451 4.7.1 Service unavailable - try again later")

    def test_milter_bad_address_in_list(self):
        p, msg, env = self.session(smtp(), "inet:nohostport")
        self.assertEqual(replies(p)[1], "451 4.7.1 Service unavailable - try again later")

    def test_milter_garbage(self):
        scripts = {
            "unknown reply": lambda c: packet(b"Z"),
            "empty packet": lambda c: b"\0\0\0\0",
            "huge length": lambda c: b"\x7f\xff\xff\xff" + b"c",
            "bad replycode": lambda c: packet(b"y", b"299 2.0.0 fine\0") if c == "M" else CONTINUE,
            "modification before end": lambda c: packet(b"h", b"X-A\0b\0") if c == "M" else CONTINUE,
            "closed": lambda c: CLOSE if c != "C" else CONTINUE,
            "skip outside body": lambda c: packet(b"s") if c == "H" else CONTINUE,
        }
        for name, script in scripts.items():
            m = self.raw(script)
            p, msg, env = self.session(smtp(), m.spec)
            r = replies(p)
            self.assertIn("451 4.7.1 Service unavailable - try again later", r, (name, r))
            self.assertIsNone(msg, name)
            self.assertIn(b"event=failure", p.stderr, name)

    def test_milter_random_answers(self):
        # Well-framed packets with random commands and payloads at random
        # steps: every session ends with a proper reply (no crash, no hang).
        import random
        rnd = random.Random(15)
        for round_ in range(12):
            cmds = b"+-2abcdefhilmpqrsty4Z\0"
            def script(c, rnd=rnd):
                if rnd.random() < 0.6:
                    return CONTINUE
                n = rnd.choice((0, 1, 5, 40))
                return packet(bytes([rnd.choice(cmds)]), bytes(rnd.getrandbits(8) for _ in range(n)))
            m = self.raw(script)
            p, msg, env = self.session(smtp(headers=b"X-A: b\r\n"), m.spec)
            r = replies(p)
            self.assertEqual(r[-1], "221 2.0.0 Good bye.", (round_, r))
            self.assertRegex(self.end_of_data(p) if len(r) > 2 else r[-1], r"^[2-5]\d\d[ -]", (round_, r))

    def test_milter_unrequested_action_is_an_error(self):
        # Adds a header without having asked for SMFIF_ADDHDRS.
        m = self.raw(lambda c: packet(b"h", b"X-A\0b\0") + CONTINUE if c == "E" else CONTINUE, actions=0)
        p, msg, env = self.session(smtp(), m.spec)
        self.assertEqual(self.end_of_data(p), "451 4.7.1 Service unavailable - try again later")

    def test_milter_bad_negotiation(self):
        for kw in ({"version": 7}, {"version": 1}, {"proto": 0x800}, {"actions": 0x400}):
            m = self.raw(lambda c: CONTINUE, **kw)
            p, msg, env = self.session(smtp(), m.spec)
            self.assertEqual(replies(p)[1], "451 4.7.1 Service unavailable - try again later", kw)

    def test_milter_silent_command_timeout(self):
        m = self.raw(lambda c: None if c == "M" else CONTINUE)
        t = time.monotonic()
        p, msg, env = self.session(smtp(), m.spec, MILTER_COMMAND_TIMEOUT="1", MILTER_DEFAULT_ACTION="accept")
        self.assertLess(time.monotonic() - t, 6)
        self.assertTrue(self.end_of_data(p).startswith("250 2.6.0 Accepted"), replies(p))

    def test_milter_skips_declined_steps(self):
        # NOHELO|NOHDRS|NOBODY|NR_RCPT: no H, L, B packets; no wait after R.
        m = self.raw(lambda c: CONTINUE, proto=0x2 | 0x20 | 0x10 | 0x8000)
        p, msg, env = self.session(smtp(), m.spec)
        self.assertTrue(self.end_of_data(p).startswith("250 "), replies(p))
        cmds = [c for c, _ in m.seen if c != "D"]
        self.assertEqual(cmds, ["O", "C", "M", "R", "T", "N", "E", "Q"][:len(cmds)])
        self.assertNotIn("H", cmds)
        self.assertNotIn("L", cmds)
        self.assertNotIn("B", cmds)

    def test_milter_macro_packets(self):
        m = self.raw(lambda c: CONTINUE)
        p, msg, env = self.session(smtp(), m.spec)
        macros = {d[:1]: d[1:].split(b"\0") for c, d in m.seen if c == "D"}
        conn = macros[b"C"]
        self.assertIn(b"{daemon_name}", conn)
        self.assertEqual(conn[conn.index(b"{client_addr}") + 1], b"127.0.0.1")
        self.assertEqual(conn[conn.index(b"{client_port}") + 1], b"40000")
        mail = macros[b"M"]
        self.assertEqual(mail[mail.index(b"{mail_addr}") + 1], b"a@b.example")
        self.assertIn(b"i", mail)
        self.assertEqual(macros[b"R"][macros[b"R"].index(b"{rcpt_addr}") + 1], b"c@d.example")
        connect = [d for c, d in m.seen if c == "C"][0]
        self.assertEqual(connect, b"[127.0.0.1]\x004" + struct.pack(">H", 40000) + b"127.0.0.1\0")


if __name__ == "__main__":
    unittest.main()
