"""pop3front-auth STLS (RFC 2595, beyond the original): CAPA before and
after, the handshake through our GnuTLS layer, the login inside TLS that
forks the second stage onto a socketpair and relays it (src/tls/tlsrelay.c),
the injection case (CVE-2011-0411), TLS not configured, $AUTH_REQUIRES_TLS.

Real clients: Python's poplib stls() and ssl sockets, openssl s_client
-starttls pop3, through tcpserver on 127.0.0.1 or directly on a socketpair
(for exit statuses and logs); real CVM (Debian's cvm-pwfile); our
pop3front-maildir as the second stage on a real maildir.  The certificate
is made by openssl in a temporary directory.  Needs root (the exec step
switches to the test user).  Docs: docs/tls.md "POP3 and IMAP".
"""
import os
import poplib
import unittest

from harness import bin_path, tcpserver
from authtest import (TlsAuthTest, PWFILE_CVM, PASSWORD, UID, GID, CERT, TIMEOUT, client_context, drop_cert,
                      make_cert, s_client, tls_env, Direct)

POP = bin_path("pop3front-auth")
MAILDIR_BIN = bin_path("pop3front-maildir")


def setUpModule():
    make_cert()


def tearDownModule():
    drop_cert()


class Pop3StlsBase(TlsAuthTest):
    def direct(self, program=None, **env):
        argv = [POP, PWFILE_CVM] + (program or [MAILDIR_BIN, "./Maildir"])
        return Direct(argv, self.u.env(**env))

    def direct_tls(self, program=None, **env):
        """direct() with TLS configured, after STLS and the handshake."""
        d = self.direct(program, **tls_env(**env))
        d.send("STLS\r\n")
        self.assertEqual(d.line(), b"+OK \r\n")
        self.assertEqual(d.line(), b"+OK Begin TLS negotiation\r\n")
        d.start_tls()
        return d

    def server(self, **env):
        return tcpserver([POP, PWFILE_CVM, MAILDIR_BIN, "./Maildir"], env=self.u.env(**env))

    def messages(self):
        return self.u.messages()


