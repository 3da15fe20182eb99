"""SMTP transcripts over stdin: a session in, the exact reply stream out.

protocols.md "SMTP" (reply table, command splitting, transaction rules,
the quirks we fix, line limits, end of input and timeouts) with the echo
and queuedir back ends.  The helpers at the top are imported by the other
test_smtp_*.py files (functions only, so no test runs twice).
"""
import os
import subprocess
import time

import harness
from harness import TempDirTest, assert_no_sanitizer_report

LOCAL = "mx.test"
GREET = f"220 {LOCAL} mailfront ESMTP"
EHLO = [f"250-{LOCAL}", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250 PIPELINING"]
SENDER_OK = "250 2.1.0 Sender accepted."
RCPT_OK = "250 2.1.5 Recipient accepted."
GO_AHEAD = "354 End your message with a period on a line by itself."
MSG_OK = "250 2.6.0 Message accepted."
MAIL_FIRST = "503 5.5.1 You must send MAIL FROM: first"
RCPT_FIRST = "503 5.5.1 You must send RCPT TO: first"
BAD_ADDR = "501 5.5.2 Syntax error in address parameter."
OK = "250 2.3.0 OK"
NOTIMPL = "500 5.5.1 Not implemented."
QUIT = "221 2.0.0 Good bye."
TOO_LONG = "500 5.5.2 Line too long."
NUL_CMD = "500 5.5.2 Syntax error, NUL byte in command."
BARE = "550 5.6.0 Message refused: bare CR or LF in the body (RFC 5321 section 2.3.8)."
NO_SENDER = "550 5.1.0 Mail system is not configured to accept that sender"
NO_RCPT = "550 5.1.0 Mail system is not configured to accept that recipient"


def wire(*replies):
    """The bytes a list of reply lines makes on the wire."""
    return b"".join(r.encode("latin-1") + b"\r\n" for r in replies)


def crlf(*lines):
    return b"".join((l if isinstance(l, bytes) else l.encode("latin-1")) + b"\r\n" for l in lines)


def lf(*lines):
    return b"".join((l if isinstance(l, bytes) else l.encode("latin-1")) + b"\n" for l in lines)


def smtp(data, plugins=("accept",), backend="echo", timeout=30, **env):
    """Run one SMTP session of ours over stdin."""
    env.setdefault("TCPLOCALHOST", LOCAL)
    return harness.mailfront(["smtp", backend] + list(plugins), data, timeout=timeout, **env)


def log_lines(proc):
    """stderr without the `mailfront[PID]: ` prefixes."""
    out = []
    for line in proc.stderr.decode("latin-1").splitlines():
        head, sep, rest = line.partition("]: ")
        out.append(rest if sep and head.startswith("mailfront[") else line)
    return out


def queue_files(qdir, sub="new"):
    d = os.path.join(qdir, sub)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def make_queuedir(parent):
    q = os.path.join(parent, "queue")
    for sub in ("tmp", "new"):
        os.makedirs(os.path.join(q, sub))
    return q


class Transcript:
    """Mixin: run a session and compare the wire byte for byte."""

    def expect(self, data, replies, rc=0, plugins=("accept",), backend="echo", **env):
        p = smtp(data, plugins, backend, **env)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout.decode("latin-1").split("\r\n"),
                         "\r\n".join(list(replies) + [""]).split("\r\n"), p.stderr[-2000:])
        self.assertEqual(p.stdout, wire(*replies))
        self.assertEqual(p.returncode, rc, p.stderr[-2000:])
        return p


ENVELOPE = ["MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>"]
ENV_REPLIES = ["250 Sender='a@b.example'.", "250 Recipient='c@d.example'."]


