"""The ESMTP extensions added after 2.12 (docs/esmtp.md): CHUNKING/BDAT
(RFC 3030), SMTPUTF8 (RFC 6531), LIMITS (RFC 9422), BODY=BINARYMIME refused,
the EHLO keyword order and the per-extension switches.

Transcripts over stdin (exact reply streams) and over TCP (a BDAT client
written here, Python's smtplib with SMTPUTF8), DATA and BDAT compared on the
queue files they produce, hostile BDAT sizes and cuts, invalid UTF-8 in every
address position, and a 50 MiB message in 1 MiB BDAT chunks under 16 MiB
peak RSS.  Sessions run with the new extensions at their defaults
(harness.ESMTP_DEFAULTS); the rest of the suite switches them off.
"""
import email.message
import hashlib
import os
import random
import shutil
import smtplib
import socket
import subprocess
import tempfile
import unittest

import harness
from harness import ESMTP_DEFAULTS, TempDirTest, assert_no_sanitizer_report
from test_smtp_session import (GREET, LOCAL, MAIL_FIRST, MSG_OK, NOTIMPL, OK, QUIT, RCPT_FIRST, RCPT_OK,
                               SENDER_OK, crlf, make_queuedir, wire)

EHLO = [f"250-{LOCAL}", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-PIPELINING", "250-CHUNKING",
        "250 SMTPUTF8"]
BDAT_OPEN = "503 5.5.1 A BDAT transfer is in progress: send BDAT with LAST, or RSET."
BDAT_SYNTAX = "501 5.5.4 Syntax error in BDAT size, closing connection."
NO_BINARYMIME = "555 5.5.4 BODY=BINARYMIME is not supported."
NO_SMTPUTF8 = "555 5.5.4 SMTPUTF8 is not offered."
SMTPUTF8_VALUE = "501 5.5.4 SMTPUTF8 takes no value."
UTF8_NEEDED = "553 5.6.7 Non-ASCII address requires SMTPUTF8."
BAD_UTF8_SENDER = "553 5.1.7 Invalid UTF-8 in the sender address."
BAD_UTF8_RCPT = "553 5.1.3 Invalid UTF-8 in the recipient address."
TOO_BIG = "552 5.2.3 Sorry, that message exceeds the maximum message length."
BARE = "550 5.6.0 Message refused: bare CR or LF in the body (RFC 5321 section 2.3.8)."
MIB = 1 << 20

UTF8_SENDER = "j\u00f6rg@b\u00fccher.example".encode()
UTF8_RCPT = "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a".encode()

# Invalid UTF-8: overlong forms, surrogates, beyond U+10FFFF, bytes C0/C1/F5..FF,
# truncated sequences and stray continuation bytes.
INVALID_UTF8 = [b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xed\xa0\x80",
                b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\xfe", b"\x80",
                b"\xe2\x82", b"\xc3", b"a\xc3(b"]


def bdat(data, last=False):
    """One BDAT command with its chunk."""
    return b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data


def env_ext(**env):
    e = dict(ESMTP_DEFAULTS)
    e.setdefault("TCPLOCALHOST", LOCAL)
    e.update(env)
    return e


def run(data, plugins=("accept",), backend="echo", timeout=60, **env):
    return harness.mailfront(["smtp", backend] + list(plugins), data, timeout=timeout, **env_ext(**env))


def dot_stuff(decoded):
    """The DATA wire form of a decoded (LF) message."""
    stuffed = decoded.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed.replace(b"\n", b"\r\n") + b".\r\n"


def queue_files(qd):
    """Contents of the queue files in new/, in name order; tmp/ must be empty."""
    assert os.listdir(os.path.join(qd, "tmp")) == [], "left in tmp/"
    out = []
    for name in sorted(os.listdir(os.path.join(qd, "new"))):
        with open(os.path.join(qd, "new", name), "rb") as f:
            out.append(f.read())
    return out


