"""pop3front-auth: USER/PASS, AUTH, CAPA, limits, timeouts and the exec step,
against real CVM modules (Debian's cvm-pwfile as a command and over a UNIX
socket), Python's poplib through tcpserver, and our pop3front-maildir as the
second stage.  Differential runs compare the wire bytes with Debian's 2.12
/usr/sbin/pop3front-auth where the behaviour is meant to be the same.

Contract: the header of src/programs/pop3front-auth/main.c and
man/pop3front-auth.8.scd (replies, limits, the exec step), src/auth/cvm.h
(the CVM client).  The tests run as root (the exec step switches to the
test user's uid/gid); without root they are skipped.
"""
import os
import poplib
import shutil
import socket
import unittest

from harness import bin_path, idle_session, run, tcpserver, assert_no_sanitizer_report
from authtest import AuthTest, Users, parse_show, b64, PWFILE_CVM, PASSWORD, UID, GID

POP = bin_path("pop3front-auth")
REF_POP = "/usr/sbin/pop3front-auth"
class Pop3AuthBase(AuthTest):
    REFERENCE = REF_POP

    def pop(self, data, cvm=PWFILE_CVM, program=None, argv=None, binary=POP, timeout=30, **env):
        if isinstance(data, str):
            data = data.encode()
        if argv is None:
            argv = [cvm, program or self.u.show]
        p = run([binary] + argv, data, self.u.env(**env), timeout=timeout)
        if binary == POP:
            assert_no_sanitizer_report(self, p)
        return p

    session = pop


