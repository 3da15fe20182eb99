"""plugin-clamav (plugins.md "clamav", compat-checklist 51) against a real
clamd started here: a temporary DatabaseDirectory holding only an EICAR
body signature made by the test (no freshclam, no network), TCPSocket on a
free 127.0.0.1 port and a LocalSocket in the temp dir.  clamd is started
once for the class and stopped by pid.  Also: clamd down, a scanner that
never answers (a local socket server), no host, unresolvable host, the
size limit, a multi-chunk message, and the 2.12 oracle's replies.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import mailfront, assert_no_sanitizer_report

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CLAMD = shutil.which("clamd") or ("/usr/sbin/clamd" if os.path.exists("/usr/sbin/clamd") else None)


def session(body):
    return (b"HELO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
            b"DATA\r\nSubject: scan me\r\n\r\n" + body + b"\r\n.\r\nQUIT\r\n")


def replies(p):
    return [l for l in p.stdout.decode("utf-8", "replace").split("\r\n") if l]


def end_of_data(p):
    """The reply to the end of DATA (the one before 221)."""
    r = replies(p)
    return r[-2] if len(r) >= 2 else ""


class SilentServer:
    """A 127.0.0.1 listener that accepts and reads but never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


class ScriptedClamd:
    """A 127.0.0.1 listener for one INSTREAM exchange at a time: records
    the command and the chunk sizes and payload, then sends `reply`."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.sessions = []
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def read_exact(self, c, n):
        b = b""
        while len(b) < n:
            x = c.recv(n - len(b))
            if not x:
                raise EOFError
            b += x
        return b

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            c.settimeout(5)
            rec = {"cmd": b"", "chunks": [], "data": b""}
            self.sessions.append(rec)   # filled in place: complete before the reply is sent
            try:
                rec["cmd"] = self.read_exact(c, 10)
                while True:
                    n = int.from_bytes(self.read_exact(c, 4), "big")
                    if n == 0:
                        break
                    rec["chunks"].append(n)
                    rec["data"] += self.read_exact(c, n)
                c.sendall(self.reply)
            except (OSError, EOFError):
                pass
            c.close()

    def close(self):
        self.stop = True
        self.t.join(3)
        self.sock.close()


class ClamavProtocolTest(unittest.TestCase):
    """The INSTREAM bytes and reply parsing, against a scripted server."""

    def scan(self, body, reply):
        srv = ScriptedClamd(reply)
        self.addCleanup(srv.close)
        p = mailfront(["smtp", "echo", "clamav", "accept"], session(body), CLAMAV_HOST="127.0.0.1",
                      CLAMAV_PORT=srv.port)
        assert_no_sanitizer_report(self, p)
        return p, srv

    def test_clamav_instream_bytes_and_chunks(self):
        body = (b"z" * 98 + b"\r\n") * 3000               # ~300 KB
        p, srv = self.scan(body, b"stream: OK\n")
        rec = srv.sessions[0]
        self.assertEqual(rec["cmd"], b"nINSTREAM\n")
        self.assertEqual(rec["data"], b"Subject: scan me\n\n" + body.replace(b"\r\n", b"\n") + b"\n")
        self.assertTrue(len(rec["chunks"]) > 1 and max(rec["chunks"]) <= 65536, rec["chunks"])
        self.assertTrue(end_of_data(p).startswith("250 "), replies(p))

    def test_clamav_reply_trailing_space_and_text(self):
        p, srv = self.scan(b"x", b"stream: Some.Virus FOUND \t\n")
        self.assertEqual(end_of_data(p), "554 5.7.0 Virus scan failed: Some.Virus FOUND")

    def test_clamav_reply_without_stream_prefix(self):
        p, srv = self.scan(b"x", b"INSTREAM size limit exceeded. ERROR\n")
        self.assertEqual(end_of_data(p), "451 4.3.0 Could not virus scan message")

    def test_clamav_reply_without_line_end(self):
        p, srv = self.scan(b"x", b"stream: OK")
        self.assertEqual(end_of_data(p), "451 4.3.0 Could not virus scan message")


@unittest.skipUnless(CLAMD, "clamd (clamav-daemon) not installed")
class ClamavTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mfclamd.")
        db = os.path.join(cls.dir, "db")
        os.mkdir(db)
        with open(os.path.join(db, "eicar.ndb"), "w") as f:
            f.write("Eicar-Test-Signature:0:*:%s\n" % EICAR.hex())
        cls.port = harness.free_port()
        cls.sockpath = os.path.join(cls.dir, "clamd.sock")
        conf = os.path.join(cls.dir, "clamd.conf")
        with open(conf, "w") as f:
            f.write("DatabaseDirectory %s\nLocalSocket %s\nTCPSocket %d\nTCPAddr 127.0.0.1\n"
                    "Foreground yes\nLogFile %s\nBytecode no\nMaxThreads 4\n"
                    % (db, cls.sockpath, cls.port, os.path.join(cls.dir, "clamd.log")))
        cls.clamd = subprocess.Popen([CLAMD, "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            harness.wait_port(cls.port, timeout=60)
            end = time.time() + 10
            while not os.path.exists(cls.sockpath) and time.time() < end:
                time.sleep(0.05)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.clamd.poll() is None:
            cls.clamd.send_signal(signal.SIGTERM)
            try:
                cls.clamd.wait(10)
            except subprocess.TimeoutExpired:
                cls.clamd.kill()
                cls.clamd.wait()
        shutil.rmtree(cls.dir, True)

    def scan(self, body, **env):
        settings = {"CLAMAV_HOST": "127.0.0.1", "CLAMAV_PORT": self.port}
        settings.update(env)
        p = mailfront(["smtp", "echo", "clamav", "accept"], session(body), **settings)
        assert_no_sanitizer_report(self, p)
        return p

    def assertVirus(self, p):
        r = end_of_data(p)
        self.assertTrue(r.startswith("554 5.7.0 Virus scan failed: Eicar-Test-Signature") and r.endswith(" FOUND"), r)

    def test_clamav_clean_message_passes(self):
        p = self.scan(b"just a friendly note")
        self.assertTrue(end_of_data(p).startswith("250 "), replies(p))

    def test_clamav_eicar_rejected_tcp(self):
        self.assertVirus(self.scan(EICAR))

    def test_clamav_clamd_aliases(self):
        p = self.scan(EICAR, CLAMAV_HOST=None, CLAMAV_PORT=None, CLAMD_HOST="127.0.0.1", CLAMD_PORT=self.port)
        self.assertVirus(p)

    def test_clamav_local_socket(self):
        self.assertVirus(self.scan(EICAR, CLAMAV_HOST=self.sockpath))
        p = self.scan(b"clean", CLAMAV_HOST=self.sockpath)
        self.assertTrue(end_of_data(p).startswith("250 "), replies(p))

    def test_clamav_large_message_streamed_in_chunks(self):
        filler = (b"x" * 76 + b"\r\n") * 40000          # ~3 MB, many 64 KiB chunks
        self.assertVirus(self.scan(filler + EICAR))
        p = self.scan(filler + b"the end")
        self.assertTrue(end_of_data(p).startswith("250 "), replies(p))

    def test_clamav_maxsize_skips(self):
        p = self.scan(EICAR, CLAMAV_MAXSIZE=10)
        self.assertTrue(end_of_data(p).startswith("250 "), replies(p))
        self.assertIn(b"ClamAV scanning skipped: message larger than maximum", p.stderr)

    def test_clamav_no_host(self):
        p = self.scan(b"clean", CLAMAV_HOST=None)
        self.assertEqual(end_of_data(p), "451 4.3.0 Could not virus scan message")

    def test_clamav_unresolvable_host(self):
        p = self.scan(b"clean", CLAMAV_HOST="nonexistent.invalid")
        self.assertEqual(end_of_data(p), "451 4.3.0 Could not resolve virus scanner hostname")

    def test_clamav_down(self):
        p = self.scan(EICAR, CLAMAV_PORT=harness.free_port())
        self.assertEqual(end_of_data(p), "451 4.3.0 Could not virus scan message")
        p = self.scan(EICAR, CLAMAV_HOST=os.path.join(self.dir, "no-such.sock"))
        self.assertEqual(end_of_data(p), "451 4.3.0 Could not virus scan message")

    def test_clamav_scanner_never_answers(self):
        srv = SilentServer()
        try:
            p = self.scan(b"clean", CLAMAV_PORT=srv.port, CLAMAV_TIMEOUT=300)
        finally:
            srv.close()
        self.assertEqual(end_of_data(p), "451 4.3.0 Could not virus scan message")

    @unittest.skipUnless(harness.reference_available() and os.path.exists("/usr/lib/mailfront/plugin-clamav.so"),
                         "reference mailfront not installed")
    def test_clamav_same_replies_as_reference(self):
        down = harness.free_port()
        for body, port, host in ((b"clean", self.port, "127.0.0.1"), (EICAR, self.port, "127.0.0.1"),
                                 (EICAR, down, "127.0.0.1"), (b"x", self.port, None)):
            env = harness.base_env(CLAMAV_HOST=host, CLAMAV_PORT=port, MODULE_PATH="/usr/lib/mailfront")
            ref = harness.run([harness.REFERENCE, "smtp", "echo", "clamav", "accept"], session(body), env)
            ours = self.scan(body, CLAMAV_HOST=host, CLAMAV_PORT=port)
            self.assertEqual(end_of_data(ours), end_of_data(ref), body)


if __name__ == "__main__":
    unittest.main()