class Transcripts(unittest.TestCase):
    """Exact reply streams over stdin."""

    def expect(self, data, replies, rc=0, plugins=("accept",), backend="echo", **env):
        p = run(data, plugins, backend, **env)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout.decode("latin-1").split("\r\n"),
                         "\r\n".join(list(replies) + [""]).split("\r\n"), p.stderr[-2000:])
        self.assertEqual(p.returncode, rc, p.stderr[-2000:])
        return p

    # ---- EHLO and switches ----

    def test_ehlo_keywords_in_order(self):
        self.expect(crlf("EHLO x", "QUIT"), [GREET] + EHLO + [QUIT])

    def test_each_switch_removes_its_keyword(self):
        for kw in ("8BITMIME", "ENHANCEDSTATUSCODES", "PIPELINING", "CHUNKING", "SMTPUTF8"):
            with self.subTest(kw):
                lines = [l for l in EHLO[1:] if l[4:] != kw]
                lines = [l[:3] + "-" + l[4:] for l in lines[:-1]] + [lines[-1][:3] + " " + lines[-1][4:]]
                self.expect(crlf("EHLO x", "QUIT"), [GREET, EHLO[0]] + lines + [QUIT], **{"SMTP_" + kw: "0"})

    def test_switch_values_other_than_zero_keep_it_on(self):
        self.expect(crlf("EHLO x", "QUIT"), [GREET] + EHLO + [QUIT], SMTP_CHUNKING="1", SMTP_SMTPUTF8="yes")

    def test_chunking_off_bdat_is_unknown(self):
        self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "BDAT 0 LAST", "QUIT"),
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", NOTIMPL, QUIT], SMTP_CHUNKING="0")

    def test_smtputf8_off_parameter_refused(self):
        self.expect(crlf("MAIL FROM:<a@b> SMTPUTF8", "RCPT TO:<c@d>", "QUIT"),
                    [GREET, NO_SMTPUTF8, MAIL_FIRST, QUIT], SMTP_SMTPUTF8="0")

    # ---- LIMITS (counters) ----

    def test_limits_advertised(self):
        base = [f"250-{LOCAL}", "250-SIZE 0"]
        for env, line in (({"MAXRCPTS": "5", "MAXMSGS": "3"}, ["250-LIMITS RCPTMAX=5 MAILMAX=3"]),
                          ({"MAXRCPTS": "7"}, ["250-LIMITS RCPTMAX=7"]),
                          ({"MAXMSGS": "2"}, ["250-LIMITS MAILMAX=2"]),
                          ({}, []),
                          ({"MAXRCPTS": "5", "SMTP_LIMITS": "0"}, [])):
            with self.subTest(env=env):
                self.expect(crlf("EHLO x", "QUIT"), [GREET] + base + line + EHLO[1:] + [QUIT],
                            plugins=("counters", "accept"), **env)

    def test_limits_match_enforcement(self):
        # RCPTMAX=2: the third recipient is deferred (452: send it in
        # another transaction), as advertised; without LIMITS the
        # original's permanent 550.
        session = crlf("EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<e@f>", "RCPT TO:<g@h>", "QUIT")
        accepted = ["250 Sender='a@b'.", "250 Recipient='c@d'.", "250 Recipient='e@f'."]
        self.expect(session, [GREET, f"250-{LOCAL}", "250-SIZE 0", "250-LIMITS RCPTMAX=2"] + EHLO[1:] + accepted
                    + ["452 4.5.3 Too many recipients, send the rest in another transaction", QUIT],
                    plugins=("counters", "accept"), MAXRCPTS="2")
        self.expect(session, [GREET, f"250-{LOCAL}", "250-SIZE 0"] + EHLO[1:] + accepted
                    + ["550 5.5.3 Too many recipients", QUIT],
                    plugins=("counters", "accept"), MAXRCPTS="2", SMTP_LIMITS="0")

    # ---- SMTPUTF8 ----

    def test_smtputf8_addresses_accepted(self):
        p = self.expect(crlf(b"EHLO x", b"MAIL FROM:<" + UTF8_SENDER + b"> SMTPUTF8 BODY=8BITMIME",
                             b"RCPT TO:<" + UTF8_RCPT + b">", b"QUIT"),
                        [GREET] + EHLO + [("250 Sender='%s'. [SMTPUTF8] [BODY=8BITMIME]" % UTF8_SENDER.decode("latin-1")),
                                          "250 Recipient='%s'." % UTF8_RCPT.decode("latin-1"), QUIT])
        self.assertIn(b"MAIL FROM:<" + UTF8_SENDER + b">", p.stderr)

    def test_smtputf8_keyword_case_and_value(self):
        self.expect(crlf("MAIL FROM:<a@b> smtputf8", "MAIL FROM:<a@b> SMTPUTF8=yes", "QUIT"),
                    [GREET, "250 Sender='a@b'. [smtputf8]", SMTPUTF8_VALUE, QUIT])

    def test_utf8_without_declaration_refused(self):
        self.expect(crlf(b"MAIL FROM:<" + UTF8_SENDER + b">", b"MAIL FROM:<a@b>", b"RCPT TO:<" + UTF8_RCPT + b">",
                         b"RCPT TO:<c@d>", b"QUIT"),
                    [GREET, UTF8_NEEDED, "250 Sender='a@b'.", UTF8_NEEDED, "250 Recipient='c@d'.", QUIT])

    def test_declaration_ends_with_the_transaction(self):
        self.expect(crlf(b"MAIL FROM:<a@b> SMTPUTF8", b"RSET", b"MAIL FROM:<a@b>", b"RCPT TO:<" + UTF8_RCPT + b">",
                         b"QUIT"),
                    [GREET, "250 Sender='a@b'. [SMTPUTF8]", OK, "250 Sender='a@b'.", UTF8_NEEDED, QUIT])

    def test_invalid_utf8_in_every_position(self):
        for bad in INVALID_UTF8:
            for decl in (b"", b" SMTPUTF8"):
                with self.subTest(bad=bad, decl=decl):
                    sender_ok = "250 Sender='a@b'." + (" [SMTPUTF8]" if decl else "")
                    self.expect(crlf(b"MAIL FROM:<x" + bad + b"@b>" + decl,           # local part
                                     b"MAIL FROM:<a@b" + bad + b">" + decl,           # domain
                                     b"MAIL FROM:<a@b>" + decl,
                                     b"RCPT TO:<x" + bad + b"@d>",                     # local part
                                     b"RCPT TO:<c@d" + bad + b">",                     # domain
                                     b"RCPT TO:<@r" + bad + b":c@d>",                  # source route
                                     b"RCPT TO:c" + bad + b"@d",                       # bracket-less
                                     b"QUIT"),
                                [GREET, BAD_UTF8_SENDER, BAD_UTF8_SENDER, sender_ok, BAD_UTF8_RCPT, BAD_UTF8_RCPT,
                                 "250 Recipient='c@d'.", BAD_UTF8_RCPT, QUIT])

    def test_binarymime_refused(self):
        self.expect(crlf("MAIL FROM:<a@b> BODY=BINARYMIME", "MAIL FROM:<a@b> body=binarymime SMTPUTF8",
                         "MAIL FROM:<a@b> BODY=7BIT", "QUIT"),
                    [GREET, NO_BINARYMIME, NO_BINARYMIME, "250 Sender='a@b'. [BODY=7BIT]", QUIT])

    # ---- BDAT ----

    def test_bdat_one_chunk(self):
        self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(b"Subject: x\r\n\r\nhi\r\n", True) + crlf("QUIT"),
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "250 Received 15 bytes.", QUIT])

    def test_bdat_chunks_and_zero(self):
        self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(b"ab\r") + bdat(b"") + bdat(b"\ncd")
                    + bdat(b"", True) + crlf("QUIT"),
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "250 2.0.0 3 bytes received.",
                     "250 2.0.0 0 bytes received.", "250 2.0.0 3 bytes received.", "250 Received 5 bytes.", QUIT])

    def test_bdat_zero_last_is_an_empty_message(self):
        self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "BDAT 0 LAST", "QUIT"),
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "250 Received 0 bytes.", QUIT])

    def test_bdat_argument_forms(self):
        self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + b"bdat 000\r\nBDAT  1 \t last \r\nx" + crlf("QUIT"),
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "250 2.0.0 0 bytes received.",
                     "250 Received 1 bytes.", QUIT])

    def test_bdat_out_of_phase_chunks_are_read_and_refused(self):
        evil = b"MAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\n"
        self.expect(bdat(evil) + crlf("MAIL FROM:<a@b>") + bdat(evil, True) + crlf("RCPT TO:<c@d>")
                    + bdat(b"x", True) + bdat(evil, True) + crlf("QUIT"),
                    [GREET, MAIL_FIRST, "250 Sender='a@b'.", RCPT_FIRST, "250 Recipient='c@d'.",
                     "250 Received 1 bytes.", MAIL_FIRST, QUIT])

    def test_commands_inside_a_bdat_transfer(self):
        self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(b"x") + crlf("DATA", "MAIL FROM:<e@f>",
                                                                                 "RCPT TO:<g@h>", "NOOP")
                    + bdat(b"y", True) + crlf("QUIT"),
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "250 2.0.0 1 bytes received.",
                     BDAT_OPEN, BDAT_OPEN, BDAT_OPEN, OK, "250 Received 2 bytes.", QUIT])

    def test_rset_abandons_a_bdat_transfer(self):
        self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(b"x") + crlf("RSET") + bdat(b"y", True)
                    + crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "z", ".", "QUIT"),
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "250 2.0.0 1 bytes received.", OK,
                     MAIL_FIRST, "250 Sender='a@b'.", "250 Recipient='c@d'.",
                     "354 End your message with a period on a line by itself.", "250 Received 2 bytes.", QUIT])

    def test_hostile_sizes_close_the_connection(self):
        for arg in ("-1", "18446744073709551616", "99999999999999999999999", "abc", "", "1x", "1 LASTX",
                    "1 LAST x", "+1", "0x10", " LAST"):
            with self.subTest(arg=arg):
                p = self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "BDAT " + arg, "MAIL FROM:<x@y>", "QUIT"),
                                [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", BDAT_SYNTAX], rc=1)
                self.assertNotIn(b"x@y", p.stderr)

    def test_largest_size_is_read_not_refused(self):
        # 2^64-1 parses; the client then cuts the connection: nothing delivered.
        p = self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "BDAT 18446744073709551615 LAST", "QUIT"),
                        [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'."], rc=1)
        self.assertIn(b"Connection dropped", p.stderr)

    def test_bdat_over_databytes(self):
        big = b"x" * 150
        self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(b"y" * 60) + bdat(big) + bdat(b"z", True)
                    + crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(big, True)
                    + crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(b"ok", True) + crlf("QUIT"),
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "250 2.0.0 60 bytes received.", TOO_BIG,
                     MAIL_FIRST, "250 Sender='a@b'.", "250 Recipient='c@d'.", TOO_BIG,
                     "250 Sender='a@b'.", "250 Recipient='c@d'.", "250 Received 2 bytes.", QUIT],
                    plugins=("counters", "accept"), DATABYTES="100")

    def test_bdat_size_parameter(self):
        self.expect(crlf("MAIL FROM:<a@b> SIZE=101", "QUIT"),
                    [GREET, "552 5.2.3 The message would exceed the maximum message size.", QUIT],
                    plugins=("counters", "accept"), DATABYTES="100")

    def test_bare_line_ends_in_chunks(self):
        for body in (b"a\nb\r\n", b"a\rb\r\n", b"ab\r"):
            with self.subTest(body=body):
                self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(body, True) + crlf("QUIT"),
                            [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", BARE, QUIT])
        self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(b"a\nb\rc", True) + crlf("QUIT"),
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "250 Received 5 bytes.", QUIT],
                    SMTP_BARE_NEWLINE="normalize")

    def test_cut_inside_a_chunk(self):
        for cut in (b"", b"Subject: x\r\n", b"Subject: x\r"):
            with self.subTest(cut=cut):
                p = self.expect(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "BDAT 100 LAST") + cut,
                                [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'."], rc=1)
                self.assertIn(b"Connection dropped", p.stderr)
                self.assertNotIn(b"Received", p.stderr)


@unittest.skipUnless(harness.reference_available(), "Debian's mailfront 2.12 not installed")
class DifferentialDefaults(unittest.TestCase):
    """With the new extensions on, a session that does not use them differs
    from Debian's 2.12 only by the two EHLO keywords."""

    def test_only_the_ehlo_keywords_differ(self):
        data = crlf("EHLO x", "MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME", "RCPT TO:<c@d>", "DATA", "Subject: x", "",
                    "..body", ".", "HELO y", "RSET", "VRFY z", "NOOP", "RCPT TO:<e@f>", "EHLO", "QUIT")
        ours = run(data)
        assert_no_sanitizer_report(self, ours)
        ref = subprocess.run([harness.REFERENCE, "smtp", "echo", "accept"], input=data, capture_output=True,
                             env={"PATH": "/usr/bin:/bin", "TCPLOCALHOST": LOCAL}, timeout=30)
        added = b"250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n"
        expected = ref.stdout.replace(b"250 PIPELINING\r\n", added)
        self.assertEqual(expected.count(added), 2)
        self.assertEqual(ours.stdout, expected)
        self.assertEqual(ours.returncode, ref.returncode)


class QueueFiles(TempDirTest):
    """What BDAT delivers, compared with DATA, in queue files."""

    def deliver(self, session, **env):
        qd = make_queuedir(self.tmp + "/" + str(random.random()))
        p = run(session, ("accept",), "queuedir", QUEUEDIR=qd, QUEUEDIR_NOSYNC="1", **env)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        return p, queue_files(qd)

    def test_smuggling_text_stays_content(self):
        body = b"Subject: a\r\n\r\nx\r\n.\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\nevil\r\n.\r\n"
        p, files = self.deliver(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(body, True) + crlf("QUIT"))
        self.assertEqual(files, [b"a@b\0c@d\0\0" + body.replace(b"\r\n", b"\n")])
        self.assertEqual(p.stdout, wire(GREET, SENDER_OK, RCPT_OK, MSG_OK, QUIT))

    def test_data_and_bdat_give_identical_files(self):
        rnd = random.Random(13)
        lines = [b"Subject: same", b"From: a@b", b"", b".", b"..", b".x", b"", b"line \xc3\xa4\xe2\x82\xac 8bit",
                 b"x" * 5000, b"end."]
        decoded = b"\n".join(lines) + b"\n"
        _, via_data = self.deliver(crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA") + dot_stuff(decoded)
                                   + crlf("QUIT"))
        wire_body = decoded.replace(b"\n", b"\r\n")
        for trial in range(6):
            cuts = sorted(rnd.sample(range(1, len(wire_body)), trial * 3))
            parts = [wire_body[i:j] for i, j in zip([0] + cuts, cuts + [len(wire_body)])]
            session = crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>")
            session += b"".join(bdat(x) for x in parts[:-1]) + bdat(parts[-1], True) + crlf("QUIT")
            with self.subTest(chunks=len(parts)):
                _, via_bdat = self.deliver(session)
                self.assertEqual(via_bdat, via_data)
        # Every split between CR and LF too.
        session = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>")
        session += b"".join(bdat(wire_body[i:i + 1]) for i in range(len(wire_body) - 1)) + bdat(wire_body[-1:], True)
        _, via_bytes = self.deliver(session + crlf("QUIT"))
        self.assertEqual(via_bytes, via_data)

    def test_nothing_queued_without_last(self):
        for tail in (b"", b"BDAT 5 LAST\r\nab", b"BDAT 6 LAST\r\nabcd\r"):
            with self.subTest(tail=tail):
                qd = make_queuedir(self.tmp + "/" + str(random.random()))
                p = run(crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(b"x\r\n") + tail, ("accept",), "queuedir",
                        QUEUEDIR=qd)
                assert_no_sanitizer_report(self, p)
                self.assertEqual(queue_files(qd), [])
                self.assertEqual(p.stdout, wire(GREET, SENDER_OK, RCPT_OK, "250 2.0.0 3 bytes received."))
                self.assertEqual(p.returncode, 1 if tail else 0)

    def test_utf8_envelope_carried_unchanged(self):
        p, files = self.deliver(crlf(b"EHLO c", b"MAIL FROM:<" + UTF8_SENDER + b"> SMTPUTF8",
                                     b"RCPT TO:<" + UTF8_RCPT + b">", b"DATA", b"Subject: x", b"", b"hi", b".",
                                     b"QUIT"))
        self.assertEqual(files, [UTF8_SENDER + b"\0" + UTF8_RCPT + b"\0\0Subject: x\n\nhi\n"])

    def test_received_with_types(self):
        env = dict(TCPREMOTEIP="192.0.2.1", TCPLOCALIP="192.0.2.2", PROTO="TCP")
        qd = make_queuedir(self.tmp + "/r")
        session = (crlf("EHLO c", "MAIL FROM:<a@b> SMTPUTF8", "RCPT TO:<c@d>") + bdat(b"x\r\n", True)
                   + crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "y", ".", "QUIT"))
        p = harness.mailfront(["smtp", "queuedir", "add-received", "accept"], session, timeout=30,
                              **env_ext(QUEUEDIR=qd, QUEUEDIR_NOSYNC="1", **env))
        assert_no_sanitizer_report(self, p)
        files = queue_files(qd)
        self.assertEqual(len(files), 2, p.stdout)
        withs = [[l.split(b" via ")[0] for l in f.split(b"\n") if l.startswith(b"  with ")] for f in files]
        self.assertEqual(sorted(withs), [[b"  with ESMTP"], [b"  with UTF8SMTP"]])