class Pop3AuthProtocol(Pop3AuthBase):
    def test_pop3auth_usage(self):
        for argv in ([], [PWFILE_CVM]):
            p = self.pop("", argv=argv)
            self.assertEqual(p.returncode, 0)
            self.assertEqual(p.stdout, b"")
            self.assertEqual(p.stderr, b"usage: pop3front-auth cvm program [args...]\n")

    def test_pop3auth_greeting_capa_quit(self):
        p = self.pop("CAPA\r\nQUIT\r\nUSER never\r\n")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"+OK \r\n+OK \r\nPIPELINING\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n+OK \r\n")
        self.assertIn(b"pop3front-auth[", p.stderr)

    def test_pop3auth_capa_and_auth_list_with_sasl(self):
        p = self.pop("CAPA\r\nAUTH\r\nQUIT\r\n", CVM_SASL_PLAIN=PWFILE_CVM, CVM_SASL_CRAM_MD5=PWFILE_CVM)
        self.assertEqual(p.stdout, b"+OK \r\n+OK \r\nSASL LOGIN PLAIN CRAM-MD5\r\nPIPELINING\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n"
                                   b"+OK \r\nLOGIN\r\nPLAIN\r\nCRAM-MD5\r\n.\r\n+OK \r\n")
        p = self.pop("AUTH\r\nAUTH PLAIN\r\n")
        self.assertEqual(p.stdout, b"+OK \r\n+OK \r\n.\r\n-ERR Unrecognized authentication mechanism.\r\n")

    def test_pop3auth_errors(self):
        p = self.pop("PASS x\r\nUSER\r\nPASS\r\nQUIT now\r\nCAPA x\r\nSTAT\r\n\r\nuser\tx\r\n"
                     "USER alice\r\nPASS wrong\r\nPASS " + PASSWORD + "\r\nQUIT\r\n")
        self.assertEqual(p.stdout.decode().split("\r\n"), [
            "+OK ", "-ERR Send USER first", "-ERR Syntax error", "-ERR Syntax error", "-ERR Syntax error",
            "-ERR Syntax error", "-ERR Unimplemented", "-ERR Unimplemented", "-ERR Unimplemented",
            "+OK ", "-ERR Authentication failed", "-ERR Send USER first", "+OK ", ""])
        # secrets never reach the log
        self.assertIn(b"PASS XXXXXXXX", p.stderr)
        self.assertNotIn(b"wrong", p.stderr)
        self.assertNotIn(PASSWORD.encode(), p.stderr)

    def test_pop3auth_final_line_without_lf(self):
        p = self.pop("CAPA\r\nQUIT")
        self.assertTrue(p.stdout.endswith(b".\r\n+OK \r\n"), p.stdout)
        p = self.pop("USER alice\r\nPASS " + PASSWORD)
        self.assertIn(b"+OK SHOW", p.stdout)

    def test_pop3auth_maxauthfail(self):
        p = self.pop("USER a\r\nPASS b\r\nAUTH PLAIN " + b64("\0alice\0bad") + "\r\nUSER alice\r\nPASS " + PASSWORD + "\r\n",
                     MAXAUTHFAIL="2", CVM_SASL_PLAIN=PWFILE_CVM)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"+OK \r\n+OK \r\n-ERR Authentication failed\r\n-ERR Authentication failed.\r\n")

    def test_pop3auth_maxusercmd(self):
        p = self.pop("USER a\r\nUSER b\r\nUSER c\r\nQUIT\r\n", MAXUSERCMD="2")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"+OK \r\n+OK \r\n+OK \r\n-ERR Too many USER commands issued\r\n")

    def test_pop3auth_hostile_input(self):
        long_pw = "x" * 300
        p = self.pop("USER alice\r\nPASS " + long_pw + "\r\n"
                     "USER alice\r\nPASS " + PASSWORD + "\0junk\r\n"
                     "USER alice\0\r\nPASS " + PASSWORD + "\r\n"
                     "USER " + "y" * 5000 + "\r\n"
                     "AUTH PLAIN !!!!\r\n"
                     "AUTH PLAIN " + b64("alice\0alice\0" + PASSWORD + "\0") + "\r\n"
                     "AUTH LOGIN\r\n" + "A" * 5000 + "\r\n"
                     "AUTH PLAIN " + b64("\0" * 3) + "\r\n"
                     "QUIT\r\n", CVM_SASL_PLAIN=PWFILE_CVM)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout.decode().split("\r\n"), [
            "+OK ", "+OK ", "-ERR Authentication failed", "+OK ", "-ERR Authentication failed",
            "+OK ", "-ERR Authentication failed", "-ERR Line too long",
            "-ERR Could not decode the response.", "-ERR Authentication failed.",
            "+ VXNlcm5hbWU6", "-ERR Could not decode the response.",
            "-ERR Authentication failed.", "+OK ", ""])
        self.assertNotIn(b"SHOW", p.stdout)

    def test_pop3auth_configurable_line_limit(self):
        p = self.pop("USER " + "a" * 40 + "\r\nUSER " + "a" * 10 + "\r\n", MAX_LINE_LENGTH="32")
        self.assertEqual(p.stdout, b"+OK \r\n-ERR Line too long\r\n+OK \r\n")

    def test_pop3auth_cvm_failures(self):
        cases = [("/bin/false", {}), ("/nonexistent/cvm", {}), (self.u.hang_cvm, {"CVM_TIMEOUT": "1"}),
                 (self.u.fake_cvm, {"FAKE_CVM_MODE": "die"}), (self.u.fake_cvm, {"FAKE_CVM_MODE": "garbage"}),
                 ("cvm-local:" + os.path.join(self.u.dir, "no-socket"), {}), ("cvm-bogus:x", {})]
        for cvm, env in cases:
            with self.subTest(cvm=cvm, env=env):
                p = self.pop("USER alice\r\nPASS " + PASSWORD + "\r\nQUIT\r\n", cvm=cvm, **env)
                self.assertEqual(p.returncode, 0)
                self.assertEqual(p.stdout, b"+OK \r\n+OK \r\n-ERR Internal error\r\n+OK \r\n")

    def test_pop3auth_sasl_cvm_hangs(self):
        p = self.pop("AUTH PLAIN " + b64("\0alice\0" + PASSWORD) + "\r\nQUIT\r\n",
                     CVM_SASL_PLAIN=self.u.hang_cvm, CVM_TIMEOUT="1")
        self.assertEqual(p.stdout, b"+OK \r\n-ERR Internal error.\r\n+OK \r\n")

    def test_pop3auth_read_timeout(self):
        # AUTH_TIMEOUT overrides TIMEOUT; the client keeps the connection open
        for cmds in (b"", b"AUTH LOGIN\r\n", b"USER alice\r\n"):
            with self.subTest(cmds=cmds):
                rc, out, _ = idle_session([POP, PWFILE_CVM, self.u.show],
                                       self.u.env(TIMEOUT="1000", AUTH_TIMEOUT="1", CVM_SASL_PLAIN=PWFILE_CVM), cmds)
                self.assertEqual(rc, 0)
                self.assertTrue(out.endswith(b"-ERR Connection timed out\r\n"), out)

    def test_pop3auth_session_timeout(self):
        rc, out, _ = idle_session([POP, PWFILE_CVM, self.u.show],
                               self.u.env(SESSION_TIMEOUT="1000", AUTH_SESSION_TIMEOUT="1"))
        self.assertEqual((rc, out), (0, b"+OK \r\n"))