class Pop3StlsProtocol(Pop3StlsBase):
    def test_pop3stls_not_configured(self):
        for env in ({}, {"TLS_CERTFILE": ""}, {"TLS_CERTFILE": "x", "TLS_KEYFILE": ""}):
            with self.subTest(env=env):
                d = self.direct(**env)
                d.send("CAPA\r\nSTLS\r\nSTLS x\r\nQUIT\r\n")
                out = d.rest()
                rc, err = d.finish(self)
                self.assertEqual(rc, 0)
                self.assertEqual(out, b"+OK \r\n+OK \r\nPIPELINING\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n"
                                      b"-ERR Unimplemented\r\n-ERR Unimplemented\r\n+OK \r\n")

    def test_pop3stls_bad_cert_logged_not_offered(self):
        d = self.direct(TLS_CERTFILE=os.path.join(CERT["dir"], "missing.pem"))
        d.send("CAPA\r\nSTLS\r\nQUIT\r\n")
        out = d.rest()
        rc, err = d.finish(self)
        self.assertNotIn(b"STLS", out)
        self.assertIn(b"-ERR Unimplemented", out)
        self.assertIn(b"TLS init failed: ", err)

    def test_pop3stls_capa_stls_login_retr(self):
        d = self.direct(**tls_env())
        self.assertEqual(d.line(), b"+OK \r\n")
        d.send("CAPA\r\nUSER alice\r\nSTLS x\r\nSTLS\r\n")
        capa = [d.line() for _ in range(7)]
        self.assertEqual(capa, [b"+OK \r\n", b"PIPELINING\r\n", b"TOP\r\n", b"UIDL\r\n", b"USER\r\n",
                                b"STLS\r\n", b".\r\n"])
        self.assertEqual(d.line(), b"+OK \r\n")
        self.assertEqual(d.line(), b"-ERR Syntax error\r\n")
        self.assertEqual(d.line(), b"+OK Begin TLS negotiation\r\n")
        d.start_tls()
        # RFC 2595 4: capabilities without STLS; USER forgotten; no second STLS
        d.send("CAPA\r\nPASS " + PASSWORD + "\r\nSTLS\r\n")
        self.assertEqual([d.line() for _ in range(6)],
                         [b"+OK \r\n", b"PIPELINING\r\n", b"TOP\r\n", b"UIDL\r\n", b"USER\r\n", b".\r\n"])
        self.assertEqual(d.line(), b"-ERR Send USER first\r\n")
        self.assertEqual(d.line(), b"-ERR Command not permitted when TLS active\r\n")
        # login, then the second stage through the relay; STAT pipelined after PASS
        d.send("USER alice\r\nPASS " + PASSWORD + "\r\nSTAT\r\n")
        self.assertEqual(d.line(), b"+OK \r\n")                 # USER
        self.assertEqual(d.line(), b"+OK \r\n")                 # pop3front-maildir's greeting
        msgs = self.messages()
        self.assertEqual(d.line(), f"+OK 2 {sum(map(len, msgs))}\r\n".encode())
        # the relay (our direct child) runs as the user too, groups reduced
        with open(f"/proc/{d.proc.pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        self.assertEqual(status["Uid"].split(), [str(UID)] * 4)
        self.assertEqual(status["Gid"].split(), [str(GID)] * 4)
        self.assertEqual(status["Groups"].split(), [str(GID)])
        d.send("RETR 2\r\nQUIT\r\n")
        self.assertTrue(d.line().startswith(b"+OK"))
        body = b""
        while True:
            line = d.line()
            if line == b".\r\n":
                break
            body += line
        # pop3front-maildir sends one extra CRLF after the content (pop3.md)
        self.assertIn(body.replace(b"\r\n", b"\n").replace(b"\n..", b"\n."), [m + b"\n" for m in msgs])
        self.assertTrue(d.line().startswith(b"+OK"))
        self.assertEqual(d.rest(), b"")          # clean TLS close after QUIT
        rc, err = d.finish(self)
        self.assertEqual(rc, 0)
        self.assertIn(b"TLS handshake: TLS1.3 ", err)
        self.assertIn(b"pop3front-maildir[", err)
        self.assertNotIn(PASSWORD.encode(), err)

    def test_pop3stls_injection_discarded(self):
        d = self.direct(**tls_env())
        self.assertEqual(d.line(), b"+OK \r\n")
        d.send("STLS\r\nUSER alice\r\n")        # one packet
        self.assertEqual(d.line(), b"+OK Begin TLS negotiation\r\n")
        d.start_tls()
        d.send("PASS " + PASSWORD + "\r\nQUIT\r\n")
        self.assertEqual(d.line(), b"-ERR Send USER first\r\n")   # USER was not run
        self.assertEqual(d.line(), b"+OK \r\n")
        rc, err = d.finish(self)
        self.assertEqual(rc, 0)
        self.assertIn(b"STLS: discarded 12 bytes pipelined before the handshake", err)
        self.assertNotIn(b"USER alice", err)

    def test_pop3stls_handshake_failure(self):
        d = self.direct(**tls_env())
        d.send("STLS\r\n")
        self.assertEqual(d.line(), b"+OK \r\n")
        self.assertEqual(d.line(), b"+OK Begin TLS negotiation\r\n")
        rc, err = d.bad_handshake(self, b"this is not a TLS client hello\r\n" * 4, 0)
        self.assertEqual(rc, 1)
        self.assertIn(b"TLS handshake failed: ", err)

    def test_pop3stls_exec_failure_inside_tls(self):
        # bob's home does not exist: the child's chdir fails after the fork
        d = self.direct_tls()
        d.send("USER bob\r\nPASS bobpw\r\n")
        self.assertEqual(d.line(), b"+OK \r\n")
        self.assertEqual(d.line(), b"-ERR Internal error\r\n")
        self.assertEqual(d.rest(), b"")
        rc, err = d.finish(self)
        self.assertEqual(rc, 1)
        # a missing program: the error comes from the child through the relay
        d = self.direct_tls(program=["/nonexistent/program"])
        d.send("USER alice\r\nPASS " + PASSWORD + "\r\n")
        self.assertEqual(d.line(), b"+OK \r\n")
        self.assertEqual(d.line(), b"-ERR Could not execute second stage\r\n")
        rc, err = d.finish(self)
        self.assertEqual(rc, 1)

    def test_pop3stls_show_ids_and_relay_process(self):
        d = self.direct_tls(program=[self.u.show, "x"])
        d.send("USER alice\r\nPASS " + PASSWORD + "\r\n")
        d.line()
        out = d.rest()
        rc, err = d.finish(self)
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith(b"+OK SHOW\n"), out)
        self.assertIn(f"ids {UID} {UID} {GID} {GID} groups={GID}".encode(), out)
        self.assertIn(b"env USER=alice\n", out)

    def test_pop3stls_idle_timeout(self):
        # the second stage waits forever; the relay's $TIMEOUT ends the session
        d = self.direct_tls(program=["/bin/sleep", "30"], TIMEOUT="1")
        d.send("USER alice\r\nPASS " + PASSWORD + "\r\n")
        self.assertEqual(d.line(), b"+OK \r\n")
        self.assertEqual(d.rest(), b"")
        rc, err = d.finish(self)
        self.assertIn(b"TLS relay: idle timeout", err)
        self.assertNotEqual(rc, 0)

    def test_pop3stls_auth_requires_tls(self):
        d = self.direct(AUTH_REQUIRES_TLS="1", CVM_SASL_PLAIN=PWFILE_CVM, **tls_env())
        d.send("CAPA\r\nUSER alice\r\nPASS x\r\nAUTH PLAIN AGFsaWNlAHg=\r\nSTLS\r\n")
        got = [d.line() for _ in range(11)]
        self.assertEqual(got, [b"+OK \r\n", b"+OK \r\n", b"PIPELINING\r\n", b"TOP\r\n", b"UIDL\r\n", b"STLS\r\n",
                               b".\r\n"] + [b"-ERR Authentication requires TLS (use STLS)\r\n"] * 3
                         + [b"+OK Begin TLS negotiation\r\n"])
        d.start_tls()
        d.send("CAPA\r\nUSER alice\r\nPASS " + PASSWORD + "\r\nQUIT\r\n")
        got = [d.line() for _ in range(9)]
        self.assertEqual(got, [b"+OK \r\n", b"SASL LOGIN PLAIN\r\n", b"PIPELINING\r\n", b"TOP\r\n", b"UIDL\r\n",
                               b"USER\r\n", b".\r\n", b"+OK \r\n", b"+OK \r\n"])
        self.assertTrue(d.line().startswith(b"+OK"))      # pop3front-maildir's QUIT
        rc, err = d.finish(self)
        self.assertEqual(rc, 0)
        # TLS not configured (here: the certificate is missing): fails closed
        d = self.direct(AUTH_REQUIRES_TLS="", TLS_CERTFILE=os.path.join(CERT["dir"], "missing.pem"))
        d.send("CAPA\r\nUSER alice\r\nPASS " + PASSWORD + "\r\nSTLS\r\nQUIT\r\n")
        self.assertEqual(d.rest(), b"+OK \r\n+OK \r\nPIPELINING\r\nTOP\r\nUIDL\r\n.\r\n"
                                   + b"-ERR Authentication requires TLS (use STLS)\r\n" * 2
                                   + b"-ERR Unimplemented\r\n+OK \r\n")
        rc, err = d.finish(self)
        self.assertEqual(rc, 0)