class Utf8ThroughPluginsAndBackEnds(TempDirTest):
    """UTF-8 addresses reach mailrules (matched byte-wise) and the qmail
    back end (qmail-queue stand-in) unchanged; queuedir: QueueFiles."""

    def test_qmail_backend_envelope(self):
        out = os.path.join(self.tmp, "qq")
        standin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "qmail_queue_standin.py")
        p = run(crlf(b"EHLO c", b"MAIL FROM:<" + UTF8_SENDER + b"> SMTPUTF8", b"RCPT TO:<" + UTF8_RCPT + b">")
                + bdat(b"Subject: q\r\n\r\nbody\r\n", True) + crlf(b"QUIT"),
                ("accept",), "qmail", QMAILHOME=self.tmp, QMAILQUEUE=standin, QQ_OUT=out)
        assert_no_sanitizer_report(self, p)
        self.assertRegex(p.stdout.split(b"\r\n")[-3], rb"^250 2\.6\.0 Accepted message qp \d+ bytes 17$")
        with open(out + ".env", "rb") as f:
            self.assertEqual(f.read(), b"F" + UTF8_SENDER + b"\0T" + UTF8_RCPT + b"\0\0")
        with open(out + ".msg", "rb") as f:
            self.assertEqual(f.read(), b"Subject: q\n\nbody\n")

    def test_mailrules_match_bytewise(self):
        rules = os.path.join(self.tmp, "rules")
        with open(rules, "wb") as f:
            f.write(b":r\nd*:*@\xe4\xbe\x8b\xe5\xad\x90.*:5.7.1 no UTF-8 domain here\n"
                    b"d*:j\xc3\xb6*:5.7.1 no j\xc3\xb6 users\n")
        p = run(crlf(b"MAIL FROM:<a@b> SMTPUTF8", b"RCPT TO:<" + UTF8_RCPT + b">", b"RCPT TO:<j\xc3\xb6rg@x>",
                     b"RCPT TO:<jo@x>", b"QUIT"), ("mailrules", "accept"), MAILRULES=rules)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout, wire("220 mx.test mailfront ESMTP", "250 Sender='a@b'. [SMTPUTF8]",
                                        "553 5.7.1 no UTF-8 domain here", "553 5.7.1 no j\xc3\xb6 users",
                                        "250 Recipient='jo@x'.", QUIT))


