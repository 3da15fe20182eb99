"""Regression tests for the review findings in the SMTP, QMQP and QMTP
protocols (issue 10 items 4/8, 10, 11, 12):

- an AUTH line refused as unknown (no authentication plugin, or
  $AUTH_REQUIRES_TLS outside TLS) never reaches the log with its
  arguments, nor do the continuation lines the client sends after it;
- a control byte in the HELO/EHLO argument is refused (it would reach the
  Received header through helo_domain);
- an empty recipient is refused before any plugin (SMTP, QMQP, QMTP), so
  no queue file ever holds an empty recipient;
- STARTTLS forgets an earlier authentication (RFC 3207 section 4.2).
"""
import base64
import os
import shutil
import subprocess
import unittest

import harness
import test_tls
from harness import TempDirTest, assert_no_sanitizer_report
from test_qmqp_qmtp import qmqp_message, qmtp_message, replies
from test_smtp_session import (EHLO, GREET, LOCAL, NOTIMPL, QUIT, RCPT_OK, SENDER_OK, crlf,
                               log_lines, make_queuedir, queue_files, smtp, wire)

PWFILE = shutil.which("cvm-pwfile") or "/usr/bin/cvm-pwfile"
SECRET = b"Sup3rS3cret-pw"
EMPTY_RCPT = "554 5.1.2 Recipient address may not be empty"
HELO_CTL = "501 5.5.2 Syntax error, control character in the domain."
MUST_AUTH = "530 5.7.1 You must authenticate first."
AUTH_OK = "235 2.7.0 Authentication succeeded."
SENDER_ECHO = "250 Sender='a@b.example'."   # the echo back end's acceptance


def b64(b):
    return base64.b64encode(b).decode()


def setUpModule():
    test_tls.setUpModule()


def tearDownModule():
    test_tls.tearDownModule()


class UnknownAuthMasked(unittest.TestCase):
    """AUTH refused as an unknown command: arguments and the client's next
    lines are not logged."""

    SECRETS = [b64(b"\0alice\0" + SECRET), b64(b"alice"), b64(SECRET)]

    def check(self, data, **env):
        p = smtp(data, ("accept",), **env)
        assert_no_sanitizer_report(self, p)
        for s in self.SECRETS + [SECRET.decode()]:
            self.assertNotIn(s.encode(), p.stderr)
        return p

    def test_auth_plain_initial_response_without_plugin(self):
        p = self.check(crlf("EHLO c", "AUTH PLAIN " + self.SECRETS[0], "QUIT"))
        self.assertEqual(p.stdout, wire(GREET, *EHLO, NOTIMPL, QUIT))
        self.assertIn("AUTH [arguments hidden]", log_lines(p))

    def test_auth_without_mechanism_word(self):
        # A client sending the base64 where the mechanism belongs.
        p = self.check(crlf("EHLO c", "AUTH " + self.SECRETS[0], "QUIT"))
        self.assertEqual(p.stdout, wire(GREET, *EHLO, NOTIMPL, QUIT))

    def test_auth_login_continuations_masked(self):
        p = self.check(crlf("EHLO c", "AUTH LOGIN", self.SECRETS[1], self.SECRETS[2],
                            "NOOP", "FOO bar", "QUIT"))
        self.assertEqual(p.stdout, wire(GREET, *EHLO, NOTIMPL, NOTIMPL, NOTIMPL,
                                        "250 2.3.0 OK", NOTIMPL, QUIT))
        logs = log_lines(p)
        self.assertEqual(logs.count("[line hidden after AUTH]"), 2, logs)
        # After a known command, unknown lines are logged again.
        self.assertIn("FOO bar", logs)

    def test_auth_requires_tls_refusal_masked(self):
        env = dict(CVM_SASL_PLAIN=PWFILE, AUTH_REQUIRES_TLS=1, CVM_PWFILE_PATH="/nonexistent")
        p = smtp(crlf("EHLO c", "AUTH PLAIN " + self.SECRETS[0], "QUIT"),
                 ("cvm-authenticate", "accept"), **env)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout, wire(GREET, *EHLO, NOTIMPL, QUIT))
        self.assertNotIn(self.SECRETS[0].encode(), p.stderr)

    def test_other_unknown_commands_still_logged(self):
        p = self.check(crlf("XYZZY plugh", "QUIT"))
        self.assertIn("XYZZY plugh", log_lines(p))