class GreetingTest(Transcript, TempDirTest):
    def test_greeting_and_quit(self):
        self.expect(crlf("QUIT"), [GREET, QUIT])

    def test_localhost_unset_or_empty_is_unknown(self):
        self.expect(crlf("HELO x", "QUIT"), ["220 unknown mailfront ESMTP", "250 unknown", QUIT],
                    TCPLOCALHOST=None)
        self.expect(crlf("HELO x", "QUIT"), ["220 unknown mailfront ESMTP", "250 unknown", QUIT],
                    TCPLOCALHOST="")

    def test_proto_prefix(self):
        self.expect(crlf("HELO x"), ["220 h6 mailfront ESMTP", "250 h6"], PROTO="TCP6",
                    TCP6LOCALHOST="h6")

    def test_smtpgreeting_replaces_host_and_name(self):
        self.expect(crlf("EHLO x"), ["220 Welcome to the test ESMTP"] + EHLO,
                    SMTPGREETING="Welcome to the test")

    def test_helo_forms(self):
        self.expect(crlf("HELO", "HELO client.example", "helo a b c", "HeLo\tx"),
                    [GREET] + [f"250 {LOCAL}"] * 4)

    def test_ehlo_forms(self):
        self.expect(crlf("EHLO", "ehlo client.example", "EHLO a b"), [GREET] + EHLO * 3)

    def test_helo_domain_reaches_no_reply(self):
        # HELO without accept plugins still answers 250: helo needs no plugin.
        self.expect(crlf("HELO x", "QUIT"), [GREET, f"250 {LOCAL}", QUIT], plugins=())


class CommandTest(Transcript, TempDirTest):
    def test_reply_table(self):
        data = crlf("NOOP", "RSET", "VRFY postmaster", "HELP", "HELP me", "EXPN list", "QUIT")
        self.expect(data, [GREET, OK, OK, "252 2.5.2 Send some mail, I'll try my best.",
                           "214 2.0.0 Help not available.", "214 2.0.0 Help not available.",
                           NOTIMPL, QUIT])

    def test_full_transaction(self):
        data = crlf("EHLO c.example", *ENVELOPE, "RCPT TO:<e@f.example>", "DATA",
                    "Subject: x", "", "body", ".", "QUIT")
        self.expect(data, [GREET] + EHLO + ENV_REPLIES +
                    ["250 Recipient='e@f.example'.", GO_AHEAD, "250 Received 17 bytes.", QUIT])

    def test_default_texts_without_backend_text(self):
        qd = make_queuedir(self.tmp)
        data = crlf("HELO c", *ENVELOPE, "DATA", "x", ".", "QUIT")
        self.expect(data, [GREET, f"250 {LOCAL}", SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK, QUIT],
                    backend="queuedir", QUEUEDIR=qd, QUEUEDIR_NOSYNC=1)

    def test_commands_case_insensitive(self):
        data = crlf("mail from:<a@b>", "Rcpt To:<c@d>", "dAtA", ".", "nOoP", "QuIt")
        self.expect(data, [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", GO_AHEAD,
                           "250 Received 0 bytes.", OK, QUIT])

    def test_from_to_keywords_not_checked(self):
        self.expect(crlf("MAIL TO:<a@b>", "RCPT FROM:<c@d>", "RCPT <e@f>"),
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "250 Recipient='e@f'."])

    def test_tab_separates_command_word(self):
        self.expect(crlf("MAIL\tFROM:<a@b>", "NOOP\t \tx"), [GREET, "250 Sender='a@b'.", OK])

    def test_builtins_ignore_arguments(self):
        data = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA now please", ".",
                    "RSET all", "NOOP x", "QUIT now")
        self.expect(data, [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", GO_AHEAD,
                           "250 Received 0 bytes.", OK, OK, QUIT])

    def test_quit_ends_session(self):
        self.expect(crlf("QUIT", "NOOP"), [GREET, QUIT])

    def test_empty_and_blank_lines_are_unknown(self):
        p = self.expect(crlf("", "   ", "NOOP"), [GREET, NOTIMPL, NOTIMPL, OK])
        self.assertIn(NOTIMPL, log_lines(p))

    def test_unknown_command_logged(self):
        p = self.expect(crlf("FOO bar  baz", "XYZZY"), [GREET, NOTIMPL, NOTIMPL])
        log = log_lines(p)
        self.assertIn("FOO bar  baz", log)
        self.assertIn("XYZZY ", log)
        self.assertEqual(log.count(NOTIMPL), 2)

    def test_mail_rcpt_logged_and_errors_logged(self):
        p = self.expect(crlf("RCPT TO:<x>", "MAIL FROM:<a@b> SIZE=5", "RCPT TO:<c@d>"),
                        [GREET, MAIL_FIRST, "250 Sender='a@b'. [SIZE=5]", "250 Recipient='c@d'."])
        log = log_lines(p)
        self.assertEqual(log[:4], ["RCPT TO:<x>", MAIL_FIRST, "MAIL FROM:<a@b> SIZE=5", "RCPT TO:<c@d>"])
        self.assertRegex(log[-1], r"^bytes in: 52 bytes out: \d+$")

    def test_starttls_without_tls(self):
        p = self.expect(crlf("STARTTLS", "starttls now", "QUIT"), [GREET, NOTIMPL, NOTIMPL, QUIT])
        self.assertNotIn("STARTTLS ", log_lines(p))
        self.assertNotIn("starttls now", log_lines(p))


