"""Relay back ends smtp and lmtp against a scripted downstream (docs/relay.md).

The downstream is an SMTP/LMTP server written here, in a thread of the test
process, on a loopback port; each test sets its script (capabilities,
refusals at each stage, delays, a cut mid-data, per-recipient LMTP results)
and then checks mailfront's replies against what the downstream stored:
nothing may be acknowledged that the downstream did not take.
"""
import base64
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import TempDirTest, mailfront, assert_no_sanitizer_report, base_env, bin_path


def stop_process(p, timeout=20):
    """SIGTERM to the process group of p, SIGKILL after timeout; reaped."""
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


class Script:
    """What the downstream does; attributes are read per connection."""

    def __init__(self, **kw):
        self.greeting = "220 down.test ESMTP"
        self.caps = ["PIPELINING", "8BITMIME", "SIZE 100000000", "ENHANCEDSTATUSCODES"]
        self.replies = {}       # stage -> reply text ("MAIL", "RCPT <addr>", "DATA", "END", "XFORWARD", "BDAT")
        self.delay = {}         # stage -> seconds before the reply
        self.cut_after = None   # close the connection after this many body bytes
        self.lmtp_results = {}  # rcpt -> reply after data (LMTP)
        self.auth = None        # (user, password) to require AUTH PLAIN/LOGIN
        self.tls = None         # ssl.SSLContext offered with STARTTLS
        self.__dict__.update(kw)


