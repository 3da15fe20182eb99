"""SMTP over a real TCP listener: ucspi-tcp's tcpserver started by the test
runs our mailfront per connection on 127.0.0.1; real clients (Python's
smtplib and swaks) talk to it, with and without pipelining.

Every network step has a timeout and every loop a fixed count; the
listener is stopped by its process group when a test ends.
"""
import concurrent.futures
import os
import shutil
import smtplib
import socket
import subprocess
import time
import unittest

import harness
from harness import TempDirTest
from test_smtp_session import (BARE, EHLO, GO_AHEAD, GREET, MSG_OK, QUIT, RCPT_OK, SENDER_OK,
                               crlf, make_queuedir, queue_files, wire)

TIMEOUT = 15
MESSAGE = (b"From: a@b.example\r\nTo: c@d.example\r\nSubject: tcp test\r\n\r\n"
           b"line one\r\n.starts with a dot\r\n..two dots\r\n.\r\n"    # smtplib stuffs these
           + b"x" * 5000 + b"\r\n" + "8-bit: \u00e4\u00f6".encode("utf-8") + b"\r\nlast\r\n")


def decoded(msg):
    return msg.replace(b"\r\n", b"\n")


def queue_messages(qd):
    out = []
    for name in queue_files(qd):
        with open(os.path.join(qd, "new", name), "rb") as f:
            env, _, body = f.read().partition(b"\0\0")
        parts = env.split(b"\0")
        out.append((parts[0], parts[1:], body))
    return sorted(out)