class Pop3AuthExec(Pop3AuthBase):
    def check_user_env(self, info, home):
        self.assertEqual(info["ids"], f"{UID} {UID} {GID} {GID} groups={GID}")
        self.assertEqual(info["cwd"], os.path.realpath(home))
        env = info["env"]
        self.assertEqual(env["USER"], "alice")
        self.assertEqual(env["UID"], str(UID))
        self.assertEqual(env["GID"], str(GID))
        self.assertEqual(env["HOME"], home)
        self.assertEqual(env["NAME"], "Alice Example")
        self.assertEqual(env["SHELL"], "/bin/sh")

    def test_pop3auth_user_pass_exec(self):
        p = self.pop("USER alice\r\nPASS " + PASSWORD + "\r\nQUIT\r\n", argv=[PWFILE_CVM, self.u.show, "one", "two"])
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith(b"+OK \r\n+OK \r\n+OK SHOW\n"), p.stdout)
        info = parse_show(p.stdout)
        self.check_user_env(info, self.u.home)
        self.assertEqual(info["args"], "one two")
        self.assertNotIn("MAILDIR", info["env"])

    def test_pop3auth_cvm_command_prefix_and_domain_split(self):
        # cvm-command: prefix; user@domain is split (cvm-pwfile ignores the domain)
        p = self.pop("USER alice@example.org\r\nPASS " + PASSWORD + "\r\n", cvm="cvm-command:" + PWFILE_CVM)
        self.check_user_env(parse_show(p.stdout), self.u.home)

    def test_pop3auth_path_search(self):
        shutil.copy(self.u.show, os.path.join(self.u.dir, "showpath"))
        p = self.pop("USER alice\r\nPASS " + PASSWORD + "\r\n", argv=[PWFILE_CVM, "showpath"],
                     PATH=self.u.dir + ":/usr/bin:/bin")
        self.assertIn(b"+OK SHOW", p.stdout)

    def test_pop3auth_sasl_plain_and_login_exec(self):
        for data in ("AUTH PLAIN " + b64("\0alice\0" + PASSWORD) + "\r\n",
                     "AUTH PLAIN\r\n" + b64("alice\0alice\0" + PASSWORD) + "\r\n",
                     "AUTH LOGIN\r\n" + b64("alice") + "\r\n" + b64(PASSWORD) + "\r\n",
                     "auth login " + b64("alice") + "\r\n" + b64(PASSWORD) + "\r\n"):
            with self.subTest(data=data):
                p = self.pop(data, CVM_SASL_PLAIN=PWFILE_CVM, TCPLOCALHOST="mx.example", PROTO="TCP")
                self.assertEqual(p.returncode, 0)
                self.check_user_env(parse_show(p.stdout), self.u.home)
                self.assertIn(b"SASL AUTH ", p.stderr)
                self.assertNotIn(b64("\0alice\0" + PASSWORD).encode(), p.stderr)

    def test_pop3auth_facts_exported(self):
        p = self.pop("USER vuser\r\nPASS " + PASSWORD + "\r\n", cvm=self.u.fake_cvm,
                     TCPLOCALHOST="mx.example", FAKE_CVM_MODE="ok")
        info = parse_show(p.stdout)
        env = info["env"]
        for k, v in {"USER": "vuser", "NAME": "Virtual User", "SHELL": "/bin/false", "GROUP": "vgroup",
                     "DOMAIN": "example.net", "GIDS": "100,101", "MAIL": self.u.maildir,
                     "MAILBOX": self.u.maildir, "MAILDIR": self.u.maildir, "HOME": self.u.home}.items():
            self.assertEqual(env.get(k), v, k)
        self.assertEqual(info["ids"], f"{UID} {UID} {GID} {GID} groups={GID}")
        # the domain credential: ${PROTO}LOCALHOST with PROTO defaulting to TCP
        with open(self.u.fake_log, "rb") as f:
            self.assertIn(b"(2, b'mx.example')", f.read().splitlines()[-1])

    def test_pop3auth_exec_failures(self):
        p = self.pop("USER alice\r\nPASS " + PASSWORD + "\r\n", program="/nonexistent/program")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"+OK \r\n+OK \r\n-ERR Could not execute second stage\r\n")
        # bob's home does not exist: chdir fails after the ID switch
        p = self.pop("USER bob\r\nPASS bobpw\r\n")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"+OK \r\n+OK \r\n-ERR Internal error\r\n")

    def test_pop3auth_cvm_local_socket(self):
        with self.u.cvm_local("cvm.sock") as cvm:
            p = self.pop("USER alice\r\nPASS wrong\r\nUSER alice\r\nPASS " + PASSWORD + "\r\n", cvm=cvm)
            self.assertTrue(p.stdout.startswith(b"+OK \r\n+OK \r\n-ERR Authentication failed\r\n+OK \r\n+OK SHOW"),
                            p.stdout)
            self.check_user_env(parse_show(p.stdout), self.u.home)
            p = self.pop("AUTH PLAIN " + b64("\0alice\0" + PASSWORD) + "\r\n", CVM_SASL_PLAIN=cvm)
            self.check_user_env(parse_show(p.stdout), self.u.home)


