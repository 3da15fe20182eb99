"""imapfront-auth: parser (tags, atoms, quoted strings, literals), CAPABILITY,
LOGIN, AUTHENTICATE, LOGOUT, limits, timeouts and the exec step, against
Debian's cvm-pwfile (command and UNIX socket), Python's imaplib through
tcpserver into Dovecot's imap binary in pre-authenticated mode, and a SHOW
script for the exported environment.  Differential runs compare the wire
bytes with Debian's 2.12 /usr/sbin/imapfront-auth.

Contract: the header of src/programs/imapfront-auth/main.c and
man/imapfront-auth.8.scd (replies, limits, environment of the server),
src/auth/cvm.h (the CVM client).  Needs root (the exec step switches to
the test user).
"""
import imaplib
import os
import unittest

from harness import base_env, bin_path, idle_session, run, tcpserver, assert_no_sanitizer_report
from authtest import (AuthTest, Users, parse_show, b64, wait_log, PWFILE_CVM, PASSWORD, UID, GID,
                      ISHOW, DOVECOT_CONF, DOVECOT_IMAP)

IMAP = bin_path("imapfront-auth")
REF_IMAP = "/usr/sbin/imapfront-auth"
class ImapAuthBase(AuthTest):
    REFERENCE = REF_IMAP

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ishow = cls.u._script("ishow.sh", ISHOW)

    def imap(self, data, program=None, argv=None, binary=IMAP, timeout=30, **env):
        if isinstance(data, str):
            data = data.encode()
        if argv is None:
            argv = [program or self.ishow]
        env.setdefault("CVM_SASL_PLAIN", PWFILE_CVM)
        p = run([binary] + argv, data, self.u.env(**env), timeout=timeout)
        if binary == IMAP:
            assert_no_sanitizer_report(self, p)
        return p

    session = imap

    def lines(self, p):
        return p.stdout.decode("utf-8", "replace").split("\r\n")