class TransactionTest(Transcript, TempDirTest):
    def test_ordering_errors(self):
        data = crlf("RCPT TO:<a>", "DATA", "MAIL FROM:<>", "DATA", "RCPT TO:<>", "DATA", ".")
        # An empty recipient is refused before any plugin (no null forward-path).
        self.expect(data, [GREET, MAIL_FIRST, MAIL_FIRST, "250 Sender=''.", RCPT_FIRST,
                           "554 5.1.2 Recipient address may not be empty", RCPT_FIRST, NOTIMPL])

    def test_second_data_needs_new_mail(self):
        # Quirk fixed (README.md table): the transaction ends with DATA.
        data = crlf(*ENVELOPE, "DATA", "one", ".", "DATA", "RCPT TO:<x@y>", "QUIT")
        self.expect(data, [GREET] + ENV_REPLIES +
                    [GO_AHEAD, "250 Received 4 bytes.", MAIL_FIRST, MAIL_FIRST, QUIT])

    def test_helo_ehlo_end_the_transaction(self):
        # Quirk fixed (README.md, protocols.md HELO/EHLO): like RSET.
        for cmd, rep in (("HELO x", [f"250 {LOCAL}"]), ("EHLO x", EHLO)):
            data = crlf(*ENVELOPE, cmd, "DATA", "RCPT TO:<e@f>", "QUIT")
            self.expect(data, [GREET] + ENV_REPLIES + rep + [MAIL_FIRST, MAIL_FIRST, QUIT])

    def test_rset_clears(self):
        data = crlf(*ENVELOPE, "RSET", "DATA", "RCPT TO:<c@d>", "QUIT")
        self.expect(data, [GREET] + ENV_REPLIES + [OK, MAIL_FIRST, MAIL_FIRST, QUIT])

    def test_mail_resets_transaction(self):
        data = crlf(*ENVELOPE, "MAIL FROM:<n@m>", "DATA", "QUIT")
        self.expect(data, [GREET] + ENV_REPLIES + ["250 Sender='n@m'.", RCPT_FIRST, QUIT])

    def test_bad_mail_leaves_no_sender(self):
        data = crlf(*ENVELOPE, "MAIL FROM:<broken", "RCPT TO:<c@d>", "DATA", "QUIT")
        self.expect(data, [GREET] + ENV_REPLIES + [BAD_ADDR, MAIL_FIRST, MAIL_FIRST, QUIT])

    def test_refused_sender_leaves_no_sender(self):
        data = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "QUIT")
        self.expect(data, [GREET, NO_SENDER, MAIL_FIRST, MAIL_FIRST, QUIT], plugins=())
        self.expect(data, [GREET, "451 go away", MAIL_FIRST, MAIL_FIRST, QUIT],
                    plugins=("reject", "accept"), REJECT="go away")

    def test_refused_recipient_keeps_transaction(self):
        data = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "QUIT")
        self.expect(data, [GREET, "250 Sender='a@b'.", NO_RCPT, RCPT_FIRST, QUIT],
                    plugins=("accept-sender",))
        data = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<bad", "DATA", ".")
        self.expect(data, [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", BAD_ADDR,
                           GO_AHEAD, "250 Received 0 bytes."])

    def test_two_messages_one_session(self):
        data = crlf(*ENVELOPE, "DATA", "first", ".", "MAIL FROM:<x@y>", "RCPT TO:<z@w>",
                    "DATA", "second message", "..", ".", "QUIT")
        self.expect(data, [GREET] + ENV_REPLIES + [GO_AHEAD, "250 Received 6 bytes.",
                                                   "250 Sender='x@y'.", "250 Recipient='z@w'.",
                                                   GO_AHEAD, "250 Received 17 bytes.", QUIT])

    def test_address_forms(self):
        data = crlf("MAIL FROM:<\"a b\"@c> X=1  Y", "MAIL FROM:<@r1,@r2:u@d>", "MAIL FROM:a@b",
                    "MAIL FROM:   a@b SIZE=1", "MAIL FROM:<a\\>b>", "MAIL FROM:", "MAIL",
                    "MAIL FROM:<x", "RCPT TO:<>")
        self.expect(data, [GREET, "250 Sender='a b@c'. [X=1] [] [Y]", "250 Sender='u@d'.",
                           "250 Sender='a@b'.", "250 Sender='a@b'. [SIZE=1]", "250 Sender='a>b'.",
                           BAD_ADDR, BAD_ADDR, BAD_ADDR, MAIL_FIRST])

    def test_final_line_without_newline(self):
        # Quirk fixed: the reference loses the last byte (QUIT -> QUI).
        self.expect(b"NOOP\r\nQUIT", [GREET, OK, QUIT])
        self.expect(b"HELO x\nNOOP", [GREET, f"250 {LOCAL}", OK])
        self.expect(b"MAIL FROM:<a@bc>", [GREET, "250 Sender='a@bc'."])

    def test_queuedir_file_format(self):
        qd = make_queuedir(self.tmp)
        data = crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<>", "DATA",
                    "Subject: t", "", "..dot", "line\tTAB", ".", "QUIT")
        self.expect(data, [GREET] + EHLO + [SENDER_OK, RCPT_OK, "554 5.1.2 Recipient address may not be empty",
                                            GO_AHEAD, MSG_OK, QUIT],
                    backend="queuedir", QUEUEDIR=qd)
        files = queue_files(qd)
        self.assertEqual(len(files), 1)
        self.assertRegex(files[0], r"^\d+\.\d{6}\.\d+$")
        self.assertEqual(queue_files(qd, "tmp"), [])
        with open(os.path.join(qd, "new", files[0]), "rb") as f:
            self.assertEqual(f.read(), b"a@b\0c@d\0\0Subject: t\n\n.dot\nline\tTAB\n")