class Downstream:
    """A threaded SMTP/LMTP server recording sessions and stored messages."""

    def __init__(self, lmtp=False):
        self.lmtp = lmtp
        self.script = Script()
        self.lock = threading.Lock()
        self.stored = []        # (mail_from, [rcpts], body bytes as sent after decoding)
        self.sessions = []      # list of command lists, one per connection
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def reset(self, **kw):
        with self.lock:
            self.script = Script(**kw)
            self.stored = []
            self.sessions = []

    def close(self):
        self.stop = True
        self.sock.close()

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        conn.settimeout(30)
        cmds = []
        with self.lock:
            self.sessions.append(cmds)
            sc = self.script
        f = conn.makefile("rb")
        try:
            self.converse(conn, f, sc, cmds)
        except (OSError, ValueError):
            pass
        finally:
            try:
                f.close()
                conn.close()
            except OSError:
                pass

    def reply(self, conn, sc, stage, default):
        d = sc.delay.get(stage)
        if d:
            time.sleep(d)
        text = sc.replies.get(stage, default)
        conn.sendall(text.encode() + b"\r\n")
        return text

    def converse(self, conn, f, sc, cmds):
        conn.sendall(sc.greeting.encode() + b"\r\n")
        if not sc.greeting.startswith("220"):
            return
        mail, rcpts, authed, chunks = None, [], sc.auth is None, []
        while True:
            line = f.readline(4096)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            cmds.append(cmd)
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "LHLO"):
                caps = ["down.test"] + sc.caps + (["STARTTLS"] if sc.tls and not isinstance(conn, ssl.SSLSocket) else [])
                conn.sendall("".join("250%s%s\r\n" % ("-" if i < len(caps) - 1 else " ", c)
                                     for i, c in enumerate(caps)).encode())
            elif verb == "HELO":
                conn.sendall(b"250 down.test\r\n")
            elif verb == "STARTTLS" and sc.tls:
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                conn = sc.tls.wrap_socket(conn, server_side=True)
                f = conn.makefile("rb")
                cmds.append("(TLS %s)" % conn.version())
            elif verb == "XCLIENT":
                self.reply(conn, sc, "XCLIENT", "220 down.test ESMTP")
            elif verb == "XFORWARD":
                self.reply(conn, sc, "XFORWARD", "250 2.0.0 Ok")
            elif verb == "AUTH":
                parts = cmd.split(" ")
                user = pw = None
                if parts[1].upper() == "PLAIN":
                    _, user, pw = base64.b64decode(parts[2]).decode().split("\0")
                else:
                    conn.sendall(b"334 VXNlcm5hbWU6\r\n")
                    user = base64.b64decode(f.readline().strip()).decode()
                    conn.sendall(b"334 UGFzc3dvcmQ6\r\n")
                    pw = base64.b64decode(f.readline().strip()).decode()
                if (user, pw) == sc.auth:
                    authed = True
                    conn.sendall(b"235 2.7.0 Authentication successful\r\n")
                else:
                    conn.sendall(b"535 5.7.8 Authentication failed\r\n")
            elif verb == "MAIL":
                if not authed:
                    conn.sendall(b"530 5.7.0 Authentication required\r\n")
                    continue
                t = self.reply(conn, sc, "MAIL", "250 2.1.0 Ok")
                if t.startswith("2"):
                    mail, rcpts = cmd, []
            elif verb == "RCPT":
                addr = cmd[cmd.index("<") + 1:cmd.index(">")]
                t = self.reply(conn, sc, "RCPT " + addr, sc.replies.get("RCPT", "250 2.1.5 Ok"))
                if t.startswith("421"):
                    return
                if t.startswith("2"):
                    rcpts.append(addr)
            elif verb == "RSET":
                mail, rcpts, chunks = None, [], []
                conn.sendall(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            elif verb == "DATA":
                t = self.reply(conn, sc, "DATA", "354 End data with <CR><LF>.<CR><LF>")
                if not t.startswith("354"):
                    continue
                body = self.read_dot(f, sc)
                if body is None:
                    return
                self.finish(conn, sc, mail, rcpts, body)
                mail, rcpts = None, []
            elif verb == "BDAT":
                parts = cmd.split(" ")
                n = int(parts[1])
                data = f.read(n)
                if len(data) != n:
                    return
                chunks.append(data)
                if len(parts) > 2 and parts[2].upper() == "LAST":
                    self.finish(conn, sc, mail, rcpts, b"".join(chunks))
                    mail, rcpts, chunks = None, [], []
                else:
                    self.reply(conn, sc, "BDAT", "250 2.0.0 %d octets received" % n)
            else:
                conn.sendall(b"502 5.5.2 Unknown command\r\n")

    def read_dot(self, f, sc):
        out = []
        got = 0
        while True:
            line = f.readline(1 << 20)
            if not line:
                return None
            got += len(line)
            if sc.cut_after is not None and got > sc.cut_after:
                return None
            if line == b".\r\n":
                return b"".join(out)
            if line.startswith(b"."):
                line = line[1:]
            out.append(line)

    def finish(self, conn, sc, mail, rcpts, body):
        if self.lmtp:
            for r in rcpts:
                t = sc.lmtp_results.get(r, "250 2.0.0 <%s> Saved" % r)
                if t.startswith("2"):
                    with self.lock:
                        self.stored.append((mail, [r], body))
                d = sc.delay.get("END")
                if d:
                    time.sleep(d)
                conn.sendall(t.encode() + b"\r\n")
            return
        t = sc.replies.get("END", "250 2.0.0 Ok: queued as ABC123")
        d = sc.delay.get("END")
        if d:
            time.sleep(d)
        if t.startswith("2"):
            with self.lock:
                self.stored.append((mail, list(rcpts), body))
        conn.sendall(t.encode() + b"\r\n")


SESSION = (b"EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
           b"RCPT TO:<e@f.example>\r\nDATA\r\nSubject: t\r\n\r\nline one\r\n..dotted\r\n.\r\nQUIT\r\n")
BODY = b"Subject: t\r\n\r\nline one\r\n.dotted\r\n"


def replies(p):
    return p.stdout.decode("utf-8", "replace").split("\r\n")


def codes(p):
    return [l[:3] for l in replies(p) if len(l) > 3 and l[3] == " "]


class RelayBase(TempDirTest):
    lmtp = False

    @classmethod
    def setUpClass(cls):
        cls.down = Downstream(lmtp=cls.lmtp)

    @classmethod
    def tearDownClass(cls):
        cls.down.close()

    def relay(self, data=SESSION, plugins=("accept",), backend=None, timeout=60, **env):
        settings = {"RELAY_HOST": "127.0.0.1", "RELAY_PORT": self.down.port, "RELAY_TIMEOUT": 5,
                    "RELAY_HELO": "front.test", "TCPREMOTEIP": "192.0.2.7", "TCPREMOTEHOST": "client.example"}
        settings.update(env)
        p = mailfront(["smtp", backend or ("lmtp" if self.lmtp else "smtp")] + list(plugins), data,
                      timeout=timeout, **settings)
        assert_no_sanitizer_report(self, p)
        return p


class SmtpRelayTest(RelayBase):
    def test_envelope_and_bytes_reach_the_next_hop(self):
        self.down.reset()
        p = self.relay()
        self.assertEqual(codes(p), ["220", "250", "250", "250", "250", "354", "250", "221"], p.stdout)
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        self.assertEqual(len(self.down.stored), 1)
        mail, rcpts, body = self.down.stored[0]
        self.assertEqual(mail, "MAIL FROM:<a@b.example>")
        self.assertEqual(rcpts, ["c@d.example", "e@f.example"])
        self.assertEqual(body, BODY)
        cmds = self.down.sessions[0]
        self.assertEqual(cmds[0], "EHLO front.test")
        self.assertEqual(cmds[-1], "QUIT")

    def test_refusals_at_each_stage_are_mapped(self):
        for stage, text in (("MAIL", "553 5.1.8 Sender domain does not exist"),
                            ("DATA", "554 5.5.1 No valid recipients"),
                            ("END", "552 5.3.4 Message too big for me"),
                            ("END", "451 4.3.0 Try again")):
            with self.subTest(stage=stage, text=text):
                self.down.reset(replies={stage: text})
                p = self.relay()
                self.assertIn(text, replies(p))
                self.assertEqual(self.down.stored, [])
                self.assertNotIn("250 2.0.0 Ok: queued as ABC123", replies(p))

    def test_per_recipient_refusal(self):
        self.down.reset(replies={"RCPT c@d.example": "550 5.1.1 <c@d.example>: Recipient address rejected: User unknown"})
        p = self.relay()
        r = replies(p)
        self.assertIn("550 5.1.1 <c@d.example>: Recipient address rejected: User unknown", r)
        self.assertEqual(codes(p), ["220", "250", "250", "550", "250", "354", "250", "221"], p.stdout)
        self.assertEqual(self.down.stored[0][1], ["e@f.example"])

    def test_no_plugin_acceptance_means_no_downstream_rcpt(self):
        # Open-relay guard: without a plugin accepting recipients, the next
        # hop is never asked, even though it accepts everything.
        self.down.reset()
        p = self.relay(plugins=("accept-sender",))
        self.assertEqual(codes(p)[3:5], ["550", "550"], p.stdout)
        self.assertEqual(self.down.stored, [])
        self.assertFalse(any(c.startswith("RCPT") for s in self.down.sessions for c in s))

    def test_multiline_and_missing_enhanced_codes(self):
        self.down.reset(replies={"MAIL": "550-first line\r\n550 second line"})
        p = self.relay()
        r = replies(p)
        self.assertIn("550-5.0.0 first line", r)
        self.assertIn("550 5.0.0 second line", r)

    def test_421_becomes_451_and_nothing_is_delivered(self):
        self.down.reset(replies={"RCPT": "421 4.3.2 Shutting down"})
        p = self.relay()
        self.assertIn("451 4.3.2 Shutting down", replies(p))
        self.assertNotIn("421", codes(p))
        self.assertEqual(self.down.stored, [])

    def test_cut_mid_data_is_a_temporary_failure(self):
        self.down.reset(cut_after=2000)
        body = b"".join(b"line %06d of the message\r\n" % i for i in range(5000))
        data = (b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n" + body + b".\r\nQUIT\r\n")
        p = self.relay(data)
        c = codes(p)
        self.assertEqual(c[4], "354")
        self.assertTrue(c[5].startswith("4"), p.stdout)
        self.assertNotIn("250", c[5:])
        self.assertEqual(self.down.stored, [])

    def test_slow_next_hop(self):
        self.down.reset(delay={"END": 1.5})
        p = self.relay(RELAY_TIMEOUT=10)
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        self.down.reset(delay={"END": 4})
        p = self.relay(RELAY_TIMEOUT=1)
        self.assertIn("451 4.4.2 Lost the connection to the next hop; try again later.", replies(p))
        self.assertIn(b"timeout reading from the next hop", p.stderr)

    def test_slow_greeting_times_out(self):
        self.down.reset(delay={"MAIL": 3})
        p = self.relay(RELAY_TIMEOUT=1)
        self.assertTrue(codes(p)[2].startswith("4"), p.stdout)

    def test_next_hop_down_then_fallback_host(self):
        dead = harness.free_port()
        self.down.reset()
        p = self.relay(RELAY_HOST="127.0.0.1:%d" % dead)
        self.assertIn("451 4.4.1 The next hop is not available; try again later.", replies(p))
        p = self.relay(RELAY_HOST="127.0.0.1:%d 127.0.0.1:%d" % (dead, self.down.port))
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        self.assertEqual(len(self.down.stored), 1)

    def test_host_names_are_resolved_with_a_deadline(self):
        self.down.reset()
        p = self.relay(RELAY_HOST="localhost:%d" % self.down.port)
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        t = time.time()
        p = self.relay(RELAY_HOST="no-such-host.invalid 127.0.0.1:%d" % self.down.port, RELAY_TIMEOUT=2)
        self.assertLess(time.time() - t, 15)
        self.assertIn(b"cannot resolve no-such-host.invalid", p.stderr)
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))

    def test_greeting_refusal_tries_next(self):
        self.down.reset(greeting="554 5.3.2 go away")
        p = self.relay()
        self.assertIn("451 4.4.1 The next hop is not available; try again later.", replies(p))
        self.assertIn(b"554 5.3.2 go away", p.stderr)

    def test_connection_reuse_with_rset(self):
        self.down.reset()
        one = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhello\r\n.\r\n"
        data = b"EHLO c\r\n" + one + b"MAIL FROM:<x@b.example>\r\nRCPT TO:<y@d.example>\r\nRSET\r\n" + one + b"QUIT\r\n"
        p = self.relay(data)
        self.assertEqual(len(self.down.stored), 2)
        self.assertEqual(len(self.down.sessions), 1)
        cmds = self.down.sessions[0]
        self.assertIn("RSET", cmds)
        self.assertEqual([c for c in cmds if c.startswith("MAIL")], ["MAIL FROM:<a@b.example>", "MAIL FROM:<x@b.example>", "MAIL FROM:<a@b.example>"])

    def test_params_passed_when_offered(self):
        self.down.reset(caps=["SIZE 1000", "8BITMIME", "SMTPUTF8", "DSN"])
        data = (b"EHLO c\r\nMAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS\r\n"
                b"RCPT TO:<c@d.example> NOTIFY=NEVER\r\nQUIT\r\n")
        self.relay(data, SMTP_SMTPUTF8=None)      # the front end offers SMTPUTF8 (issue 13's default)
        cmds = self.down.sessions[0]
        self.assertIn("MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS", cmds)
        self.assertIn("RCPT TO:<c@d.example> NOTIFY=NEVER", cmds)

    def test_params_dropped_or_refused_when_not_offered(self):
        self.down.reset(caps=[])
        p = self.relay(b"EHLO c\r\nMAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME\r\nRCPT TO:<c@d.example>\r\nQUIT\r\n")
        self.assertIn("MAIL FROM:<a@b.example>", self.down.sessions[0])
        p = self.relay(b"EHLO c\r\nMAIL FROM:<a@b.example> SMTPUTF8\r\nQUIT\r\n", SMTP_SMTPUTF8=None)
        self.assertIn("553 5.6.7 The next hop does not support SMTPUTF8.", replies(p))

    def test_xforward_when_offered(self):
        self.down.reset(caps=["XFORWARD NAME ADDR PROTO HELO SOURCE"])
        self.relay(TCPREMOTEIP="192.0.2.7", TCPREMOTEHOST="")
        xf = [c for c in self.down.sessions[0] if c.startswith("XFORWARD")]
        self.assertEqual(xf, ["XFORWARD NAME=[UNAVAILABLE] ADDR=192.0.2.7 PROTO=ESMTP HELO=client.example SOURCE=REMOTE"])
        self.assertLess(self.down.sessions[0].index(xf[0]), self.down.sessions[0].index("MAIL FROM:<a@b.example>"))
        # Pipelined with MAIL when PIPELINING is offered; a refusal is only logged.
        self.down.reset(caps=["PIPELINING", "XFORWARD NAME ADDR"], replies={"XFORWARD": "550 5.7.0 Not authorized"})
        p = self.relay()
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        self.assertIn(b"next hop refused XFORWARD: 5.7.0 Not authorized", p.stderr)
        self.down.reset(caps=[])
        self.relay()
        self.assertFalse(any(c.startswith("XFORWARD") for c in self.down.sessions[0]))

    def test_xclient_when_offered_once_per_identity(self):
        self.down.reset(caps=["XCLIENT NAME ADDR PORT PROTO HELO LOGIN"])
        one = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhello\r\n.\r\n"
        p = self.relay(b"EHLO client.example\r\n" + one + one + b"QUIT\r\n", TCPREMOTEPORT="4711")
        self.assertEqual(len(self.down.stored), 2)
        cmds = self.down.sessions[0]
        xc = [c for c in cmds if c.startswith("XCLIENT")]
        self.assertEqual(xc, ["XCLIENT NAME=client.example ADDR=192.0.2.7 PORT=4711 PROTO=ESMTP HELO=client.example LOGIN=[UNAVAILABLE]"])
        k = cmds.index(xc[0])
        self.assertEqual(cmds[k + 1], "EHLO client.example")
        self.assertEqual(cmds[k + 2], "MAIL FROM:<a@b.example>")
        self.down.reset(caps=["XCLIENT NAME ADDR"], replies={"XCLIENT": "550 5.7.0 Not authorized"})
        p = self.relay()
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        self.assertIn(b"next hop refused XCLIENT: 5.7.0 Not authorized", p.stderr)

    def test_unexpected_positive_reply(self):
        self.down.reset(replies={"MAIL": "354 what?"})
        p = self.relay()
        self.assertIn("451 4.4.2 Lost the connection to the next hop; try again later.", replies(p))
        self.assertEqual(self.down.stored, [])

    def test_chunking_downstream(self):
        self.down.reset(caps=["CHUNKING", "PIPELINING"])
        body = b"".join(b".line %06d\r\n" % i for i in range(20000))
        data = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n" + body.replace(b"\r\n.", b"\r\n..").replace(b".line 000000", b"..line 000000", 1) + b".\r\nQUIT\r\n"
        p = self.relay(data)
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        self.assertEqual(self.down.stored[0][2], body)
        bdat = [c for c in self.down.sessions[0] if c.startswith("BDAT")]
        self.assertGreater(len(bdat), 2)
        self.assertTrue(bdat[-1].endswith(" LAST"))
        self.assertFalse(any(c == "DATA" for c in self.down.sessions[0]))

    def test_chunking_refusal_mid_message(self):
        self.down.reset(caps=["CHUNKING"], replies={"BDAT": "552 5.3.4 Too much"})
        body = b"x" * 300000 + b"\r\n"
        data = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n" + body + b".\r\nQUIT\r\n"
        p = self.relay(data)
        self.assertIn("552 5.3.4 Too much", replies(p))

    def test_plugin_refusal_at_end_of_data_aborts_downstream(self):
        script = os.path.join(self.tmp, "end.lua")
        with open(script, "w") as f:
            f.write('function message_end(fd) return 554, "5.7.1 Refused by content filter" end\nreturn 0\n')
        for caps in ([], ["CHUNKING"]):
            with self.subTest(caps=caps):
                self.down.reset(caps=caps)
                data = SESSION.replace(b"QUIT\r\n", b"MAIL FROM:<z@b.example>\r\nRCPT TO:<c@d.example>\r\nQUIT\r\n")
                p = self.relay(data, plugins=("accept", "lua"), LUA_SCRIPT=script)
                self.assertIn("554 5.7.1 Refused by content filter", replies(p))
                self.assertEqual(self.down.stored, [])
                self.assertEqual(codes(p)[-3:], ["250", "250", "221"], p.stdout)

    def test_plugin_refusal_mid_data(self):
        self.down.reset()
        body = b"y" * 200000 + b"\r\n"
        data = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n" + body + b".\r\nQUIT\r\n"
        p = self.relay(data, plugins=("accept", "counters"), DATABYTES=10000)
        self.assertEqual(self.down.stored, [])
        self.assertTrue(codes(p)[-2].startswith("5"), p.stdout)

    def test_file_mode_when_a_plugin_needs_the_file(self):
        # clamav needs the message file: the body goes from that file at end.
        self.down.reset()
        p = self.relay(plugins=("accept", "clamav"), CLAMD_HOST="")
        if b"250 2.0.0 Ok: queued as ABC123" in p.stdout:
            self.assertEqual(self.down.stored[0][2], BODY)

    def test_auth_to_next_hop(self):
        self.down.reset(caps=["AUTH PLAIN LOGIN"], auth=("relayuser", "s3cret-pw"))
        p = self.relay(RELAY_AUTH_USER="relayuser", RELAY_AUTH_PASSWORD="s3cret-pw", RELAY_AUTH_INSECURE=1)
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        self.assertNotIn(b"s3cret-pw", p.stderr)
        self.assertNotIn(base64.b64encode(b"\0relayuser\0s3cret-pw"), p.stderr)
        self.down.reset(caps=["AUTH LOGIN"], auth=("relayuser", "s3cret-pw"))
        p = self.relay(RELAY_AUTH_USER="relayuser", RELAY_AUTH_PASSWORD="s3cret-pw", RELAY_AUTH_INSECURE=1)
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        self.down.reset(caps=["AUTH PLAIN"], auth=("relayuser", "other"))
        p = self.relay(RELAY_AUTH_USER="relayuser", RELAY_AUTH_PASSWORD="s3cret-pw", RELAY_AUTH_INSECURE=1)
        self.assertIn("451 4.4.1 The next hop is not available; try again later.", replies(p))
        self.assertNotIn(b"s3cret-pw", p.stderr)
        # Without TLS the credentials are not sent at all.
        self.down.reset(caps=["AUTH PLAIN"], auth=("relayuser", "s3cret-pw"))
        p = self.relay(RELAY_AUTH_USER="relayuser", RELAY_AUTH_PASSWORD="s3cret-pw")
        self.assertIn("451 4.4.1 The next hop is not available; try again later.", replies(p))
        self.assertFalse(any(c.startswith("AUTH") for c in self.down.sessions[0]))

    def test_not_configured(self):
        p = self.relay(RELAY_HOST=None)
        self.assertIn("451 4.3.5 The relay back end is not configured.", replies(p))

    def test_qmqp_inbound(self):
        self.down.reset()
        def ns(b):
            return b"%d:%s," % (len(b), b)
        msg = ns(ns(b"Subject: q\n\nhello\n") + ns(b"a@b.example") + ns(b"c@d.example"))
        settings = {"RELAY_HOST": "127.0.0.1", "RELAY_PORT": self.down.port, "RELAY_TIMEOUT": 5}
        p = mailfront(["qmqp", "smtp", "accept"], msg, **settings)
        assert_no_sanitizer_report(self, p)
        self.assertTrue(p.stdout.startswith(b"K") or b":K" in p.stdout, p.stdout)
        self.assertEqual(self.down.stored[0][2], b"Subject: q\r\n\r\nhello\r\n")

    def test_50_mib_with_flat_memory(self):
        for caps in ([], ["CHUNKING"]):
            with self.subTest(caps=caps):
                self.fifty_mib(caps)

    def fifty_mib(self, caps):
        # Peak RSS is the process's own VmHWM, read after the message is
        # acknowledged and before QUIT (ru_maxrss would include the memory
        # of the Python process that forked it).
        self.down.reset(caps=caps)
        n = 50 * 1024 * 1024
        line = b"x" * 76 + b"\r\n"
        head = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
        env = base_env(RELAY_HOST="127.0.0.1", RELAY_PORT=self.down.port, RELAY_TIMEOUT=30)
        p = subprocess.Popen([bin_path("mailfront"), "smtp", "smtp", "accept"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            lines = []

            def read_replies():
                for l in p.stdout:
                    lines.append(l)
            reader = threading.Thread(target=read_replies, daemon=True)
            reader.start()
            p.stdin.write(head)
            block = line * (65536 // len(line))
            sent = 0
            while sent < n:
                p.stdin.write(block)
                sent += len(block)
            p.stdin.write(b".\r\n")
            p.stdin.flush()
            end = time.time() + 120
            while not any(l.startswith(b"250 2.0.0 Ok") for l in lines) and time.time() < end:
                time.sleep(0.05)
            with open("/proc/%d/status" % p.pid) as f:
                hwm = [int(l.split()[1]) for l in f if l.startswith("VmHWM:")][0]
            p.stdin.write(b"QUIT\r\n")
            p.stdin.close()
            p.wait(timeout=30)
            reader.join(30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertIn(b"250 2.0.0 Ok: queued as ABC123\r\n", lines)
        self.assertEqual(len(self.down.stored[0][2]), sent)
        if not harness.SANITIZED:
            self.assertLess(hwm, 16 * 1024, "peak RSS %d KiB" % hwm)


class TlsRelayTest(RelayBase):
    """STARTTLS to the next hop: verification against a CA file and name,
    SHA-256 pins of the certificate or its public key, may/encrypt."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certdir = tempfile.mkdtemp(prefix="mftest.relaytls.")
        cls.cert, cls.key = os.path.join(cls.certdir, "cert.pem"), os.path.join(cls.certdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", cls.key, "-out", cls.cert, "-days", "2", "-subj", "/CN=mx.test",
                        "-addext", "subjectAltName=DNS:mx.test,IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        cls.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cls.ctx.load_cert_chain(cls.cert, cls.key)
        with open(cls.cert) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        cls.cert_pin = hashlib.sha256(der).hexdigest()
        pub = subprocess.run(["openssl", "x509", "-in", cls.cert, "-pubkey", "-noout"], check=True,
                             capture_output=True, timeout=60).stdout
        spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, check=True,
                              capture_output=True, timeout=60).stdout
        cls.key_pin = hashlib.sha256(spki).hexdigest()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.certdir, True)

    def delivered(self, p):
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        self.assertEqual(len(self.down.stored), 1)
        self.assertTrue(any(c.startswith("(TLS TLSv1.") for c in self.down.sessions[0]), self.down.sessions[0])
        self.assertIn(b"relay: TLS to 127.0.0.1:", p.stderr)

    def refused(self, p):
        self.assertIn("451 4.4.1 The next hop is not available; try again later.", replies(p))
        self.assertEqual(self.down.stored, [])
        self.assertFalse(any(c.startswith("MAIL") for s in self.down.sessions for c in s))

    def test_verify_against_ca_and_name(self):
        self.down.reset(tls=self.ctx)
        self.delivered(self.relay(RELAY_TLS="verify", RELAY_TLS_CAFILE=self.cert, RELAY_TLS_NAME="mx.test"))
        self.down.reset(tls=self.ctx)
        self.delivered(self.relay(RELAY_TLS="verify", RELAY_TLS_CAFILE=self.cert))   # IP SAN 127.0.0.1
        self.down.reset(tls=self.ctx)
        p = self.relay(RELAY_TLS="verify", RELAY_TLS_CAFILE=self.cert, RELAY_TLS_NAME="other.test")
        self.refused(p)
        self.assertIn(b"TLS certificate verification failed", p.stderr)
        self.down.reset(tls=self.ctx)
        self.refused(self.relay(RELAY_TLS="verify"))          # self-signed: not in the system store

    def test_pins(self):
        for pin in (self.cert_pin, self.key_pin.upper(), ":".join(self.key_pin[i:i + 2] for i in range(0, 64, 2)),
                    "00" * 32 + "," + self.cert_pin):
            with self.subTest(pin=pin):
                self.down.reset(tls=self.ctx)
                self.delivered(self.relay(RELAY_TLS_PIN=pin))
        self.down.reset(tls=self.ctx)
        p = self.relay(RELAY_TLS_PIN="ab" * 32)
        self.refused(p)
        self.assertIn(b"matches no pin", p.stderr)

    def test_may_and_encrypt(self):
        self.down.reset(tls=self.ctx)
        self.delivered(self.relay(RELAY_TLS="may"))
        self.down.reset()
        p = self.relay(RELAY_TLS="may")
        self.assertIn("250 2.0.0 Ok: queued as ABC123", replies(p))
        self.down.reset()
        p = self.relay(RELAY_TLS="encrypt")
        self.refused(p)
        self.assertIn(b"next hop does not offer STARTTLS", p.stderr)

    def test_auth_over_tls(self):
        self.down.reset(tls=self.ctx, caps=["AUTH PLAIN"], auth=("u1", "pw-over-tls"))
        p = self.relay(RELAY_TLS="encrypt", RELAY_AUTH_USER="u1", RELAY_AUTH_PASSWORD="pw-over-tls")
        self.delivered(p)
        self.assertNotIn(b"pw-over-tls", p.stderr)

    def test_bad_tls_setting(self):
        p = self.relay(RELAY_TLS="sometimes")
        self.assertIn("451 4.3.5 The relay back end is not configured.", replies(p))


class LmtpRelayTest(RelayBase):
    lmtp = True

    def test_lhlo_and_all_delivered(self):
        self.down.reset()
        p = self.relay()
        self.assertIn("250 2.0.0 <c@d.example> Saved", replies(p))
        self.assertTrue(self.down.sessions[0][0].startswith("LHLO "))
        self.assertEqual(len(self.down.stored), 2)

    def test_all_failed_gives_the_failure(self):
        self.down.reset(lmtp_results={"c@d.example": "552 5.2.2 Mailbox full", "e@f.example": "550 5.1.1 No such user"})
        p = self.relay()
        self.assertIn("552 5.2.2 Mailbox full", replies(p))
        self.down.reset(lmtp_results={"c@d.example": "552 5.2.2 Mailbox full", "e@f.example": "452 4.2.2 Over quota, later"})
        p = self.relay()
        self.assertIn("452 4.2.2 Over quota, later", replies(p))
        self.assertEqual(self.down.stored, [])

    def test_mixed_results_are_a_temporary_failure(self):
        self.down.reset(lmtp_results={"e@f.example": "550 5.1.1 No such user"})
        p = self.relay()
        self.assertIn("451 4.3.0 Delivered to some recipients but not all; try again later.", replies(p))
        err = p.stderr
        self.assertIn(b"rcpt=<c@d.example> reply=250", err)
        self.assertIn(b"rcpt=<e@f.example> reply=550", err)

    def test_rcpt_refusal_in_step(self):
        self.down.reset(replies={"RCPT e@f.example": "550 5.1.1 <e@f.example> User doesn't exist"})
        p = self.relay()
        self.assertIn("550 5.1.1 <e@f.example> User doesn't exist", replies(p))
        self.assertIn("250 2.0.0 <c@d.example> Saved", replies(p))
        self.assertEqual([s[1] for s in self.down.stored], [["c@d.example"]])

    def test_cut_between_lmtp_replies(self):
        self.down.reset(cut_after=10)
        p = self.relay()
        self.assertTrue(codes(p)[-2].startswith("4"), p.stdout)

    def test_unix_socket(self):
        path = os.path.join(self.tmp, "lmtp.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(20)
        got = []

        def serve():
            c, _ = srv.accept()
            f = c.makefile("rb")
            c.sendall(b"220 sock LMTP\r\n")
            while True:
                l = f.readline()
                if not l:
                    break
                got.append(l)
                v = l[:4].upper()
                if v == b"LHLO":
                    c.sendall(b"250-sock\r\n250 PIPELINING\r\n")
                elif v == b"DATA":
                    c.sendall(b"354 go\r\n")
                    while f.readline() != b".\r\n":
                        pass
                    c.sendall(b"250 2.0.0 one\r\n250 2.0.0 two\r\n")
                elif v == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
                else:
                    c.sendall(b"250 ok\r\n")
            c.close()
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        p = self.relay(RELAY_SOCKET=path, RELAY_HOST=None)
        t.join(20)
        srv.close()
        self.assertIn("250 2.0.0 one", replies(p))
        self.assertIn(b"LHLO front.test\r\n", got)


if __name__ == "__main__":
    unittest.main()