class HeloControlBytes(unittest.TestCase):
    def session(self, helo):
        p = smtp(crlf(helo, "MAIL FROM:<a@b.example>", "QUIT"), ("accept", "add-received"))
        assert_no_sanitizer_report(self, p)
        return p

    def test_bare_cr_in_helo_refused(self):
        p = self.session(b"HELO evil\rX-Injected: yes")
        self.assertEqual(p.stdout, wire(GREET, HELO_CTL, SENDER_ECHO, QUIT))

    def test_control_bytes_in_ehlo_refused(self):
        for c in (b"\x01", b"\x1b", b"\x7f", b"\t", b"\x0b"):
            p = self.session(b"EHLO evil" + c + b"x")
            self.assertEqual(p.stdout, wire(GREET, HELO_CTL, SENDER_ECHO, QUIT), c)

    def test_no_injected_header(self):
        qd = make_queuedir(self._tmp())
        data = crlf(b"HELO evil\rX-Injected: yes", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>",
                    "DATA", "Subject: x", "", "body", ".", "QUIT")
        p = smtp(data, ("accept", "add-received"), "queuedir", QUEUEDIR=qd, QUEUEDIR_NOSYNC=1)
        assert_no_sanitizer_report(self, p)
        self.assertIn(b"250 2.6.0", p.stdout)
        files = queue_files(qd)
        self.assertEqual(len(files), 1)
        with open(os.path.join(qd, "new", files[0]), "rb") as f:
            msg = f.read()
        self.assertNotIn(b"X-Injected", msg)
        self.assertNotIn(b"\r", msg)

    def test_plain_helo_accepted(self):
        p = self.session(b"HELO client.example")
        self.assertEqual(p.stdout, wire(GREET, f"250 {LOCAL}", SENDER_ECHO, QUIT))

    def _tmp(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="mftest.")
        self.addCleanup(shutil.rmtree, d, True)
        return d


class EmptyRecipient(TempDirTest):
    def test_smtp_empty_recipient_refused_before_plugins(self):
        qd = make_queuedir(self.tmp)
        data = crlf("MAIL FROM:<a@b.example>", "RCPT TO:<>", "RCPT TO:<c@d.example>",
                    "DATA", "Subject: x", "", "body", ".", "QUIT")
        p = smtp(data, ("accept",), "queuedir", QUEUEDIR=qd, QUEUEDIR_NOSYNC=1)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout, wire(GREET, SENDER_OK, EMPTY_RCPT, RCPT_OK,
                                        "354 End your message with a period on a line by itself.",
                                        "250 2.6.0 Message accepted.", QUIT))
        files = queue_files(qd)
        self.assertEqual(len(files), 1)
        with open(os.path.join(qd, "new", files[0]), "rb") as f:
            self.assertTrue(f.read().startswith(b"a@b.example\0c@d.example\0\0"))

    def test_smtp_relayclient_cannot_accept_empty(self):
        p = smtp(crlf("MAIL FROM:<a@b.example>", "RCPT TO:<>", "QUIT"), ("accept-sender", "relayclient"),
                 RELAYCLIENT="")
        self.assertEqual(p.stdout, wire(GREET, SENDER_ECHO, EMPTY_RCPT, QUIT))

    def test_qmqp_empty_recipient_refused(self):
        p = harness.mailfront(["qmqp", "echo", "accept"],
                              qmqp_message(b"x\n", b"a@b", [b"c@d", b""]))
        assert_no_sanitizer_report(self, p)
        self.assertEqual(replies(p.stdout), [b"D" + EMPTY_RCPT[4:].encode()])

    def test_qmtp_empty_recipient_refused(self):
        p = harness.mailfront(["qmtp", "echo", "accept"],
                              qmtp_message(b"x\n", b"a@b", [b""]) + qmtp_message(b"y\n", b"a@b", [b"c@d"]))
        assert_no_sanitizer_report(self, p)
        r = replies(p.stdout)
        self.assertEqual(r[0], b"D" + EMPTY_RCPT[4:].encode())
        self.assertTrue(r[1].startswith(b"K"), r)


class StartTLSForgetsAuth(TempDirTest):
    """AUTH, then STARTTLS: the authentication is gone inside TLS."""

    def setUp(self):
        super().setUp()
        if not os.path.exists(PWFILE):
            self.fail("cvm-pwfile (Debian package cvm) not installed")
        self.pw = os.path.join(self.tmp, "passwd")
        with open(self.pw, "w") as f:
            f.write(f"alice:{SECRET.decode()}:1000:1001:Alice:{self.tmp}:/bin/sh\n")

    def test_starttls_forgets_auth(self):
        p = test_tls.start_pipe(("smtp", "echo", "cvm-authenticate", "require-auth", "accept"),
                                CVM_SASL_PLAIN=PWFILE, CVM_PWFILE_PATH=self.pw)
        c = test_tls.PipeTLS(p)
        try:
            self.assertEqual(c.read_plain_line(), GREET)
            c.send_plain(crlf("AUTH PLAIN " + b64(b"\0alice\0" + SECRET)))
            self.assertEqual(c.read_plain_line(), AUTH_OK)
            c.send_plain(crlf("MAIL FROM:<a@b.example>"))
            self.assertEqual(c.read_plain_line(), SENDER_ECHO)
            c.send_plain(crlf("RSET", "STARTTLS"))
            self.assertEqual(c.read_plain_line(), "250 2.3.0 OK")
            self.assertEqual(c.read_plain_line(), test_tls.READY)
            c.start_tls(test_tls.client_context())
            c.send(crlf("MAIL FROM:<a@b.example>"))
            self.assertEqual(c.read_reply(), [MUST_AUTH])
            # AUTH is possible again (not "already authenticated").
            c.send(crlf("AUTH PLAIN " + b64(b"\0alice\0" + SECRET)))
            self.assertEqual(c.read_reply(), [AUTH_OK])
            c.send(crlf("MAIL FROM:<a@b.example>", "QUIT"))
            self.assertEqual(c.read_reply(), [SENDER_ECHO])
            self.assertEqual(c.read_reply(), [QUIT])
        finally:
            test_tls.finish(self, p)


if __name__ == "__main__":
    unittest.main()