class LimitTest(Transcript, TempDirTest):
    def test_maxnotimpl(self):
        data = lf("FOO", "BAR", "NOOP", "A", "B", "C", "NOOP")
        p = self.expect(data, [GREET, NOTIMPL, NOTIMPL, OK, NOTIMPL, NOTIMPL,
                               "503-5.5.0 Too many unimplemented commands.",
                               "503 5.5.0 Closing connection."], rc=1, MAXNOTIMPL=2)
        log = log_lines(p)
        self.assertIn("503 5.5.0 Too many unimplemented commands.", log)
        self.assertIn("503 5.5.0 Closing connection.", log)

    def test_maxnotimpl_unset_or_zero_is_unlimited(self):
        data = lf(*["X%d" % i for i in range(30)], "QUIT")
        self.expect(data, [GREET] + [NOTIMPL] * 30 + [QUIT])
        self.expect(data, [GREET] + [NOTIMPL] * 30 + [QUIT], MAXNOTIMPL=0)

    def test_starttls_not_counted_as_unknown(self):
        # 2.22 (README.md "differs from the 2.12 oracle" item 6): STARTTLS is
        # a built-in command: 500, but not an unknown one.
        data = lf("FOO", "STARTTLS", "BAR", "QUIT")
        self.expect(data, [GREET, NOTIMPL, NOTIMPL, NOTIMPL, QUIT], MAXNOTIMPL=1)

    def test_line_limit_boundary(self):
        ok = b"NOOP " + b"x" * (4096 - 7) + b"\r\n"
        self.assertEqual(len(ok), 4096)
        long = b"NOOP " + b"x" * (4096 - 6) + b"\r\n"
        self.expect(ok + long + crlf("QUIT"), [GREET, OK, TOO_LONG, QUIT])

    def test_long_line_read_to_its_end(self):
        # The rest of an over-long line must never run as a command.
        evil = b"NOOP " + b"x" * 10000 + b" QUIT\r\n" + b"x" * 5000 + b"\r\nRSET\r\n"
        p = self.expect(evil + crlf("MAIL FROM:<a@b>", "QUIT"),
                        [GREET, TOO_LONG, TOO_LONG, OK, "250 Sender='a@b'.", QUIT])
        self.assertIn(TOO_LONG, log_lines(p))

    def test_huge_line_bounded(self):
        # 8 MiB without a line end: answered once, memory stays bounded.
        self.expect(b"MAIL FROM:<" + b"a" * (8 << 20) + b">\r\nQUIT\r\n", [GREET, TOO_LONG, QUIT])

    def test_smtp_maxline_setting(self):
        line = b"NOOP " + b"y" * 700 + b"\r\n"
        self.expect(line + crlf("QUIT"), [GREET, TOO_LONG, QUIT], SMTP_MAXLINE=600)
        self.expect(line + crlf("QUIT"), [GREET, OK, QUIT], SMTP_MAXLINE=800)
        # below the minimum of 512: 512 applies
        self.expect(b"NOOP " + b"z" * 400 + b"\r\n", [GREET, OK], SMTP_MAXLINE=10)
        self.expect(b"NOOP " + b"z" * 600 + b"\r\n", [GREET, TOO_LONG], SMTP_MAXLINE=10)

    def test_nul_in_command(self):
        data = b"NO\0OP\r\nMAIL FROM:<a\0b>\r\n\0\r\nQUIT\r\n"
        p = self.expect(data, [GREET, NUL_CMD, NUL_CMD, NUL_CMD, QUIT])
        self.assertFalse(any(l.startswith("MAIL") for l in log_lines(p)))


