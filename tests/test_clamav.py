"""plugin-clamav (plugins.md "clamav", compat-checklist 51) against a real
clamd started here: a temporary DatabaseDirectory holding only an EICAR
body signature made by the test (no freshclam, no network), TCPSocket on a
free 127.0.0.1 port and a LocalSocket in the temp dir.  clamd is started
once for the class and stopped by pid.  Also: clamd down, a scanner that
never answers (a local socket server), no host, unresolvable host, the
size limit, a multi-chunk message, and the 2.12 oracle's replies.
"""
import os
import unittest

import harness
import servers
from harness import mailfront, assert_no_sanitizer_report, replies, end_of_data

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def session(body):
    return (b"HELO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
            b"DATA\r\nSubject: scan me\r\n\r\n" + body + b"\r\n.\r\nQUIT\r\n")


class ScriptedClamd(servers.ScriptedServer):
    """One INSTREAM exchange at a time: records the command and the chunk
    sizes and payload in self.sessions, then sends `reply`."""

    def __init__(self, reply):
        self.sessions = []
        super().__init__(reply)

    def exchange(self, c):
        rec = {"cmd": b"", "chunks": [], "data": b""}
        self.sessions.append(rec)   # filled in place: complete before the reply is sent
        try:
            rec["cmd"] = servers.read_exact(c, 10)
            while True:
                n = int.from_bytes(servers.read_exact(c, 4), "big")
                if n == 0:
                    break
                rec["chunks"].append(n)
                rec["data"] += servers.read_exact(c, n)
            c.sendall(self.reply)
        except (OSError, EOFError):
            pass
        c.close()


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


@unittest.skipUnless(servers.Clamd.EXE, "clamd (clamav-daemon) not installed")
class ClamavTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.clamd = servers.Clamd("Eicar-Test-Signature:0:*:%s\n" % EICAR.hex())
        cls.port, cls.sockpath, cls.dir = cls.clamd.port, cls.clamd.sockpath, cls.clamd.dir

    @classmethod
    def tearDownClass(cls):
        cls.clamd.stop()

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
        srv = servers.SilentServer()
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