class ImapAuthProtocol(ImapAuthBase):
    def test_imapauth_startup(self):
        p = run([IMAP], b"", base_env())
        self.assertEqual((p.returncode, p.stdout), (0, b"* NO Usage: imapfront-auth imapd [args ...]\r\n"))
        p = run([IMAP, self.ishow], b"a LOGOUT\r\n", base_env())
        self.assertEqual((p.returncode, p.stdout), (0, b"* NO $CVM_SASL_PLAIN is not set\r\n"))

    PARSER = [
        ("a1 CAPABILITY", ["* CAPABILITY IMAP4rev1", "a1 OK CAPABILITY completed"]),
        ("a2 noop", ["a2 OK NOOP completed"]),
        ("", ["* BAD Syntax error"]),
        ("   ", ["* BAD Syntax error"]),
        ("a3", ["a3 BAD Syntax error"]),
        ("a4 FOO", ["a4 BAD Unimplemented command"]),
        ("a5 LOGIN x", ["a5 BAD LOGIN command requires exactly two arguments"]),
        ("a6 LOGIN alice bad", ["a6 NO LOGIN failed"]),
        ("a7 NOOP x", ["a7 BAD Syntax error: command requires no arguments"]),
        ("a8 LOGIN {3}\r\nabc \"b\\\"c\"", ["+ OK", "a8 NO LOGIN failed"]),
        ("a9 AUTHENTICATE", ["a9 BAD Syntax error: command requires arguments"]),
        ("a10 AUTHENTICATE PLAIN\r\n*", ["+ ", "a10 NO AUTHENTICATE failed: Authentication failed."]),
        ("a11 AUTHENTICATE FOO", ["a11 NO AUTHENTICATE failed: Unrecognized authentication mechanism."]),
        ("c1 LOGIN {x}", ["c1 BAD Syntax error: missing integer"]),
        ("c2 LOGIN {3x}", ["c2 BAD Syntax error: invalid integer"]),
        ("c3 LOGIN {", ["c3 BAD Syntax error: missing integer"]),
        ("c4 LOGIN {3}\t", ["c4 BAD Syntax error: missing LF after integer"]),
        ("c5 FOO {x}", ["c5 BAD Syntax error: missing integer"]),
        ("c6 FOO a b c d e f g h i j k l m n o p q", ["c6 BAD Too many command arguments"]),
        ("c7 FOO \"abc", ["c7 BAD Syntax error: unterminated quoted string"]),
        ("c8 CAPABILITY {0}\r\n", ["+ OK", "c8 BAD Syntax error: command requires no arguments"]),
        ("c9 AUTHENTICATE plain AAA=", ["c9 NO AUTHENTICATE failed: Authentication failed."]),
        ("c11 AUTHENTICATE x y z", ["c11 BAD AUTHENTICATE command requires only one or two arguments"]),
        ("c12 LOGIN \"a\\\\b\" \"\"", ["c12 NO LOGIN failed"]),
        ("b3 LOGIN {3", ["b3 BAD Syntax error: missing LF after integer"]),
        ("b4 LOGIN {3} x", ["b4 BAD Syntax error: missing LF after integer"]),
        ("b7 NOOP a b c d e f g h i j k l m n o p", ["b7 BAD Syntax error: command requires no arguments"]),
        ("  b8   capability  ", ["* CAPABILITY IMAP4rev1", "b8 OK CAPABILITY completed"]),
        ("b9 LOGIN a\"b c", ["b9 NO LOGIN failed"]),
        ("b10 LOGIN \"a\"b c", ["b10 BAD LOGIN command requires exactly two arguments"]),
        ("b11 LOGIN {0}\r\n x", ["+ OK", "b11 NO LOGIN failed"]),
        ("b12 LOGIN {2}\r\nab{1}\r\nc", ["+ OK", "+ OK", "b12 NO LOGIN failed"]),
    ]

    def test_imapauth_parser_replies(self):
        data = "".join(line + "\r\n" for line, _ in self.PARSER)
        expect = ["* OK imapfront ready."] + [r for _, rs in self.PARSER for r in rs] + [""]
        p = self.imap(data)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(self.lines(p), expect)

    def test_imapauth_final_line_without_lf(self):
        p = self.imap("a CAPABILITY\r\nb LOGOUT")
        self.assertEqual(self.lines(p), ["* OK imapfront ready.", "* CAPABILITY IMAP4rev1",
                                         "a OK CAPABILITY completed", "* BYE Logging out",
                                         "b OK LOGOUT completed", ""])

    def test_imapauth_capability_composition(self):
        cases = [({"IMAP_CAPABILITY": "imap4rev1  FOO AUTH=PLAIN", "IMAP_ACL": "1", "OUTBOX": ".Out",
                   "IMAP_MOVE_EXPUNGE_TO_TRASH": "2"},
                  "* CAPABILITY IMAP4rev1 FOO AUTH=PLAIN ACL ACL2=UNION XCOURIEROUTBOX=INBOX.Out XMAGICTRASH"),
                 ({"CAPABILITY": "  X Y", "IMAP_ACL": "0", "OUTBOX": ""}, "* CAPABILITY IMAP4rev1 X Y"),
                 ({"IMAP_CAPABILITY": "IMAP4rev1", "CAPABILITY": "Z"}, "* CAPABILITY IMAP4rev1"),
                 ({"IMAP_CAPABILITY": "IMAP4REV1X"}, "* CAPABILITY IMAP4rev1 X")]
        for env, line in cases:
            with self.subTest(env=env):
                p = self.imap("a CAPABILITY\r\n", **env)
                self.assertEqual(self.lines(p)[1], line)

    def test_imapauth_literal_plus_and_limits(self):
        p = self.imap("a LOGIN {5+}\r\nalice {3+}\r\nbad\r\n"
                      "b LOGIN alice {5000}\r\n"
                      "c LOGIN " + "x" * 5000 + " y\r\n"
                      "d LOGIN \"alice\" \"" + PASSWORD + "\0junk\"\r\n"
                      "e LOGIN " + "u" * 300 + " x\r\n"
                      "f LOGIN {5}\r\nalice " + "y" * 5000 + "\r\n"
                      "g AUTHENTICATE PLAIN\r\n" + "A" * 5000 + "\r\n"
                      "h AUTHENTICATE PLAIN !!!\r\n"
                      "i LOGIN alice {10+}\r\n")
        self.assertEqual(self.lines(p), [
            "* OK imapfront ready.", "a NO LOGIN failed", "b BAD Literal too large",
            "c BAD Line too long", "d NO LOGIN failed", "e NO LOGIN failed",
            "+ OK", "f BAD Line too long", "+ ", "g NO AUTHENTICATE failed: Could not decode the response.",
            "h NO AUTHENTICATE failed: Could not decode the response.", ""])   # EOF inside i's literal
        self.assertNotIn(b"SHOW", p.stdout)
        p = self.imap("a LOGIN {20}\r\n", MAX_LITERAL_LENGTH="10")
        self.assertEqual(self.lines(p), ["* OK imapfront ready.", "a BAD Literal too large", ""])
        p = self.imap("a LOGIN {20+}\r\n" + "x" * 20 + " y\r\nb NOOP\r\n", MAX_LITERAL_LENGTH="10")
        self.assertEqual(self.lines(p), ["* OK imapfront ready.", "a BAD Literal too large", ""])
        p = self.imap("a NOOP " + "x" * 40 + "\r\nb NOOP\r\n", MAX_LINE_LENGTH="32")
        self.assertEqual(self.lines(p), ["* OK imapfront ready.", "a BAD Line too long", "b OK NOOP completed", ""])

    def test_imapauth_maxauthfail(self):
        p = self.imap("a LOGIN alice x\r\nb AUTHENTICATE PLAIN " + b64("\0alice\0y") + "\r\nc LOGIN alice "
                      + PASSWORD + "\r\n", MAXAUTHFAIL="2")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(self.lines(p), ["* OK imapfront ready.", "a NO LOGIN failed",
                                         "b NO AUTHENTICATE failed: Authentication failed.", ""])

    def test_imapauth_eof_inside_literal_and_sasl(self):
        for data in ("a LOGIN {10}\r\nabc", "a AUTHENTICATE LOGIN\r\n", "a AUTHENTICATE LOGIN\r\n" + b64("alice")):
            with self.subTest(data=data):
                p = self.imap(data)
                self.assertEqual(p.returncode, 0)
                self.assertNotIn(b" OK SHOW", p.stdout)
                self.assertNotIn(b"NO", p.stdout.split(b"\r\n", 1)[1])

    def test_imapauth_cvm_failures(self):
        u = self.u
        for cvm, env in (("/bin/false", {}), (u.hang_cvm, {"CVM_TIMEOUT": "1"}),
                         (u.fake_cvm, {"FAKE_CVM_MODE": "die"}), (u.fake_cvm, {"FAKE_CVM_MODE": "garbage"})):
            with self.subTest(cvm=cvm, env=env):
                p = self.imap("a LOGIN alice \"" + PASSWORD + "\"\r\nb AUTHENTICATE PLAIN " + b64("\0alice\0" + PASSWORD)
                              + "\r\nc LOGOUT\r\n", CVM_SASL_PLAIN=cvm, **env)
                self.assertEqual(p.returncode, 0)
                self.assertEqual(self.lines(p), ["* OK imapfront ready.", "a NO LOGIN failed",
                                                 "b NO AUTHENTICATE failed: Internal error.",
                                                 "* BYE Logging out", "c OK LOGOUT completed", ""])

    def test_imapauth_read_timeout(self):
        for cmds in (b"", b"a LOGIN {5}\r\nab", b"a AUTHENTICATE PLAIN\r\n"):
            with self.subTest(cmds=cmds):
                rc, out, _ = idle_session([IMAP, self.ishow],
                                       self.u.env(CVM_SASL_PLAIN=PWFILE_CVM, TIMEOUT="1000", AUTH_TIMEOUT="1"), cmds)
                self.assertEqual(rc, 0)
                self.assertTrue(out.endswith(b"* NO Connection timed out\r\n"), out)
        rc, out, _ = idle_session([IMAP, self.ishow],
                               self.u.env(CVM_SASL_PLAIN=PWFILE_CVM, SESSION_TIMEOUT="1000", AUTH_SESSION_TIMEOUT="1"))
        self.assertEqual((rc, out), (0, b"* OK imapfront ready.\r\n"))


