"""Structured logging: $LOGFORMAT=kv (src/lib/log.c, docs/logging.md).

Every stderr line of a kv run is parsed back by an independent logfmt
parser below (bare values end at a space; quoted values take \\" \\\\ \\n
\\r \\t \\xHH escapes); each event type is checked for its fields: the
session id shared by all lines of one session and different between
sessions, the client address, the command, the reply code, the message
result and bytes, the session totals; for POP3 and IMAP the command
events (masked arguments) and the reply events (result, text, IMAP tag).  Credentials (an AUTH payload, a
POP3 password) must appear in neither format, and the classic format must
stay byte for byte what it was."""
import os
import re
import subprocess
import unittest

import harness
from harness import TempDirTest, base_env, bin_path, assert_no_sanitizer_report


def crlf(*lines):
    return b"".join((l.encode("latin-1") if isinstance(l, str) else l) + b"\r\n" for l in lines)


def parse_kv(line):
    """Parse one kv line into a list of (key, value bytes); raises ValueError
    on anything that is not well-formed."""
    out = []
    i, n = 0, len(line)
    while i < n:
        m = re.compile(rb"[a-z_]+=").match(line, i)
        if not m:
            raise ValueError("no key at %d: %r" % (i, line))
        key = m.group()[:-1].decode()
        i = m.end()
        if i < n and line[i:i + 1] == b'"':
            i += 1
            val = bytearray()
            while True:
                if i >= n:
                    raise ValueError("unterminated quote: %r" % line)
                c = line[i:i + 1]
                if c == b'"':
                    i += 1
                    break
                if c == b"\\":
                    e = line[i + 1:i + 2]
                    simple = {b'"': b'"', b"\\": b"\\", b"n": b"\n", b"r": b"\r", b"t": b"\t"}
                    if e in simple:
                        val += simple[e]
                        i += 2
                    elif e == b"x" and re.fullmatch(rb"[0-9a-f]{2}", line[i + 2:i + 4]):
                        val.append(int(line[i + 2:i + 4], 16))
                        i += 4
                    else:
                        raise ValueError("bad escape in %r" % line)
                    continue
                if c[0] < 0x20 or c[0] == 0x7f:
                    raise ValueError("raw control byte in %r" % line)
                val += c
                i += 1
            value = bytes(val)
        else:
            j = line.find(b" ", i)
            j = n if j < 0 else j
            value = line[i:j]
            if not value or any(ch in value for ch in b'"=\\') or any(ch < 0x20 or ch == 0x7f for ch in value):
                raise ValueError("bad bare value %r in %r" % (value, line))
            value.decode("utf-8")              # bare values are valid UTF-8
            i = j
        out.append((key, value))
        if i < n:
            if line[i:i + 1] != b" ":
                raise ValueError("no separator at %d: %r" % (i, line))
            i += 1
    return out


def events(stderr):
    """Every line of stderr as a dict (str values, latin-1); all must parse."""
    result = []
    for line in stderr.split(b"\n"):
        if not line:
            continue
        pairs = parse_kv(line)
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key in %r" % line)
        result.append({k: v.decode("latin-1") for k, v in pairs})
    return result


SECRET = "c2VjcmV0LXBheWxvYWQ="   # base64 of an AUTH PLAIN payload


class KvParserSelfTest(unittest.TestCase):
    """The parser itself must refuse what the writer must never produce."""

    def test_parser_refuses_malformed_lines(self):
        for bad in (b'a=b c', b'a="x', b'a=x"y', b'a= b=c', b'a="\x01"', b'a="\\q"', b'a=b  c=d'):
            with self.subTest(bad=bad):
                self.assertRaises(ValueError, parse_kv, bad)
        self.assertEqual(parse_kv(b'a=1 b="x \\"y\\" \\\\ \\x00"'), [("a", b"1"), ("b", b'x "y" \\ \x00')])


class KvLogTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.q = os.path.join(self.tmp, "q")
        for d in ("tmp", "new"):
            os.makedirs(os.path.join(self.q, d))

    def run_smtp(self, data, plugins=("accept",), backend="queuedir", **env):
        env.setdefault("QUEUEDIR", self.q)
        env.setdefault("QUEUEDIR_NOSYNC", "1")
        env.setdefault("TCPLOCALHOST", "mx.example")
        p = harness.mailfront(["smtp", backend] + list(plugins), data, timeout=30, **env)
        assert_no_sanitizer_report(self, p)
        return p

    SESSION = crlf("EHLO client.example", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>",
                   "DATA", "Subject: t", "", "body", ".",
                   "FOO bar \"baz\" \\ \x01\xff\xc3\xa9",
                   "AUTH PLAIN " + SECRET,
                   "RCPT TO:<x@y.example>", "MAIL FROM:<e@f.example>", "RCPT TO:<g@h.example>",
                   "DATA", "x", ".", "QUIT")

    def test_every_smtp_event_parses_back(self):
        p = self.run_smtp(self.SESSION, LOGFORMAT="kv", TCPREMOTEIP="192.0.2.7")
        ev = events(p.stderr)
        kinds = [e["event"] for e in ev]
        self.assertEqual(kinds[0], "session_start")
        self.assertEqual(kinds[-1], "session_end")
        for kind in ("command", "reply", "message"):
            self.assertIn(kind, kinds)
        sids = {e.get("sid") for e in ev}
        self.assertEqual(len(sids), 1)
        self.assertRegex(sids.pop(), r"^[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+$")
        for e in ev:
            self.assertEqual((e["prog"], e["ip"]), ("mailfront", "192.0.2.7"), e)
            self.assertRegex(e["pid"], r"^\d+$")
        cmds = [(e["command"], e.get("arg")) for e in ev if e["event"] == "command"]
        self.assertEqual(cmds, [("MAIL", "FROM:<a@b.example>"), ("RCPT", "TO:<c@d.example>"),
                                ("FOO", 'bar "baz" \\ \x01\xff\xc3\xa9'),
                                ("RCPT", "TO:<x@y.example>"), ("MAIL", "FROM:<e@f.example>"),
                                ("RCPT", "TO:<g@h.example>")])
        replies = [(e["code"], e["text"]) for e in ev if e["event"] == "reply"]
        self.assertEqual(replies, [("500", "5.5.1 Not implemented."), ("500", "5.5.1 Not implemented."),
                                   ("503", "5.5.1 You must send MAIL FROM: first")])
        msgs = [(e["result"], e["code"], e["bytes"]) for e in ev if e["event"] == "message"]
        self.assertEqual(msgs, [("accepted", "250", str(len(b"Subject: t\n\nbody\n"))), ("accepted", "250", "2")])
        # the SMTP module hides AUTH's arguments itself (a log event)
        self.assertIn(("info", "AUTH [arguments hidden]"), [(e.get("level"), e.get("text")) for e in ev])
        end = ev[-1]
        self.assertEqual(end["status"], "0")
        self.assertEqual(int(end["bytes_in"]), len(self.SESSION))
        self.assertEqual(int(end["bytes_out"]), len(p.stdout))
        self.assertRegex(end["duration_ms"], r"^\d+$")
        self.assertNotIn(SECRET.encode(), p.stderr)

    def test_refused_and_deferred_messages(self):
        data = crlf("HELO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "x", ".", "QUIT")
        p = self.run_smtp(data, LOGFORMAT="kv", QUEUEDIR_DEST="missing")
        msgs = [(e["result"], e["code"], e["bytes"]) for e in events(p.stderr) if e["event"] == "message"]
        self.assertEqual(msgs, [("deferred", "451", "2")])
        standin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "qmail_queue_standin.py")
        p = self.run_smtp(data, backend="qmail", LOGFORMAT="kv", QMAILHOME=self.tmp, QMAILQUEUE=standin,
                          QQ_EXIT="31")
        ev = events(p.stderr)
        msgs = [(e["result"], e["code"]) for e in ev if e["event"] == "message"]
        self.assertEqual(msgs, [("refused", "554")])
        self.assertIn(("554", "5.3.0 Message refused."), [(e.get("code"), e.get("text")) for e in ev
                                                           if e["event"] == "reply"])

    def test_levels_and_load_failure(self):
        p = harness.mailfront(["smtp", "nosuch"], crlf("QUIT"), LOGFORMAT="kv", timeout=30)
        ev = events(p.stderr)
        self.assertEqual([e["event"] for e in ev], ["reply"])
        self.assertEqual(ev[0]["code"], "451")
        self.assertIn("Error loading backend nosuch", ev[0]["text"])
        p = harness.mailfront(["nosuch", "echo"], crlf("QUIT"), LOGFORMAT="kv", timeout=30)
        ev = events(p.stderr)
        self.assertEqual([(e["event"], e["level"]) for e in ev], [("log", "fatal")])
        self.assertIn("Error loading protocol nosuch", ev[0]["text"])
        p = harness.mailfront(["smtp", "echo", "accept"], crlf("HELO x", "QUIT"), LOGFORMAT="kv",
                              MSG_DEBUG="1", timeout=30)
        self.assertIn("debug", [e.get("level") for e in events(p.stderr)])

    def test_sessions_get_distinct_ids(self):
        sids = set()
        for _ in range(3):
            p = self.run_smtp(crlf("QUIT"), LOGFORMAT="kv")
            ev = events(p.stderr)
            self.assertEqual([e["event"] for e in ev], ["session_start", "session_end"])
            self.assertNotIn("ip", ev[0])
            sids.add(ev[0]["sid"])
        self.assertEqual(len(sids), 3)

    def test_qmtp_lines_are_kv(self):
        data = b"6:\nbody\n,3:a@b,6:3:c@d,,"
        p = harness.mailfront(["qmtp", "queuedir", "accept"], data, LOGFORMAT="kv", QUEUEDIR=self.q,
                              QUEUEDIR_NOSYNC="1", timeout=30)
        ev = events(p.stderr)
        self.assertEqual([e["event"] for e in ev], ["session_start", "log", "log", "message", "session_end"])
        self.assertEqual([e["text"] for e in ev if e["event"] == "log"], ["sender <a@b>", "recipient <c@d>"])

    def test_classic_format_unchanged(self):
        session = self.SESSION
        p = self.run_smtp(session, TCPREMOTEIP="192.0.2.7")
        lines = [re.sub(rb"^mailfront\[\d+\]: ", b"", l) for l in p.stderr.split(b"\n") if l]
        self.assertTrue(all(l.startswith(b"mailfront[") for l in p.stderr.split(b"\n") if l))
        self.assertEqual(lines, [b"MAIL FROM:<a@b.example>", b"RCPT TO:<c@d.example>",
                                 b'FOO bar "baz" \\ \x01\xff\xc3\xa9', b"500 5.5.1 Not implemented.",
                                 b"AUTH [arguments hidden]", b"500 5.5.1 Not implemented.",
                                 b"RCPT TO:<x@y.example>", b"503 5.5.1 You must send MAIL FROM: first",
                                 b"MAIL FROM:<e@f.example>", b"RCPT TO:<g@h.example>",
                                 b"bytes in: %d bytes out: %d" % (len(session), len(p.stdout))])
        self.assertNotIn(SECRET.encode(), p.stderr)

    def test_other_programs_write_kv(self):
        md = os.path.join(self.tmp, "Maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, d))
        runs = (("pop3front-maildir", [], crlf("STAT", "BOGUS", "QUIT"), dict(MAILBOX=md), True),
                ("imapfront-auth", [], b"", {}, False),
                ("imapfront-auth", ["/bin/true"], crlf("a LOGIN u hunter2secret", "b LOGOUT"),
                 dict(CVM_SASL_PLAIN="cvm-local:/nonexistent/cvm"), True),
                ("pop3front-auth", ["cvm-local:/nonexistent/cvm", "/bin/true"],
                 crlf("USER u", "PASS hunter2secret", "QUIT"), {}, True))
        for prog, args, data, env, session in runs:
            with self.subTest(prog=prog, args=args):
                p = subprocess.run([bin_path(prog)] + args, input=data,
                                   env=base_env(LOGFORMAT="kv", TCPREMOTEIP="198.51.100.9", **env),
                                   capture_output=True, timeout=30)
                assert_no_sanitizer_report(self, p)
                ev = events(p.stderr)
                self.assertTrue(ev, p.stderr)
                self.assertEqual({e["prog"] for e in ev}, {prog})
                self.assertNotIn(b"hunter2secret", p.stderr)
                if session:
                    self.assertEqual((ev[0]["event"], ev[-1]["event"]), ("session_start", "session_end"))
                    self.assertEqual(len({e["sid"] for e in ev}), 1)
                    self.assertEqual({e["ip"] for e in ev}, {"198.51.100.9"})
                    self.assertEqual(ev[-1]["status"], "0")
                    self.assertEqual(int(ev[-1]["bytes_out"]), len(p.stdout))

    # ---- POP3 and IMAP: commands and replies as events, secrets masked ----

    def run_prog(self, prog, args, data, **env):
        p = subprocess.run([bin_path(prog)] + args, input=data,
                           env=base_env(TCPREMOTEIP="198.51.100.9", **env), capture_output=True, timeout=30)
        assert_no_sanitizer_report(self, p)
        return p

    def check_session(self, ev, prog):
        self.assertEqual((ev[0]["event"], ev[-1]["event"]), ("session_start", "session_end"))
        self.assertEqual({e["prog"] for e in ev}, {prog})
        self.assertEqual(len({e["sid"] for e in ev}), 1)
        self.assertEqual({e["event"] for e in ev} - {"session_start", "session_end", "command", "reply", "log"},
                         set())

    POP3_AUTH = crlf("CAPA", "user alice", "PASS hunter2secret", "AUTH PLAIN " + SECRET, "AUTH LOGIN",
                     "aHVudGVyMnNlY3JldA==", "c2VjcmV0LXR3bw==", "BOGUS x", "AUTH " + SECRET + " eA==",
                     "c2VjcmV0LXRocmVl", "QUIT")

    def test_pop3_auth_commands_and_replies(self):
        argv = ["cvm-local:/nonexistent/cvm", "/bin/true"]
        env = dict(CVM_SASL_PLAIN="cvm-local:/nonexistent/cvm")
        p = self.run_prog("pop3front-auth", argv, self.POP3_AUTH, LOGFORMAT="kv", **env)
        ev = events(p.stderr)
        self.check_session(ev, "pop3front-auth")
        cmds = [(e["command"], e.get("arg")) for e in ev if e["event"] == "command"]
        self.assertEqual(cmds, [("CAPA", None), ("USER", "alice"), ("PASS", None), ("AUTH", "PLAIN"),
                                ("AUTH", "LOGIN"), ("[hidden]", None), ("AUTH", "[hidden]"), ("[hidden]", None),
                                ("QUIT", None)])
        replies = [(e["result"], e.get("text")) for e in ev if e["event"] == "reply"]
        self.assertEqual(replies, [("ok", None), ("ok", None), ("end", None), ("ok", None),
                                   ("err", "Internal error"), ("err", "Could not decode the response."),
                                   ("err", "Internal error."), ("err", "Unimplemented"),
                                   ("err", "Unrecognized authentication mechanism."), ("err", "Unimplemented"),
                                   ("ok", None)])
        for secret in (b"hunter2secret", SECRET.encode(), b"aHVudGVyMnNlY3JldA", b"c2VjcmV0LXR3bw",
                       b"c2VjcmV0LXRocmVl"):
            self.assertNotIn(secret, p.stderr)
        self.assertEqual(int(ev[-1]["bytes_out"]), len(p.stdout))
        # classic: the original's lines, secrets masked the same way
        p = self.run_prog("pop3front-auth", argv, self.POP3_AUTH, **env)
        lines = [re.sub(rb"^pop3front-auth\[\d+\]: ", b"", l) for l in p.stderr.split(b"\n") if l]
        self.assertEqual(lines, [b"+OK ", b"CAPA", b"+OK ", b".", b"user alice", b"+OK ", b"PASS XXXXXXXX",
                                 b"-ERR Internal error", b"AUTH PLAIN XXXXXXXX", b"SASL AUTH PLAIN failed",
                                 b"Could not decode the response.", b"AUTH LOGIN", b"SASL AUTH LOGIN failed",
                                 b"Internal error.", b"[line hidden after a failed AUTH]", b"-ERR Unimplemented",
                                 b"AUTH XXXXXXXX", b"SASL AUTH [hidden] failed",
                                 b"Unrecognized authentication mechanism.", b"[line hidden after a failed AUTH]",
                                 b"-ERR Unimplemented", b"QUIT", b"+OK "])

    def test_pop3_maildir_commands_and_replies(self):
        md = os.path.join(self.tmp, "Maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, d))
        with open(os.path.join(md, "new", "1.a"), "wb") as f:
            f.write(b"Subject: x\n\nbody\n")
        data = crlf("STAT", "LIST", "RETR 1", "TOP 1 0", "PASS hunter2secret", "AUTH PLAIN " + SECRET, "LIST 9",
                    "QUIT")
        p = self.run_prog("pop3front-maildir", [], data, LOGFORMAT="kv", MAILBOX=md)
        ev = events(p.stderr)
        self.check_session(ev, "pop3front-maildir")
        cmds = [(e["command"], e.get("arg")) for e in ev if e["event"] == "command"]
        self.assertEqual(cmds, [("STAT", None), ("LIST", None), ("RETR", "1"), ("TOP", "1 0"), ("PASS", None),
                                ("AUTH", "PLAIN"), ("LIST", "9"), ("QUIT", None)])
        replies = [(e["result"], e.get("text")) for e in ev if e["event"] == "reply"]
        self.assertEqual(replies, [("ok", None), ("ok", "1 17"), ("ok", None), ("end", None), ("ok", None),
                                   ("end", None), ("ok", None), ("end", None), ("err", "Unimplemented"),
                                   ("err", "Unimplemented"), ("err", "Message number out of range"),
                                   ("ok", None)])
        self.assertNotIn(b"hunter2secret", p.stderr)
        self.assertNotIn(SECRET.encode(), p.stderr)
        p = self.run_prog("pop3front-maildir", [], data, MAILBOX=md)
        self.assertIn(b"]: PASS XXXXXXXX\n", p.stderr)
        self.assertIn(b"]: AUTH PLAIN XXXXXXXX\n", p.stderr)
        self.assertNotIn(b"hunter2secret", p.stderr)

    IMAP = crlf("a CAPABILITY", "b login alice hunter2secret", "c AUTHENTICATE PLAIN " + SECRET,
                "c2VjcmV0LXR3bw== c2VjcmV0LXRocmVl", "d AUTHENTICATE LOGIN", "*", "e FOO",
                "f NOOP", "g LOGIN {5}", "alice {13}", "hunter2secret", 'h LOGIN "alice" "hunter2secret"',
                "i AUTHENTICATE " + SECRET, "j LOGOUT")

    def test_imap_commands_and_replies(self):
        env = dict(CVM_SASL_PLAIN="cvm-local:/nonexistent/cvm")
        p = self.run_prog("imapfront-auth", ["/bin/true"], self.IMAP, LOGFORMAT="kv", **env)
        ev = events(p.stderr)
        self.check_session(ev, "imapfront-auth")
        cmds = [(e["tag"], e["command"], e.get("arg")) for e in ev if e["event"] == "command"]
        self.assertEqual(cmds, [("a", "CAPABILITY", None), ("b", "LOGIN", "alice"), ("c", "AUTHENTICATE", "PLAIN"),
                                ("[hidden]", "[hidden]", None), ("d", "AUTHENTICATE", "LOGIN"),
                                ("[hidden]", "[hidden]", None), ("f", "NOOP", None), ("g", "LOGIN", "alice"),
                                ("h", "LOGIN", "alice"), ("i", "AUTHENTICATE", "[hidden]"), ("j", "LOGOUT", None)])
        replies = [(e["tag"], e["result"], e.get("text")) for e in ev if e["event"] == "reply"]
        self.assertEqual(replies[:4], [("*", "ok", "imapfront ready."), ("*", "capability", "IMAP4rev1"),
                                       ("a", "ok", "CAPABILITY completed"), ("b", "no", "LOGIN failed")])
        self.assertIn(("[hidden]", "bad", "Unimplemented command"), replies)
        self.assertIn(("+", "ok", None), replies)
        self.assertEqual(replies[-2:], [("*", "bye", "Logging out"), ("j", "ok", "LOGOUT completed")])
        for secret in (b"hunter2secret", SECRET.encode(), b"c2VjcmV0LXR3bw", b"c2VjcmV0LXRocmVl"):
            self.assertNotIn(secret, p.stderr)
        self.assertEqual(int(ev[-1]["bytes_out"]), len(p.stdout))
        # classic: no command lines (as the original), replies as sent
        p = self.run_prog("imapfront-auth", ["/bin/true"], self.IMAP, **env)
        lines = [re.sub(rb"^imapfront-auth\[\d+\]: ", b"", l) for l in p.stderr.split(b"\n") if l]
        self.assertEqual(lines[:4], [b"* OK imapfront ready.", b"* CAPABILITY IMAP4rev1",
                                     b"a OK CAPABILITY completed", b"Error: CVM failed with code 4"])
        self.assertIn(b"[hidden] BAD Unimplemented command", lines)
        self.assertEqual(lines[-2:], [b"* BYE Logging out", b"j OK LOGOUT completed"])
        self.assertNotIn(b"hunter2secret", p.stderr)
        self.assertNotIn(SECRET.encode(), p.stderr)


if __name__ == "__main__":
    unittest.main()
