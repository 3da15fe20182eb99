"""imapfront-auth STARTTLS (RFC 3501 6.2.1, RFC 2595; beyond the original):
CAPABILITY before and after, the handshake through our GnuTLS layer, the
login inside TLS that forks the IMAP server onto a socketpair and relays it
(src/tls/tlsrelay.c), the injection case (CVE-2011-0411), TLS not
configured, $AUTH_REQUIRES_TLS (LOGINDISABLED).

Real clients: Python's imaplib starttls() and ssl sockets, openssl s_client
-starttls imap, through tcpserver on 127.0.0.1 or directly on a socketpair
(exit statuses and logs); real CVM (cvm-pwfile); Dovecot's imap binary
pre-authenticated as the second stage, or the ISHOW script.  Needs root.
Docs: docs/tls.md "POP3 and IMAP".
"""
import imaplib
import os
import unittest

from harness import bin_path, tcpserver
from authtest import (TlsAuthTest, PWFILE_CVM, PASSWORD, UID, GID, TIMEOUT, client_context, drop_cert,
                      make_cert, s_client, tls_env, Direct, ISHOW, DOVECOT_CONF, DOVECOT_IMAP, wait_log)

IMAP = bin_path("imapfront-auth")
CAPA = b"* CAPABILITY IMAP4rev1"


def setUpModule():
    make_cert()


def tearDownModule():
    drop_cert()


class ImapStarttlsBase(TlsAuthTest):
    def setUp(self):
        super().setUp()
        self.ishow = self.u._script("ishow.sh", ISHOW)
        self.conf = self.u._script("dovecot.conf", DOVECOT_CONF)
        os.chmod(self.conf, 0o644)

    def direct(self, program=None, **env):
        env.setdefault("CVM_SASL_PLAIN", PWFILE_CVM)
        return Direct([IMAP] + (program or [self.ishow]), self.u.env(**env))

    def handshake(self, d):
        self.assertEqual(d.line(), b"* OK imapfront ready.\r\n")
        d.send("t STARTTLS\r\n")
        self.assertEqual(d.line(), b"t OK Begin TLS negotiation now\r\n")
        d.start_tls()