class ImapAuthExec(ImapAuthBase):
    def check_user(self, info, tag):
        self.assertEqual(info["ids"], f"{UID} {UID} {GID} {GID} groups={GID}")
        self.assertEqual(info["cwd"], os.path.realpath(self.u.home))
        env = info["env"]
        self.assertEqual(env["IMAPLOGINTAG"], tag)
        self.assertEqual(env["AUTHENTICATED"], "alice")
        self.assertEqual((env["USER"], env["UID"], env["GID"], env["HOME"]), ("alice", str(UID), str(GID), self.u.home))
        self.assertEqual(env["NAME"], "Alice Example")

    def test_imapauth_login_exec(self):
        for data, tag in (("x1 LOGIN alice \"" + PASSWORD + "\"\r\n", "x1"),
                          ("x2 LOGIN {5}\r\nalice {9}\r\n" + PASSWORD + "\r\n", "x2"),
                          ("x3 LOGIN {5+}\r\nalice {9+}\r\n" + PASSWORD + "\r\n", "x3"),
                          ("x4 login alice@example.org \"" + PASSWORD + "\"", "x4"),
                          ("x5 AUTHENTICATE PLAIN " + b64("\0alice\0" + PASSWORD) + "\r\n", "x5"),
                          ("x6 AUTHENTICATE PLAIN\r\n" + b64("alice\0alice\0" + PASSWORD) + "\r\n", "x6"),
                          ("x7 AUTHENTICATE LOGIN\r\n" + b64("alice") + "\r\n" + b64(PASSWORD) + "\r\n", "x7")):
            with self.subTest(data=data):
                p = self.imap(data, argv=[self.ishow, "a1", "a2"])
                self.assertEqual(p.returncode, 0)
                self.assertIn((tag + " OK SHOW\n").encode(), p.stdout)
                info = parse_show(p.stdout)
                self.check_user(info, tag)
                self.assertEqual(info["args"], "a1 a2")
                self.assertNotIn(PASSWORD.encode(), p.stderr)

    def test_imapauth_cvm_local_socket(self):
        with self.u.cvm_local("icvm.sock") as cvm:
            p = self.imap("a LOGIN alice nope\r\nb LOGIN alice \"" + PASSWORD + "\"\r\n", CVM_SASL_PLAIN=cvm)
            self.assertTrue(p.stdout.startswith(b"* OK imapfront ready.\r\na NO LOGIN failed\r\nb OK SHOW\n"), p.stdout)
            self.check_user(parse_show(p.stdout), "b")

    def test_imapauth_setup_env_dovecot(self):
        for mailbox, value in ((self.u.maildir, "maildir:" + self.u.maildir),
                               (self.u.dir + "/mail:box", "mbox:" + self.u.dir + "/mail::box")):
            with self.subTest(mailbox=mailbox):
                p = self.imap("t LOGIN vuser \"" + PASSWORD + "\"\r\n", CVM_SASL_PLAIN=self.u.fake_cvm,
                              SETUP_ENV="dovecot", FAKE_CVM_MAILBOX=mailbox)
                env = parse_show(p.stdout)["env"]
                self.assertEqual(env.get("DOVECONF_ENV"), "1")
                for k in ("MAIL", "MAILBOX", "MAILDIR"):
                    self.assertEqual(env.get(k), value)
                self.assertEqual(env["GIDS"], "100,101")
                self.assertEqual(env["DOMAIN"], "example.net")
                self.assertEqual(env["AUTHENTICATED"], "vuser")
        p = self.imap("t LOGIN vuser \"" + PASSWORD + "\"\r\n", CVM_SASL_PLAIN=self.u.fake_cvm)
        env = parse_show(p.stdout)["env"]
        self.assertNotIn("DOVECONF_ENV", env)
        self.assertEqual(env["MAILDIR"], self.u.maildir)

    def test_imapauth_exec_failures(self):
        p = self.imap("a LOGIN alice \"" + PASSWORD + "\"\r\n", program="/nonexistent/imapd")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(self.lines(p), ["* OK imapfront ready.", "a NO Could not execute second stage", ""])
        p = self.imap("a LOGIN bob bobpw\r\n")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(self.lines(p), ["* OK imapfront ready.", "a NO Internal error: could not set UID/GID", ""])