class EndOfInputTest(Transcript, TempDirTest):
    def test_eof_between_commands(self):
        p = self.expect(crlf("NOOP"), [GREET, OK])
        self.assertEqual(log_lines(p), [f"bytes in: 6 bytes out: {len(wire(GREET, OK))}"])

    def test_eof_in_data(self):
        for tail in (b"", b"partial", b"line\r\n", b"line\r\n.", b"x\r\n.\r", b"x\n.\r"):
            qd = make_queuedir(os.path.join(self.tmp, str(len(os.listdir(self.tmp)))))
            data = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA") + tail
            p = self.expect(data, [GREET, SENDER_OK, RCPT_OK, GO_AHEAD], rc=1,
                            backend="queuedir", QUEUEDIR=qd)
            self.assertIn("Connection dropped", log_lines(p))
            self.assertEqual(queue_files(qd), [])
            self.assertEqual(queue_files(qd, "tmp"), [])

    def _idle(self, data, **env):
        """Send data and keep stdin open until the process ends by itself."""
        e = harness.base_env(TCPLOCALHOST=LOCAL, **env)
        with open(os.path.join(self.tmp, "out"), "w+b") as out, open(os.path.join(self.tmp, "err"), "w+b") as err:
            p = subprocess.Popen([harness.bin_path("mailfront"), "smtp", "echo", "accept"],
                                 stdin=subprocess.PIPE, stdout=out, stderr=err, env=e)
            t0 = time.time()
            with harness.reaped(p):
                p.stdin.write(data)
                p.stdin.flush()
                p.wait(timeout=15)
            dt = time.time() - t0
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        return p, dt

    def test_timeout_between_commands(self):
        p, dt = self._idle(crlf("NOOP"), TIMEOUT=1)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, wire(GREET, OK))
        self.assertEqual(log_lines(p)[:-1], [])
        self.assertGreater(dt, 0.9)     # the timeout ended it, not end of input
        self.assertLess(dt, 10)

    def test_timeout_in_data(self):
        p, dt = self._idle(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "half"), TIMEOUT=1)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, wire(GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", GO_AHEAD))
        self.assertIn("Timed out", log_lines(p))
        self.assertGreater(dt, 0.9)

    def test_session_timeout(self):
        # Alarm: exit 0 at once, no reply, even while data keeps coming.
        e = harness.base_env(TCPLOCALHOST=LOCAL, SESSION_TIMEOUT=1, TIMEOUT=30)
        p = subprocess.Popen([harness.bin_path("mailfront"), "smtp", "echo", "accept"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        t0 = time.time()
        try:
            p.stdin.write(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"))
            p.stdin.flush()
            while p.poll() is None and time.time() - t0 < 10:
                p.stdin.write(b"more body\r\n")
                p.stdin.flush()
                time.sleep(0.1)
        except BrokenPipeError:
            pass
        out, err = p.communicate(timeout=15)
        p.stdout, p.stderr = out, err
        assert_no_sanitizer_report(self, p)
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(out, wire(GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", GO_AHEAD))
        self.assertNotIn("Timed out", log_lines(p))

    def test_write_failure(self):
        # A failed reply ends the session with 1; a failed greeting with 0.
        e = harness.base_env(TCPLOCALHOST=LOCAL)
        r, w = os.pipe()
        os.close(r)
        p = subprocess.run([harness.bin_path("mailfront"), "smtp", "echo"], input=crlf("NOOP"),
                           stdout=w, stderr=subprocess.PIPE, env=e, timeout=30)
        os.close(w)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 0)
        p = subprocess.Popen([harness.bin_path("mailfront"), "smtp", "echo"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        self.assertEqual(p.stdout.readline(), wire(GREET))
        p.stdout.close()
        p.stdin.write(crlf("NOOP", "NOOP"))
        p.stdin.close()
        err = p.stderr.read()
        p.wait(timeout=30)
        p.stderr = err
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 1)


class ProtocolNameTest(Transcript, TempDirTest):
    def test_esmtp_after_ehlo(self):
        # protocols.md: EHLO switches the protocol name to ESMTP for the rest
        # of the session (seen in the Received header of add-received).
        if not os.path.exists(os.path.join(harness.LIB, "plugin-add-received.so")):
            self.skipTest("plugin-add-received.so not built")
        qd = make_queuedir(self.tmp)
        msg = ["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "x", "."]
        data = crlf("HELO one", *msg, "EHLO two", *msg, "HELO three", *msg, "QUIT")
        self.expect(data, [GREET, f"250 {LOCAL}", SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK] + EHLO +
                    [SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK, f"250 {LOCAL}", SENDER_OK, RCPT_OK, GO_AHEAD,
                     MSG_OK, QUIT], plugins=("accept", "add-received"), backend="queuedir", QUEUEDIR=qd)
        withs = []
        for name in queue_files(qd):
            with open(os.path.join(qd, "new", name), "rb") as f:
                body = f.read().partition(b"\0\0")[2]
            withs.append(body.split(b"\n")[:3])
        withs.sort(key=lambda h: h[0])
        self.assertEqual([(h[0], h[2][:12]) for h in withs],
                         [(b"Received: from one", b"  with SMTP "), (b"Received: from three", b"  with ESMTP"),
                          (b"Received: from two", b"  with ESMTP")])