class Pop3StlsClients(Pop3StlsBase):
    def test_pop3stls_poplib_retr(self):
        with self.server(**tls_env()) as (port, srv):
            c = poplib.POP3("127.0.0.1", port, timeout=TIMEOUT)
            self.assertIn("STLS", c.capa())
            c.stls(context=client_context())
            self.assertNotIn("STLS", c.capa())
            c.user("alice")
            c.pass_(PASSWORD)
            msgs = self.messages()
            self.assertEqual(c.stat(), (2, sum(map(len, msgs))))
            got = []
            for i in (1, 2):
                resp, lines, octets = c.retr(i)
                got.append(b"\n".join(lines) + b"\n")
            # byte for byte; pop3front-maildir sends one extra CRLF (pop3.md)
            self.assertEqual(sorted(got), sorted(m + b"\n" for m in msgs))
            c.quit()
            log = srv.stderr.read()
        self.assertIn(b"TLS handshake: ", log)
        self.assertNotIn(b"AddressSanitizer", log)
        self.assertIn("999999999.M2P2.test:2,S", os.listdir(os.path.join(self.u.maildir, "cur")))

    def test_pop3stls_poplib_large_message_and_pipelining(self):
        # 3 MB through the relay to the client, many commands to the server
        big = b"".join(b"Line %07d ..... with a leading dot below\n.%d\n" % (i, i) for i in range(60000))
        name = os.path.join(self.u.maildir, "new", "1000000001.M3P3.test")
        with open(name, "wb") as f:
            f.write(b"Subject: big\n\n" + big)
        os.chown(name, UID, GID)
        with self.server(**tls_env()) as (port, srv):
            c = poplib.POP3("127.0.0.1", port, timeout=TIMEOUT)
            c.stls(context=client_context())
            c.user("alice")
            c.pass_(PASSWORD)
            count, size = c.stat()
            self.assertEqual(count, 3)
            found = None
            for i in range(1, 4):
                resp, lines, octets = c.retr(i)
                if b"Subject: big" in lines:
                    found = b"\n".join(lines) + b"\n"
            self.assertEqual(found, b"Subject: big\n\n" + big + b"\n")
            c._putcmd("\r\n".join(["NOOP"] * 2000))      # 2000 pipelined commands in one write
            for _ in range(2000):
                self.assertTrue(c._getresp().startswith(b"+OK"))
            c.quit()
            log = srv.stderr.read()
        self.assertNotIn(b"AddressSanitizer", log)

    def test_pop3stls_openssl_s_client(self):
        with self.server(**tls_env(TLS_PRIORITY="NORMAL:-VERS-TLS1.3")) as (port, srv):
            p = s_client("pop3", port, b"USER alice\r\nPASS " + PASSWORD.encode() + b"\r\nSTAT\r\nTOP 1 0\r\nQUIT\r\n")
            out = p.stdout
            log = srv.stderr.read()
        msgs = self.messages()
        self.assertIn(f"+OK 2 {sum(map(len, msgs))}\r\n".encode(), out, p.stderr)
        self.assertIn(b"Subject: ", out)
        self.assertTrue(out.endswith(b"+OK \r\n") or b"+OK" in out.splitlines()[-1], out)
        self.assertIn(b"TLS handshake: TLS1.2 ", log)
        self.assertNotIn(b"AddressSanitizer", log)


if __name__ == "__main__":
    unittest.main()