@unittest.skipUnless(os.path.exists(REF_IMAP), "reference imapfront-auth not installed")
class ImapAuthDifferential(ImapAuthBase):
    """The same client input to ours and to Debian's 2.12: the same bytes."""

    def test_imapauth_differential(self):
        scripts = ["".join(line + "\r\n" for line, _ in ImapAuthProtocol.PARSER),
                   "a LOGIN alice x\r\nb AUTHENTICATE PLAIN " + b64("\0alice\0y") + "\r\nc NOOP\r\n",
                   "a CAPABILITY\r\n",
                   "a LOGIN alice \"" + PASSWORD + "\"\r\n",
                   "a AUTHENTICATE LOGIN\r\n" + b64("alice") + "\r\n" + b64(PASSWORD) + "\r\n"]
        envs = ({}, {"MAXAUTHFAIL": "1"}, {"IMAP_CAPABILITY": "IMAP4rev1 AUTH=PLAIN", "IMAP_ACL": "1", "OUTBOX": "x"},
                {"CVM_SASL_PLAIN": "/bin/false"})
        for i, script in enumerate(scripts):
            for env in envs:
                with self.subTest(script=i, env=env):
                    ours = self.imap(script, **env)
                    ref = self.reference(script, **env)
                    self.assertEqual((ours.returncode, ours.stdout), (ref.returncode, ref.stdout))