class ImapStarttlsProtocol(ImapStarttlsBase):
    def test_imapstarttls_not_configured(self):
        for env in ({}, {"TLS_CERTFILE": ""}):
            with self.subTest(env=env):
                d = self.direct(**env)
                d.send("a CAPABILITY\r\nb STARTTLS\r\nc STARTTLS x\r\nd LOGOUT\r\n")
                out = d.rest()
                rc, err = d.finish(self)
                self.assertEqual(rc, 0)
                self.assertEqual(out, b"* OK imapfront ready.\r\n* CAPABILITY IMAP4rev1\r\na OK CAPABILITY completed\r\n"
                                      b"b BAD Unimplemented command\r\nc BAD Unimplemented command\r\n"
                                      b"* BYE Logging out\r\nd OK LOGOUT completed\r\n")

    def test_imapstarttls_capability_before_after_and_login(self):
        d = self.direct(program=[self.ishow, "arg"], **tls_env(IMAP_CAPABILITY="IMAP4rev1 AUTH=PLAIN"))
        self.assertEqual(d.line(), b"* OK imapfront ready.\r\n")
        d.send("a CAPABILITY\r\nb STARTTLS x\r\n")
        self.assertEqual(d.line(), b"* CAPABILITY IMAP4rev1 AUTH=PLAIN STARTTLS\r\n")
        self.assertEqual(d.line(), b"a OK CAPABILITY completed\r\n")
        self.assertEqual(d.line(), b"b BAD Syntax error: command requires no arguments\r\n")
        d.send("t STARTTLS\r\n")
        self.assertEqual(d.line(), b"t OK Begin TLS negotiation now\r\n")
        d.start_tls()
        d.send("c CAPABILITY\r\nd STARTTLS\r\ne LOGIN alice nope\r\n")
        self.assertEqual(d.line(), b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
        self.assertEqual(d.line(), b"c OK CAPABILITY completed\r\n")
        self.assertEqual(d.line(), b"d BAD TLS already active\r\n")
        self.assertEqual(d.line(), b"e NO LOGIN failed\r\n")
        d.send("f LOGIN alice \"" + PASSWORD + "\"\r\n")
        out = d.rest()
        rc, err = d.finish(self)
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith(b"f OK SHOW\n+OK SHOW\n"), out)
        self.assertIn(f"ids {UID} {UID} {GID} {GID} groups={GID}".encode(), out)
        self.assertIn(b"env IMAPLOGINTAG=f\n", out)
        self.assertIn(b"args arg\n", out)
        self.assertIn(b"TLS handshake: TLS1.3 ", err)
        self.assertNotIn(PASSWORD.encode(), err)

    def test_imapstarttls_injection_discarded(self):
        d = self.direct(**tls_env())
        self.assertEqual(d.line(), b"* OK imapfront ready.\r\n")
        d.send("t STARTTLS\r\nx LOGIN alice \"" + PASSWORD + "\"\r\n")      # one packet
        self.assertEqual(d.line(), b"t OK Begin TLS negotiation now\r\n")
        d.start_tls()
        d.send("y NOOP\r\nz LOGOUT\r\n")
        self.assertEqual(d.rest(), b"y OK NOOP completed\r\n* BYE Logging out\r\nz OK LOGOUT completed\r\n")
        rc, err = d.finish(self)
        self.assertEqual(rc, 0)
        self.assertIn(b"STARTTLS: discarded %d bytes pipelined before the handshake" % (len(PASSWORD) + 18), err)
        self.assertNotIn(b"SHOW", err)

    def test_imapstarttls_handshake_failure(self):
        d = self.direct(**tls_env())
        d.send("t STARTTLS\r\n")
        rc, err = d.bad_handshake(self, b"garbage, not a client hello\r\n" * 4, 2)
        self.assertEqual(rc, 1)
        self.assertIn(b"TLS handshake failed: ", err)

    def test_imapstarttls_exec_failure_inside_tls(self):
        d = self.direct(program=["/nonexistent/imapd"], **tls_env())
        self.handshake(d)
        d.send("a LOGIN alice \"" + PASSWORD + "\"\r\n")
        self.assertEqual(d.rest(), b"a NO Could not execute second stage\r\n")
        rc, err = d.finish(self)
        self.assertEqual(rc, 1)

    def test_imapstarttls_auth_requires_tls(self):
        d = self.direct(AUTH_REQUIRES_TLS="1", **tls_env())
        self.assertEqual(d.line(), b"* OK imapfront ready.\r\n")
        d.send("a CAPABILITY\r\nb LOGIN alice x\r\nc AUTHENTICATE PLAIN AGFsaWNlAHg=\r\nt STARTTLS\r\n")
        self.assertEqual([d.line() for _ in range(5)], [
            b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n", b"a OK CAPABILITY completed\r\n",
            b"b NO [PRIVACYREQUIRED] Authentication requires TLS (use STARTTLS)\r\n",
            b"c NO [PRIVACYREQUIRED] Authentication requires TLS (use STARTTLS)\r\n",
            b"t OK Begin TLS negotiation now\r\n"])
        d.start_tls()
        d.send("d CAPABILITY\r\ne AUTHENTICATE PLAIN AGFsaWNlAHM=\r\n")
        self.assertEqual([d.line() for _ in range(3)], [
            b"* CAPABILITY IMAP4rev1\r\n", b"d OK CAPABILITY completed\r\n",
            b"e NO AUTHENTICATE failed: Authentication failed.\r\n"])
        d.send("f LOGIN alice \"" + PASSWORD + "\"\r\n")
        self.assertTrue(d.rest().startswith(b"f OK SHOW\n"))
        rc, err = d.finish(self)
        self.assertEqual(rc, 0)
        # TLS not configured: fails closed
        d = self.direct(AUTH_REQUIRES_TLS="1")
        d.send("a CAPABILITY\r\nb LOGIN alice \"" + PASSWORD + "\"\r\nc LOGOUT\r\n")
        self.assertEqual(d.rest(), b"* OK imapfront ready.\r\n* CAPABILITY IMAP4rev1 LOGINDISABLED\r\n"
                                   b"a OK CAPABILITY completed\r\n"
                                   b"b NO [PRIVACYREQUIRED] Authentication requires TLS (use STARTTLS)\r\n"
                                   b"* BYE Logging out\r\nc OK LOGOUT completed\r\n")
        rc, err = d.finish(self)
        self.assertEqual(rc, 0)


