"""Hostile SMTP input: a corpus of malformed sessions, SMTP smuggling in
strict (CRLF) sessions, and abrupt ends of the connection.

Every session runs against the queuedir back end, so "nothing lost or
half-queued" is checked on disk: the number of files in new/ equals the
number of `250 2.6.0` replies and tmp/ is empty afterwards.  Runs under
ASan/UBSan when $MF_BUILD is the sanitizer build (no report, no crash).
protocols.md: "Beyond the original (security): SMTP smuggling", "line
limits", "End of input and timeouts".
"""
import os
import random
import re
import signal
import subprocess
import time

import harness
from harness import TempDirTest, assert_no_sanitizer_report
from test_smtp_session import (BARE, BAD_ADDR, EHLO, GO_AHEAD, GREET, MAIL_FIRST, MSG_OK,
                               NOTIMPL, NUL_CMD, OK, QUIT, RCPT_OK, SENDER_OK,
                               TOO_LONG, crlf, lf, log_lines, make_queuedir, queue_files,
                               smtp, wire)

REPLY = re.compile(rb"^[2-5]\d\d[ -][^\r\n]*$")
ENV = crlf("EHLO client.example", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA")
ENV_REPLIES = [GREET] + EHLO + [SENDER_OK, RCPT_OK, GO_AHEAD]
SMUGGLED = crlf("MAIL FROM:<evil@x.example>", "RCPT TO:<victim@y.example>", "DATA",
                "Subject: smuggled", "", "evil body", ".")


def read_queue(qd):
    out = []
    for name in queue_files(qd):
        with open(os.path.join(qd, "new", name), "rb") as f:
            out.append(f.read())
    return out


def split_queue_file(data):
    """(sender, [recipients], message) of a queuedir file."""
    env, sep, msg = data.partition(b"\0\0")
    parts = env.split(b"\0")
    return parts[0], parts[1:], msg


class QueueSession(TempDirTest):
    def session(self, data, plugins=("accept",), **env):
        qd = make_queuedir(os.path.join(self.tmp, "q%d" % len(os.listdir(self.tmp))))
        env.setdefault("QUEUEDIR_NOSYNC", 1)
        p = smtp(data, plugins, "queuedir", QUEUEDIR=qd, **env)
        assert_no_sanitizer_report(self, p)
        self.assertIn(p.returncode, (0, 1), p.stderr[-2000:])
        lines = p.stdout.split(b"\r\n")
        self.assertEqual(lines[-1], b"", "output ends with CRLF")
        for l in lines[:-1]:
            self.assertRegex(l, REPLY)
        msgs = read_queue(qd)
        # nothing lost or half-queued
        self.assertEqual(len(msgs), lines.count(MSG_OK.encode()), p.stdout[-500:])
        self.assertEqual(queue_files(qd, "tmp"), [])
        return p, msgs


class SmugglingTest(QueueSession):
    """Strict sessions: only CRLF.CRLF ends DATA; bare CR/LF refuses."""

    SEQUENCES = {
        "LF.LF": b"\n.\n",
        "CR.LF": b"\r.\n",
        "LF.CRLF": b"\n.\r\n",
        "CRLF.LF": b"\r\n.\n",
        "CR.CR": b"\r.\r",
        "CR.CRLF": b"\r.\r\n",
        "CRLF.CR": b"\r\n.\r",
        "LF.CR": b"\n.\r",
    }

    def refused_by_default(self, seq):
        data = ENV + b"Subject: one\r\n\r\nfirst" + seq + SMUGGLED + crlf("QUIT")
        p, msgs = self.session(data)
        self.assertEqual(p.stdout, wire(*ENV_REPLIES, BARE, QUIT))
        self.assertEqual(msgs, [])
        self.assertEqual(p.stdout.count(b"354 "), 1)
        self.assertIn(BARE, log_lines(p))
        self.assertEqual([l for l in log_lines(p) if l.startswith("MAIL")], ["MAIL FROM:<a@b.example>"])

    def normalized_to_one_message(self, seq):
        data = ENV + b"Subject: one\r\n\r\nfirst" + seq + SMUGGLED + crlf("QUIT")
        p, msgs = self.session(data, SMTP_BARE_NEWLINE="normalize")
        self.assertEqual(p.stdout, wire(*ENV_REPLIES, MSG_OK, QUIT))
        self.assertEqual(len(msgs), 1)
        sender, rcpts, msg = split_queue_file(msgs[0])
        self.assertEqual((sender, rcpts), (b"a@b.example", [b"c@d.example"]))
        self.assertTrue(msg.startswith(b"Subject: one\n\nfirst"), msg)
        self.assertIn(b"MAIL FROM:<evil@x.example>\nRCPT TO:<victim@y.example>\nDATA\n", msg)
        self.assertTrue(msg.endswith(b"Subject: smuggled\n\nevil body\n"), msg)
        self.assertNotIn(b"\r", msg)

    def unended_is_a_dropped_connection(self, seq):
        data = ENV + b"first" + seq + crlf("MAIL FROM:<evil@x>", "RCPT TO:<v@y>", "QUIT")
        p, msgs = self.session(data)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, wire(*ENV_REPLIES))
        self.assertIn("Connection dropped", log_lines(p))
        self.assertEqual(msgs, [])

    def test_bare_newline_in_headers_refused(self):
        for body in (b"Subject: a\nX: b\r\n\r\nbody\r\n", b"Subject: a\rb\r\n\r\nx\r\n",
                     b"x\r\r\n", b"\n\r\n"):
            with self.subTest(body=body):
                p, msgs = self.session(ENV + body + crlf(".", "QUIT"))
                self.assertEqual(p.stdout, wire(*ENV_REPLIES, BARE, QUIT))
                self.assertEqual(msgs, [])

    def test_bare_newline_setting_values(self):
        data = ENV + b"a\nb\r\n.\r\n" + crlf("QUIT")
        for value, accepted in (("reject", False), ("", False), ("bogus", False), ("NORMALIZE", True),
                                ("normalize", True)):
            with self.subTest(value=value):
                p, msgs = self.session(data, SMTP_BARE_NEWLINE=value)
                self.assertEqual(p.stdout, wire(*ENV_REPLIES, MSG_OK if accepted else BARE, QUIT))
                self.assertEqual(len(msgs), int(accepted))

    def test_refusal_then_next_transaction_works(self):
        data = (ENV + b"a\n.\nb\r\n.\r\n" + crlf("DATA", "MAIL FROM:<n@m>", "RCPT TO:<o@p>", "DATA",
                                                 "clean", ".", "QUIT"))
        p, msgs = self.session(data)
        self.assertEqual(p.stdout, wire(*ENV_REPLIES, BARE, MAIL_FIRST, SENDER_OK, RCPT_OK,
                                        GO_AHEAD, MSG_OK, QUIT))
        self.assertEqual([split_queue_file(m) for m in msgs], [(b"n@m", [b"o@p"], b"clean\n")])

    def test_control_real_end_makes_two_messages(self):
        # Positive control: with CRLF.CRLF the second envelope IS a message,
        # so the checks above would see a smuggled one.
        data = ENV + b"first\r\n.\r\n" + SMUGGLED + crlf("QUIT")
        p, msgs = self.session(data)
        self.assertEqual(p.stdout, wire(*ENV_REPLIES, MSG_OK, SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK, QUIT))
        self.assertEqual(len(msgs), 2)

    def test_strict_when_only_the_first_line_is_crlf(self):
        data = b"EHLO x\r\nMAIL FROM:<a@b>\nRCPT TO:<c@d>\nDATA\nx\n.\ny\r\n.\r\nQUIT\r\n"
        p, msgs = self.session(data)
        self.assertEqual(p.stdout, wire(GREET, *EHLO, SENDER_OK, RCPT_OK, GO_AHEAD, BARE, QUIT))

    def test_lf_only_session_keeps_the_original(self):
        # protocols.md: LF-only sessions keep the original algorithm.
        data = lf("HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "one", ".",
                  "MAIL FROM:<e@f>", "RCPT TO:<g@h>", "DATA", "two\r", "\r.", "QUIT")
        p, msgs = self.session(data)
        self.assertEqual(p.stdout, wire(GREET, "250 mx.test", SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK,
                                        SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK, QUIT))
        self.assertEqual(sorted(split_queue_file(m) for m in msgs),
                         [(b"a@b", [b"c@d"], b"one\n"), (b"e@f", [b"g@h"], b"two\n")])

    def test_lf_first_line_decides_lenient(self):
        data = b"HELO x\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\ny\n.\nQUIT\r\n"
        p, msgs = self.session(data)
        self.assertEqual(p.stdout, wire(GREET, "250 mx.test", SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK, QUIT))
        self.assertEqual(split_queue_file(msgs[0])[2], b"x\ny\n")