@unittest.skipUnless(os.path.exists(REF_POP), "reference pop3front-auth not installed")
class Pop3AuthDifferential(Pop3AuthBase):
    """The same client input to ours and to Debian's 2.12: the same bytes."""

    SCRIPTS = [
        "CAPA\r\nAUTH\r\nQUIT\r\n",
        "PASS x\r\nUSER\r\nPASS\r\nQUIT now\r\nCAPA x\r\nSTAT\r\n\r\nfoo bar\r\nQUIT\r\n",
        "USER alice\r\nPASS wrong\r\nPASS x\r\nUSER nobody\r\nPASS x\r\nQUIT\r\n",
        "AUTH PLAIN " + b64("\0alice\0bad") + "\r\nAUTH FOO\r\nAUTH PLAIN !!!\r\nAUTH LOGIN\r\n*\r\n"
        "AUTH PLAIN\r\n\r\nauth plain\r\n" + b64("x\0alice\0bad") + "\r\nAUTH CRAM-MD5\r\n"
        "AUTH LOGIN " + b64("alice") + "\r\n" + b64("bad") + "\r\nQUIT\r\n",
        "USER alice\r\nPASS " + PASSWORD + "\r\n",
        "AUTH LOGIN\r\n" + b64("alice") + "\r\n" + b64(PASSWORD) + "\r\n",
    ]

    def test_pop3auth_differential(self):
        for i, script in enumerate(self.SCRIPTS):
            for env in ({}, {"CVM_SASL_PLAIN": PWFILE_CVM}, {"MAXAUTHFAIL": "2", "CVM_SASL_PLAIN": PWFILE_CVM}):
                with self.subTest(script=i, env=env):
                    ours = self.pop(script, **env)
                    ref = self.reference(script, **env)
                    self.assertEqual(ours.stdout, ref.stdout)
                    self.assertEqual(ours.returncode, ref.returncode)

    def test_pop3auth_differential_limits(self):
        for script, env in (("USER a\r\nUSER b\r\nUSER c\r\n", {"MAXUSERCMD": "2"}),
                            ("USER a\r\nPASS b\r\n", {"cvm": "/bin/false"}),
                            ("USER alice\r\nPASS " + PASSWORD + "\r\n", {"program": "/nonexistent"})):
            with self.subTest(script=script):
                ours = self.pop(script, **env)
                ref = self.reference(script, **env)
                self.assertEqual((ours.returncode, ours.stdout), (ref.returncode, ref.stdout))