@unittest.skipUnless(os.path.exists(DOVECOT_IMAP), "Dovecot imap (dovecot-imapd) not installed")
class ImapStarttlsDovecot(ImapStarttlsBase):
    def server(self, **env):
        return tcpserver([IMAP, DOVECOT_IMAP, "-c", self.conf],
                         env=self.u.env(CVM_SASL_PLAIN=PWFILE_CVM, **tls_env(**env)))

    def test_imapstarttls_imaplib_dovecot(self):
        with self.server() as (port, srv):
            c = imaplib.IMAP4("127.0.0.1", port, timeout=TIMEOUT)
            self.assertIn("STARTTLS", c.capabilities)
            typ, data = c.starttls(ssl_context=client_context())
            self.assertEqual(typ, "OK")
            self.assertNotIn("STARTTLS", c.capabilities)     # imaplib re-asked
            with self.assertRaises(imaplib.IMAP4.error):
                c.login("alice", "wrong")
            typ, data = c.login("alice", PASSWORD)
            self.assertEqual(typ, "OK")
            self.assertIn(b"Logged in", data[0])
            typ, data = c.select("INBOX")
            self.assertEqual((typ, data), ("OK", [b"2"]))
            typ, data = c.fetch("1:2", "(BODY.PEEK[])")
            bodies = sorted(part[1] for part in data if isinstance(part, tuple))
            files = [m.replace(b"\n", b"\r\n") for m in self.u.messages()]
            self.assertEqual(bodies, sorted(files))             # through the relay, byte for byte
            c.logout()
            log = wait_log(srv, b"imap(alice)")
        self.assertIn(b"TLS handshake: ", log)
        self.assertIn(b"imap(alice)", log)
        self.assertNotIn(b"AddressSanitizer", log)

    def test_imapstarttls_imaplib_large_append_dovecot(self):
        # 2 MB from the client through the relay into Dovecot, and back
        msg = b"Subject: big\r\n\r\n" + b"".join(b"line %06d of the appended message\r\n" % i for i in range(60000))
        with self.server() as (port, srv):
            c = imaplib.IMAP4("127.0.0.1", port, timeout=TIMEOUT)
            c.starttls(ssl_context=client_context())
            c.login("alice", PASSWORD)
            typ, data = c.append("INBOX", None, None, msg)
            self.assertEqual(typ, "OK", data)
            typ, data = c.select("INBOX")
            self.assertEqual(data, [b"3"])
            typ, data = c.fetch("3", "(BODY.PEEK[])")
            self.assertEqual(data[0][1], msg)
            c.logout()
            log = wait_log(srv, b"imap(alice)")
        self.assertNotIn(b"AddressSanitizer", log)

    def test_imapstarttls_openssl_s_client_dovecot(self):
        with self.server(TLS_PRIORITY="NORMAL:-VERS-TLS1.3") as (port, srv):
            p = s_client("imap", port, b"a LOGIN alice \"" + PASSWORD.encode() + b"\"\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
            out = p.stdout
            log = wait_log(srv, b"imap(alice)")
        self.assertIn(b"a OK ", out, p.stderr)
        self.assertIn(b"* 2 EXISTS", out)
        self.assertIn(b"b OK ", out)
        self.assertIn(b"c OK ", out)
        self.assertIn(b"TLS handshake: TLS1.2 ", log)
        self.assertNotIn(b"AddressSanitizer", log)


if __name__ == "__main__":
    unittest.main()