def corpus():
    """(name, session bytes, expected wire replies or None, expected messages)."""
    rnd = random.Random(5321)
    env = crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA")
    envr = [GREET] + EHLO + [SENDER_OK, RCPT_OK, GO_AHEAD]
    c = [
        ("long line then transaction",
         b"NOOP " + b"A" * 100000 + b"\r\n" + env + crlf("x", ".", "QUIT"),
         [GREET, TOO_LONG] + EHLO + [SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK, QUIT], 1),
        ("many long lines", (b"X" * 5000 + b"\r\n") * 50 + crlf("QUIT"), [GREET] + [TOO_LONG] * 50 + [QUIT], 0),
        ("long MAIL argument", b"MAIL FROM:<" + b"<\"\\" * 3000 + b">\r\nQUIT\r\n", [GREET, TOO_LONG, QUIT], 0),
        ("long line without end", b"HELO " + b"h" * 70000, [GREET, TOO_LONG], 0),
        ("NUL bytes in commands", b"\0\r\nHELO \0x\r\nMAIL FROM:<a@b>\0\r\n" + crlf("QUIT"),
         [GREET, NUL_CMD, NUL_CMD, NUL_CMD, QUIT], 0),
        ("NUL bytes in the body", env + b"a\0b\r\n\0\r\n.\r\nQUIT\r\n", envr + [MSG_OK, QUIT], 1),
        ("bad addresses",
         crlf("MAIL FROM:<", "MAIL FROM:<<<<", "MAIL FROM:<\"", "MAIL FROM:<\\",
              "MAIL FROM:<a\\>", "MAIL FROM", "MAIL FROM:<\"a>", "MAIL :", "RCPT TO:<@>", "QUIT"),
         [GREET] + [BAD_ADDR] * 8 + [MAIL_FIRST, QUIT], 0),
        # Bytes that are not UTF-8 in an address: refused since SMTPUTF8
        # (RFC 6531 3.5; test_smtp_esmtp.py has every position).
        ("odd but valid addresses",
         crlf("MAIL FROM:<@>", "RCPT TO:<@:>", "RCPT TO:<\xff\xfe@\x01>", "RCPT TO:<a> " + " " * 1000,
              "DATA", ".", "QUIT"),
         # <@:> is the empty recipient once the route is stripped (refused).
         [GREET, SENDER_OK, "554 5.1.2 Recipient address may not be empty",
          "553 5.1.3 Invalid UTF-8 in the recipient address.", RCPT_OK, GO_AHEAD, MSG_OK, QUIT], 1),
        ("junk after DATA", crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA junk junk", "x", ".", "QUIT"),
         [GREET, SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK, QUIT], 1),
        ("body sent without a transaction",
         crlf("DATA", "Subject: x", "", "MAIL FROM:<a@b>", ".", "QUIT"),
         [GREET, MAIL_FIRST, NOTIMPL, NOTIMPL, SENDER_OK, NOTIMPL, QUIT], 0),
        ("truncated command", b"EHLO x\r\nMAIL FROM:<a@", [GREET] + EHLO + [BAD_ADDR], 0),
        ("truncated after go-ahead", env + b"Subject: x\r\n\r\nbody\r\n.", envr, 0),
        ("EOF right after DATA", env, envr, 0),
        # One line whose EHLO argument holds bare CRs: refused (header injection).
        ("CR-only line ends", b"EHLO x\rMAIL FROM:<a@b>\rQUIT\r",
         [GREET, "501 5.5.2 Syntax error, control character in the domain."], 0),
        ("leading blank before command", crlf(" MAIL FROM:<a@b>", "\tQUIT", "QUIT"),
         [GREET, NOTIMPL, NOTIMPL, QUIT], 0),
        ("pipelined flood", crlf(*["RSET"] * 1000, "QUIT"), [GREET] + [OK] * 1000 + [QUIT], 0),
        ("2000 recipients", crlf("MAIL FROM:<a@b>", *["RCPT TO:<r%d@x>" % i for i in range(2000)],
                                 "DATA", "x", ".", "QUIT"),
         [GREET, SENDER_OK] + [RCPT_OK] * 2000 + [GO_AHEAD, MSG_OK, QUIT], 1),
        ("dot games", env + crlf("..", "...", ". .", ".\t", "x.", ".", "QUIT"), envr + [MSG_OK, QUIT], 1),
        ("2 MiB body line", env + b"y" * (2 << 20) + b"\r\n.\r\nQUIT\r\n", envr + [MSG_OK, QUIT], 1),
        ("MAXNOTIMPL mid-transaction", env[:-6] + crlf("A", "B", "C", "D", "DATA", "x", "."),
         [GREET] + EHLO + [SENDER_OK, RCPT_OK, NOTIMPL, NOTIMPL, NOTIMPL,
                           "503-5.5.0 Too many unimplemented commands.", "503 5.5.0 Closing connection."], 0),
        ("random bytes as commands", bytes(rnd.randrange(256) for _ in range(65536)), None, 0),
        ("random printable lines", b"".join(bytes(rnd.choice(b"MAILRCPTDT<>:@ \"\\\r\0.")
                                                  for _ in range(rnd.randrange(1, 90))) + b"\r\n"
                                            for _ in range(400)), None, None),
        ("random body strict", env + bytes(rnd.randrange(256) for _ in range(65536)) + b"\r\n.\r\nQUIT\r\n",
         None, None),
        ("random body lenient", lf("HELO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA")
         + bytes(rnd.choice(b"ab.\r\n\0") for _ in range(65536)) + b"\n.\nQUIT\n", None, None),
    ]
    return c