class ReceivedWithTypes(TempDirTest):
    """add-received's RFC 6531 `with` types for each TLS/AUTH combination;
    a Lua plugin reads the `smtputf8` session number and stands in for TLS
    (`tls_state`) and AUTH (`authenticated`), chosen by the sender."""

    SCRIPT = """
function sender(address, params)
  msg("smtputf8=" .. getnum("smtputf8", 0))
  if address == "s@x" or address == "sa@x" then setnum("tls_state", 1) end
  if address == "a@x" or address == "sa@x" then setnum("authenticated", 1) end
end
function reset() delnum("tls_state") delnum("authenticated") end
"""

    def test_with_types(self):
        lua = os.path.join(self.tmp, "types.lua")
        with open(lua, "w") as f:
            f.write(self.SCRIPT)
        expected = {b"p@x": b"UTF8SMTP", b"s@x": b"UTF8SMTPS", b"a@x": b"UTF8SMTPA", b"sa@x": b"UTF8SMTPSA"}
        session = crlf("EHLO c")
        for sender in expected:
            session += crlf(b"MAIL FROM:<" + sender + b"> SMTPUTF8", b"RCPT TO:<c@d>") + bdat(b"x\r\n", True)
        session += crlf("MAIL FROM:<sa@x>", "RCPT TO:<c@d>", "DATA", "y", ".", "QUIT")
        qd = make_queuedir(self.tmp)
        p = harness.mailfront(["smtp", "queuedir", "lua", "add-received", "accept"], session, timeout=30,
                              **env_ext(QUEUEDIR=qd, QUEUEDIR_NOSYNC="1", LUA_SCRIPT=lua, TCPREMOTEIP="192.0.2.1",
                                        TCPLOCALIP="192.0.2.2", PROTO="TCP"))
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout, wire(GREET, *EHLO, *[SENDER_OK, RCPT_OK, MSG_OK] * 4, SENDER_OK, RCPT_OK,
                                        "354 End your message with a period on a line by itself.", MSG_OK, QUIT))
        self.assertEqual(p.stderr.count(b"smtputf8=1"), 4, p.stderr)
        self.assertEqual(p.stderr.count(b"smtputf8=0"), 1, p.stderr)
        got = {}
        for f in queue_files(qd):
            sender = f.split(b"\0")[0]
            (line,) = [l for l in f.split(b"\n") if l.startswith(b"  with ")]
            got.setdefault(sender, []).append(line.split(b" via ")[0][len(b"  with "):])
        want = {k: [v] for k, v in expected.items()}
        want[b"sa@x"] = [b"ESMTP", b"UTF8SMTPSA"]
        self.assertEqual({k: sorted(v) for k, v in got.items()}, want)