@unittest.skipUnless(os.path.exists(DOVECOT_IMAP), "Dovecot imap (dovecot-imapd) not installed")
class ImapAuthDovecot(ImapAuthBase):
    """imaplib through tcpserver: imapfront-auth, then Dovecot's imap binary
    pre-authenticated as the user on the user's maildir."""

    def setUp(self):
        self.u = Users()
        self.addCleanup(self.u.cleanup)
        self.conf = self.u._script("dovecot.conf", DOVECOT_CONF)
        os.chmod(self.conf, 0o644)

    def server(self, **env):
        return tcpserver([IMAP, DOVECOT_IMAP, "-c", self.conf],
                         env=self.u.env(CVM_SASL_PLAIN=PWFILE_CVM, **env))

    def check_mailbox(self, c):
        typ, data = c.select("INBOX")
        self.assertEqual((typ, data), ("OK", [b"2"]))
        typ, data = c.fetch("1:2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = sorted(part[1].strip() for part in data if isinstance(part, tuple))
        self.assertEqual(subjects, [b"Subject: one", b"Subject: two"])
        c.logout()

    def test_imapauth_imaplib_login_dovecot(self):
        with self.server() as (port, srv):
            c = imaplib.IMAP4("127.0.0.1", port, timeout=20)
            self.assertEqual(c.welcome, b"* OK imapfront ready.")
            with self.assertRaises(imaplib.IMAP4.error):
                c.login("alice", "wrong")
            typ, data = c.login("alice", PASSWORD)
            self.assertEqual(typ, "OK")
            self.assertIn(b"Logged in", data[0])       # Dovecot answered the LOGIN tag
            self.check_mailbox(c)
            log = wait_log(srv, b"imap(alice)")
        self.assertIn(b"imap(alice)", log)
        self.assertNotIn(b"AddressSanitizer", log)

    def test_imapauth_imaplib_authenticate_dovecot(self):
        with self.server() as (port, srv):
            c = imaplib.IMAP4("127.0.0.1", port, timeout=20)
            with self.assertRaises(imaplib.IMAP4.error):
                c.authenticate("PLAIN", lambda _: b"\0alice\0nope")
            typ, data = c.authenticate("PLAIN", lambda _: ("\0alice\0" + PASSWORD).encode())
            self.assertEqual(typ, "OK")
            self.check_mailbox(c)
            self.assertNotIn(b"AddressSanitizer", srv.stderr.read())


if __name__ == "__main__":
    unittest.main()