class CorpusTest(QueueSession):
    def check(self, name, data, replies, nmsgs):
        p, msgs = self.session(data, MAXNOTIMPL=3 if name.startswith("MAXNOTIMPL") else 0)
        if replies is not None:
            self.assertEqual(p.stdout.decode("latin-1").split("\r\n")[:-1], replies)
        if nmsgs is not None:
            self.assertEqual(len(msgs), nmsgs)
        self.assertIn(b"bytes in: %d " % len(data), p.stderr)

    def test_nul_body_delivered_intact(self):
        body = bytes(range(256)).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n"
        data = crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA") + body * 3 + crlf(".", "QUIT")
        p, msgs = self.session(data)
        self.assertEqual(split_queue_file(msgs[0])[2], body.replace(b"\r\n", b"\n") * 3)

    def test_long_body_line_intact(self):
        line = bytes(rnd % 94 + 33 for rnd in range(3 << 20))
        data = crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA") + line + crlf("", ".", "QUIT")
        p, msgs = self.session(data)
        expect = line.replace(b"\n.", b"\n")   # no line ends inside, so no unstuffing
        self.assertEqual(split_queue_file(msgs[0])[2], expect + b"\n")


class AbruptEndTest(TempDirTest):
    def test_sigkill_mid_data_leaves_nothing_in_new(self):
        qd = make_queuedir(self.tmp)
        e = harness.base_env(TCPLOCALHOST="mx.test", QUEUEDIR=qd)
        err = open(os.path.join(self.tmp, "err"), "w+b")
        self.addCleanup(err.close)
        p = subprocess.Popen([harness.bin_path("mailfront"), "smtp", "queuedir", "accept"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=e)
        with harness.reaped(p):
            p.stdin.write(crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"))
            p.stdin.flush()
            got = b""
            deadline = time.time() + 20
            while GO_AHEAD.encode() not in got and time.time() < deadline:
                chunk = p.stdout.read1(4096)
                if not chunk:
                    break
                got += chunk
            self.assertIn(GO_AHEAD.encode(), got)
            p.stdin.write(b"Subject: killed\r\n\r\n" + b"body line\r\n" * 20000)
            p.stdin.flush()
            # the body is on its way into the queue file: wait until it shows
            tmpdir = os.path.join(qd, "tmp")
            while time.time() < deadline:
                names = os.listdir(tmpdir)
                if names and os.path.getsize(os.path.join(tmpdir, names[0])) > 100000:
                    break
                time.sleep(0.02)
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        self.assertEqual(p.returncode, -signal.SIGKILL)
        self.assertEqual(queue_files(qd), [])

    def test_client_closes_mid_data(self):
        qd = make_queuedir(self.tmp)
        data = crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA") + b"x\r\n" * 100000
        p = smtp(data, ("accept",), "queuedir", QUEUEDIR=qd)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 1)
        self.assertIn("Connection dropped", log_lines(p))
        self.assertEqual(queue_files(qd), [])
        self.assertEqual(queue_files(qd, "tmp"), [])


def _corpus_test(case):
    return lambda self: self.check(*case)


for _i, _case in enumerate(corpus()):
    setattr(CorpusTest, "test_%02d_%s" % (_i, re.sub(r"\W+", "_", _case[0]).strip("_").lower()),
            _corpus_test(_case))


def _seq_test(method, seq):
    return lambda self: getattr(self, method)(seq)


for _name, _seq in SmugglingTest.SEQUENCES.items():
    _slug = _name.replace(".", "_dot_").lower()
    for _method in ("refused_by_default", "normalized_to_one_message", "unended_is_a_dropped_connection"):
        setattr(SmugglingTest, "test_%s_%s" % (_method, _slug), _seq_test(_method, _seq))