class TcpCase(TempDirTest):
    backend = "queuedir"
    plugins = ("accept",)

    def setUp(self):
        super().setUp()
        self.qd = make_queuedir(self.tmp)
        env = harness.base_env(QUEUEDIR=self.qd, QUEUEDIR_NOSYNC=1)
        argv = [harness.bin_path("mailfront"), "smtp", self.backend] + list(self.plugins)
        cm = harness.tcpserver(argv, env=env, limit=20)
        self.port, self.server = cm.__enter__()
        self._cm = cm

    def tearDown(self):
        self._cm.__exit__(None, None, None)
        err = self.server.stderr.read().decode("latin-1", "replace")
        self.server.stderr.close()
        self.assertNotIn("AddressSanitizer", err)
        self.assertNotIn("runtime error:", err)
        super().tearDown()

    def raw(self, data, expect_close=True):
        """Send data in one write, read every reply until the peer closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            out = b""
            end = time.time() + TIMEOUT
            while time.time() < end:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
            return out


class SmtplibTest(TcpCase):
    def test_ehlo_and_one_message(self):
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.example", timeout=TIMEOUT) as c:
            code, text = c.ehlo()
            self.assertEqual((code, text), (250, b"mx.test\n8BITMIME\nENHANCEDSTATUSCODES\nPIPELINING"))
            for ext in ("8bitmime", "enhancedstatuscodes", "pipelining"):
                self.assertTrue(c.has_extn(ext), ext)
            self.assertEqual(c.mail("a@b.example"), (250, b"2.1.0 Sender accepted."))
            self.assertEqual(c.rcpt("c@d.example"), (250, b"2.1.5 Recipient accepted."))
            self.assertEqual(c.rcpt("e@f.example"), (250, b"2.1.5 Recipient accepted."))
            self.assertEqual(c.data(MESSAGE), (250, b"2.6.0 Message accepted."))
            self.assertEqual(c.noop(), (250, b"2.3.0 OK"))
        self.assertEqual(queue_messages(self.qd),
                         [(b"a@b.example", [b"c@d.example", b"e@f.example"], decoded(MESSAGE))])

    def test_sendmail_several_messages_per_connection(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=TIMEOUT) as c:
            for i in range(5):
                refused = c.sendmail("s%d@x.example" % i, ["r%d@y.example" % i, "q%d@y.example" % i],
                                     b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
                self.assertEqual(refused, {})
            self.assertEqual(c.rset(), (250, b"2.3.0 OK"))
            self.assertEqual(c.verify("someone"), (252, b"2.5.2 Send some mail, I'll try my best."))
            self.assertEqual(c.docmd("HELP"), (214, b"2.0.0 Help not available."))
        msgs = queue_messages(self.qd)
        self.assertEqual(len(msgs), 5)
        for i, (s, r, body) in enumerate(msgs):
            self.assertEqual((s, r[0], body), (b"s%d@x.example" % i, b"r%d@y.example" % i,
                                               b"Subject: %d\n\nbody %d\n" % (i, i)))

    def test_bare_lf_from_smtplib(self):
        # smtplib turns bare LF into CRLF only for str messages; bytes go out
        # as they are, and a bare LF in a CRLF session is refused.
        with smtplib.SMTP("127.0.0.1", self.port, timeout=TIMEOUT) as c:
            c.sendmail("a@b", ["c@d"], "Subject: lf\n\nline\n.dot\n")
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                c.sendmail("e@f", ["g@h"], b"Subject: lf\n\nline\n.dot\n")
            self.assertEqual((cm.exception.smtp_code, cm.exception.smtp_error), (550, BARE[4:].encode()))
            self.assertEqual(c.noop(), (250, b"2.3.0 OK"))
        self.assertEqual(queue_messages(self.qd), [(b"a@b", [b"c@d"], b"Subject: lf\n\nline\n.dot\n")])

    def test_errors_seen_by_smtplib(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=TIMEOUT) as c:
            self.assertEqual(c.docmd("DATA"), (503, b"5.5.1 You must send MAIL FROM: first"))
            self.assertEqual(c.docmd("MAIL FROM:<broken"), (501, b"5.5.2 Syntax error in address parameter."))
            self.assertEqual(c.docmd("BOGUS"), (500, b"5.5.1 Not implemented."))
            self.assertEqual(c.docmd("NOOP " + "x" * 5000), (500, b"5.5.2 Line too long."))
            self.assertEqual(c.noop(), (250, b"2.3.0 OK"))

    def test_parallel_clients(self):
        def client(n):
            with smtplib.SMTP("127.0.0.1", self.port, timeout=TIMEOUT) as c:
                for i in range(3):
                    c.sendmail("c%d@x" % n, ["m%d@y" % i], b"Subject: %d.%d\r\n\r\nhi\r\n" % (n, i))
            return n
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            self.assertEqual(sorted(ex.map(client, range(8), timeout=60)), list(range(8)))
        self.assertEqual(len(queue_files(self.qd)), 24)
        self.assertEqual(queue_files(self.qd, "tmp"), [])


class PipelinedTest(TcpCase):
    def test_whole_session_in_one_write(self):
        data = (crlf("EHLO c.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<e@f>", "DATA")
                + b"Subject: p\r\n\r\n..x\r\n.\r\n"
                + crlf("MAIL FROM:<g@h>", "RCPT TO:<i@j>", "DATA", "second", ".", "QUIT"))
        self.assertEqual(self.raw(data), wire(GREET, *EHLO, SENDER_OK, RCPT_OK, RCPT_OK, GO_AHEAD, MSG_OK,
                                              SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK, QUIT))
        self.assertEqual(queue_messages(self.qd), [(b"a@b", [b"c@d", b"e@f"], b"Subject: p\n\n.x\n"),
                                                   (b"g@h", [b"i@j"], b"second\n")])

    def test_pipelined_groups_rfc2920(self):
        # EHLO, then MAIL+RCPTs+DATA as one group, then the body.
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as s, s.makefile("rb") as f:
            self.assertEqual(f.readline(), wire(GREET))
            s.sendall(crlf("EHLO c"))
            self.assertEqual(b"".join(f.readline() for _ in EHLO), wire(*EHLO))
            s.sendall(crlf("MAIL FROM:<a@b>", *["RCPT TO:<r%d@x>" % i for i in range(50)], "DATA"))
            self.assertEqual(b"".join(f.readline() for _ in range(52)),
                             wire(SENDER_OK, *[RCPT_OK] * 50, GO_AHEAD))
            body = b"".join(b"line %d\r\n" % i for i in range(20000))
            s.sendall(body + b".\r\nQUIT\r\n")
            self.assertEqual(f.readline() + f.readline(), wire(MSG_OK, QUIT))
            self.assertEqual(f.readline(), b"")
        (msg,) = queue_messages(self.qd)
        self.assertEqual(len(msg[1]), 50)
        self.assertEqual(msg[2], decoded(body))

    def test_smuggling_over_tcp(self):
        data = (crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA") + b"x\n.\n"
                + crlf("MAIL FROM:<evil@x>", "RCPT TO:<v@y>", "DATA", "evil", ".", "QUIT"))
        self.assertEqual(self.raw(data), wire(GREET, *EHLO, SENDER_OK, RCPT_OK, GO_AHEAD, BARE, QUIT))
        self.assertEqual(queue_files(self.qd), [])

    def test_client_vanishes_mid_data(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as s:
            s.sendall(crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA") + b"half a message\r\n" * 100)
            with s.makefile("rb") as f:     # (the file keeps the socket open)
                while f.readline() not in (wire(GO_AHEAD), b""):
                    pass
        # give the server a moment to notice the end of input
        end = time.time() + TIMEOUT
        while time.time() < end and os.listdir(os.path.join(self.qd, "tmp")):
            time.sleep(0.05)
        self.assertEqual(queue_files(self.qd), [])
        self.assertEqual(queue_files(self.qd, "tmp"), [])


@unittest.skipUnless(shutil.which("swaks"), "swaks not installed")
class SwaksTest(TcpCase):
    def swaks(self, *args):
        argv = ["swaks", "--server", "127.0.0.1", "--port", str(self.port), "--timeout", str(TIMEOUT),
                "--helo", "client.example"] + list(args)
        return subprocess.run(argv, capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin"})

    def check_delivery(self, out, pipelined):
        text = out.stdout.decode("latin-1")
        self.assertEqual(out.returncode, 0, text + out.stderr.decode("latin-1"))
        self.assertIn("<-  250 2.6.0 Message accepted.", text)
        self.assertIn("<-  221 2.0.0 Good bye.", text)
        lines = text.splitlines()
        i = lines.index(" -> MAIL FROM:<a@b.example>")
        # pipelined: all of MAIL/RCPT/DATA go out before the first reply
        self.assertEqual(lines[i + 1].startswith(" -> RCPT"), pipelined, text)
        (msg,) = queue_messages(self.qd)
        self.assertEqual(msg[:2], (b"a@b.example", [b"c@d.example", b"e@f.example"]))
        self.assertIn(b"Subject: swaks test\n", msg[2])
        self.assertTrue(msg[2].endswith(b"\n\nhello\n.dot line\n\n\n"), msg[2][-80:])
        self.assertNotIn(b"\r", msg[2])

    def test_swaks_plain(self):
        out = self.swaks("--from", "a@b.example", "--to", "c@d.example,e@f.example",
                         "--h-Subject", "swaks test", "--body", "hello\n.dot line\n")
        self.check_delivery(out, pipelined=False)

    def test_swaks_pipelined(self):
        out = self.swaks("--pipeline", "--from", "a@b.example", "--to", "c@d.example,e@f.example",
                         "--h-Subject", "swaks test", "--body", "hello\n.dot line\n")
        self.check_delivery(out, pipelined=True)

    def test_swaks_refused_recipient(self):
        self._cm.__exit__(None, None, None)
        self.server.stderr.close()
        env = harness.base_env(QUEUEDIR=self.qd)
        argv = [harness.bin_path("mailfront"), "smtp", "queuedir", "accept-sender"]
        self._cm = harness.tcpserver(argv, env=env, limit=5)
        self.port, self.server = self._cm.__enter__()
        out = self.swaks("--from", "a@b.example", "--to", "c@d.example")
        text = out.stdout.decode("latin-1")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("<** 550 5.1.0 Mail system is not configured to accept that recipient", text)
        self.assertEqual(queue_files(self.qd), [])