class Pop3AuthChain(Pop3AuthBase):
    """poplib through tcpserver: pop3front-auth, then our pop3front-maildir
    as the user on the user's maildir (a fresh one for every test)."""

    def setUp(self):
        self.u = Users()
        self.addCleanup(self.u.cleanup)

    def server(self, **env):
        argv = [POP, PWFILE_CVM, bin_path("pop3front-maildir"), "./Maildir"]
        return tcpserver(argv, env=self.u.env(**env))

    def test_pop3auth_poplib_user_pass_maildir(self):
        with self.server() as (port, srv):
            c = poplib.POP3("127.0.0.1", port, timeout=20)
            self.assertEqual(c.getwelcome(), b"+OK ")
            self.assertIn("USER", c.capa())
            with self.assertRaises(poplib.error_proto):
                c.user("alice")
                c.pass_("wrong")
            c.user("alice")
            c.pass_(PASSWORD)
            self.assertEqual(c.stat(), (2, os.path.getsize(os.path.join(self.u.maildir, "new", "1000000000.M1P1.test"))
                                        + os.path.getsize(os.path.join(self.u.maildir, "cur", "999999999.M2P2.test:2,"))))
            resp, lines, _ = c.retr(1)
            self.assertIn(b"Subject: two", lines)
            self.assertIn(b".dotted", lines)     # dot-unstuffed by poplib
            c.quit()
            log = srv.stderr.read()
        self.assertIn(b"pop3front-maildir[", log)
        # the second stage ran as the user: message 1 now read, in cur/, owned by the user
        cur = os.listdir(os.path.join(self.u.maildir, "cur"))
        self.assertIn("999999999.M2P2.test:2,S", cur)
        self.assertIn("1000000000.M1P1.test", cur)      # moved from new/ by QUIT
        self.assertNotIn(b"AddressSanitizer", log)

    def test_pop3auth_poplib_auth_plain_and_login(self):
        with self.server(CVM_SASL_PLAIN=PWFILE_CVM) as (port, srv):
            c = poplib.POP3("127.0.0.1", port, timeout=20)
            self.assertEqual(c.capa()["SASL"], ["LOGIN", "PLAIN"])
            with self.assertRaises(poplib.error_proto) as e:
                c._shortcmd("AUTH PLAIN " + b64("\0alice\0nope"))
            self.assertEqual(str(e.exception), str(b"-ERR Authentication failed."))
            self.assertTrue(c._shortcmd("AUTH PLAIN " + b64("\0alice\0" + PASSWORD)).startswith(b"+OK"))
            count, size = c.stat()
            self.assertEqual(count, 2)
            c.quit()
            c = poplib.POP3("127.0.0.1", port, timeout=20)
            c._putcmd("AUTH LOGIN")
            self.assertEqual(c._getline()[0], b"+ VXNlcm5hbWU6")
            c._putcmd(b64("alice"))
            self.assertEqual(c._getline()[0], b"+ UGFzc3dvcmQ6")
            c._putcmd(b64(PASSWORD))
            self.assertEqual(c._getresp(), b"+OK ")     # pop3front-maildir's greeting
            self.assertEqual(c.stat()[0], 2)
            c.quit()
            self.assertNotIn(b"AddressSanitizer", srv.stderr.read())


if __name__ == "__main__":
    unittest.main()


class Pop3AuthPipelined(Pop3AuthChain):
    """Commands pipelined after PASS in the same packet reach the mailbox
    server (they go through the relay instead of being lost at exec)."""

    def test_pop3auth_pipelined_after_pass(self):
        with self.server() as (port, srv):
            with socket.create_connection(("127.0.0.1", port), timeout=20) as c:
                f = c.makefile("rb")
                self.assertTrue(f.readline().startswith(b"+OK"))
                c.sendall(b"USER alice\r\nPASS " + PASSWORD.encode() + b"\r\nSTAT\r\nQUIT\r\n")
                lines = [f.readline() for _ in range(4)]
        self.assertTrue(lines[0].startswith(b"+OK"), lines)     # USER
        self.assertTrue(lines[1].startswith(b"+OK"), lines)     # maildir greeting after PASS
        self.assertTrue(lines[2].startswith(b"+OK 2 "), lines)  # STAT: two messages
        self.assertTrue(lines[3].startswith(b"+OK"), lines)     # QUIT