def read_reply(f):
    """One (possibly multi-line) reply from a socket file: (code, lines)."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        lines.append(line.rstrip(b"\r\n"))
        if line[3:4] == b" ":
            return int(line[:3]), lines


class BdatClient:
    """A minimal SMTP client that sends messages with BDAT (RFC 3030),
    pipelined (all chunks written before any reply is read) or not."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")
        code, _ = read_reply(self.f)
        assert code == 220, code
        self.sock.sendall(b"EHLO client\r\n")
        code, lines = read_reply(self.f)
        assert code == 250, lines
        self.keywords = [l[4:].split(b" ")[0].upper() for l in lines[1:]]

    def send(self, sender, rcpt, message, chunk, pipelined):
        """message: bytes with CRLF line ends.  Returns the replies' codes."""
        if b"CHUNKING" not in self.keywords:
            raise RuntimeError("server does not offer CHUNKING")
        parts = [message[i:i + chunk] for i in range(0, len(message), chunk)] or [b""]
        cmds = [b"MAIL FROM:<%s>\r\n" % sender, b"RCPT TO:<%s>\r\n" % rcpt]
        cmds += [bdat(p, i == len(parts) - 1) for i, p in enumerate(parts)]
        codes = []
        if pipelined:
            self.sock.sendall(b"".join(cmds))
            for _ in cmds:
                codes.append(read_reply(self.f)[0])
        else:
            for c in cmds:
                self.sock.sendall(c)
                codes.append(read_reply(self.f)[0])
        return codes

    def quit(self):
        self.sock.sendall(b"QUIT\r\n")
        code = read_reply(self.f)[0]
        self.f.close()
        self.sock.close()
        return code


class OverTcp(unittest.TestCase):
    """Real clients over TCP (tcpserver): the BDAT client and smtplib."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mftest.esmtp.")
        cls.qd = make_queuedir(cls.tmp)
        env = harness.base_env(**env_ext(QUEUEDIR=cls.qd, QUEUEDIR_NOSYNC="1"))
        cls.server = harness.tcpserver([harness.bin_path("mailfront"), "smtp", "queuedir", "accept"], env=env)
        cls.port, cls.proc = cls.server.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, True)

    def take(self):
        files = queue_files(self.qd)
        for name in os.listdir(os.path.join(self.qd, "new")):
            os.unlink(os.path.join(self.qd, "new", name))
        return files

    def test_bdat_client_pipelined_and_not(self):
        msg = b"Subject: tcp\r\n\r\n" + b"".join(b"line %d\r\n.\r\n" % i for i in range(2000))
        self.take()
        for pipelined in (False, True):
            for chunk in (1000, 4096, 65536, len(msg)):
                with self.subTest(pipelined=pipelined, chunk=chunk):
                    c = BdatClient(self.port)
                    codes = c.send(b"a@b", b"c@d", msg, chunk, pipelined)
                    self.assertEqual(codes, [250] * len(codes))
                    self.assertEqual(c.quit(), 221)
                    self.assertEqual(self.take(), [b"a@b\0c@d\0\0" + msg.replace(b"\r\n", b"\n")])

    def test_bdat_one_write_with_quit(self):
        self.take()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.sendall(crlf("EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(b"x\r\nRSET\r\n") + crlf("RSET")
                  + crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>") + bdat(b"one\r\n") + bdat(b"two\r\n", True)
                  + crlf("QUIT"))
        data = b""
        while not data.endswith(b"221 2.0.0 Good bye.\r\n"):
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        self.assertEqual(data, wire(GREET, *EHLO, SENDER_OK, RCPT_OK, "250 2.0.0 9 bytes received.", OK, SENDER_OK,
                                    RCPT_OK, "250 2.0.0 5 bytes received.", MSG_OK, QUIT))
        self.assertEqual(self.take(), [b"a@b\0c@d\0\0one\ntwo\n"])

    def test_smtplib_smtputf8(self):
        self.take()
        msg = email.message.EmailMessage()
        msg["From"] = UTF8_SENDER.decode()
        msg["To"] = UTF8_RCPT.decode()
        msg["Subject"] = "gr\u00fc\u00dfe"
        msg.set_content("Hall\u00f6\n")
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            c.ehlo("client")
            self.assertTrue(c.has_extn("smtputf8"))
            refused = c.send_message(msg, mail_options=["SMTPUTF8"])
            self.assertEqual(refused, {})
        (f,) = self.take()
        self.assertTrue(f.startswith(UTF8_SENDER + b"\0" + UTF8_RCPT + b"\0\0"), f[:200])
        self.assertIn("Subject: gr\u00fc\u00dfe".encode(), f)

    def test_smtplib_utf8_without_smtputf8_refused(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            c.ehlo("client")
            c.send(b"MAIL FROM:<" + UTF8_SENDER + b">\r\n")
            code, text = c.getreply()
            self.assertEqual((code, text), (553, b"5.6.7 Non-ASCII address requires SMTPUTF8."))


class LargeBdat(unittest.TestCase):
    """50 MiB in 1 MiB BDAT chunks: delivered whole, peak RSS under 16 MiB
    (measured by GNU time as in test_smtp_large; not under ASan)."""

    def test_50mib_in_1mib_chunks(self):
        tmp = tempfile.mkdtemp(prefix="mftest.bdat.")
        self.addCleanup(shutil.rmtree, tmp, True)
        qd = make_queuedir(tmp)
        line = b"0123456789 abcdefghijklmnopqrstuvwxyz \xc3\xa4\xc3\xb6 .\r\n"
        block = line * (MIB // len(line)) + b"\r\n" * ((MIB % len(line)) // 2)
        block += b"x" * (MIB - len(block))
        assert len(block) == MIB
        h = hashlib.sha256()
        session = os.path.join(tmp, "session")
        with open(session, "wb") as f:
            f.write(crlf("EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>"))
            for i in range(50):
                f.write(b"BDAT %d%s\r\n" % (MIB, b" LAST" if i == 49 else b""))
                f.write(block)
                h.update(block.replace(b"\r\n", b"\n"))
            f.write(crlf("QUIT"))
        rss_path = os.path.join(tmp, "rss")
        argv = [harness.bin_path("mailfront"), "smtp", "queuedir", "accept"]
        timer = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
        if timer:
            argv = [timer, "-f", "%M", "-o", rss_path] + argv
        with open(session, "rb") as fin, open(os.path.join(tmp, "out"), "wb") as fout:
            p = subprocess.run(argv, stdin=fin, stdout=fout, stderr=subprocess.PIPE,
                               env=harness.base_env(**env_ext(QUEUEDIR=qd)), timeout=300)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        with open(os.path.join(tmp, "out"), "rb") as f:
            self.assertEqual(f.read(), wire(GREET, *EHLO, SENDER_OK, RCPT_OK,
                                            *["250 2.0.0 %d bytes received." % MIB] * 49, MSG_OK, QUIT))
        (name,) = os.listdir(os.path.join(qd, "new"))
        d = hashlib.sha256()
        with open(os.path.join(qd, "new", name), "rb") as f:
            self.assertEqual(f.read(len(b"a@b\0c@d\0\0")), b"a@b\0c@d\0\0")
            for b in iter(lambda: f.read(MIB), b""):
                d.update(b)
        self.assertEqual(d.hexdigest(), h.hexdigest())
        if harness.SANITIZED:
            return
        if not timer:
            self.fail("GNU time (/usr/bin/time) is needed to measure RSS")
        with open(rss_path) as f:
            rss = int(f.read().split()[-1])
        print("\n  BDAT 50 x 1 MiB: peak RSS %d KiB" % rss, end=" ")
        self.assertLess(rss, 16 * 1024)


if __name__ == "__main__":
    unittest.main()
