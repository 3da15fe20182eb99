"""A 50 MiB message through SMTP with bounded memory.

The message (dot-stuffed lines, 8-bit bytes and one 20 MiB line, so that
neither buffering the message nor buffering a line fits) goes through the
echo and the queuedir back ends; each run's peak RSS is measured by
/usr/bin/time (GNU time, `%M`) and must stay under 16 MiB (protocols.md
"line limits": memory per session never depends on what the client
sends).  Not os.wait4() from this process: a child forked from a Python
that holds the message counts the parent's pages in its ru_maxrss.  Under
ASan ($MF_SANITIZED) RSS is meaningless, so only delivery is checked.
"""
import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import assert_no_sanitizer_report
from test_smtp_session import EHLO, GO_AHEAD, GREET, MSG_OK, QUIT, RCPT_OK, SENDER_OK, make_queuedir, wire

MIB = 1 << 20
RSS_LIMIT_KIB = 16 * 1024
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def build_message():
    """The decoded message (LF line ends), at least 50 MiB."""
    lines = []
    for i in range(12000):
        if i % 97 == 0:
            lines.append(b".leading dot %d" % i)
        elif i % 101 == 0:
            lines.append(b"..two leading dots %d" % i)
        elif i % 89 == 0:
            lines.append(b".")
        else:
            lines.append((b"%06d " % i) + bytes(range(0x41, 0x7b)) + "\u00e4\u00df".encode())
    chunk = b"\n".join(lines) + b"\n"
    body = b"Subject: large\n\n" + chunk * (30 * MIB // len(chunk) + 1) + b"L" * (20 * MIB) + b"\n"
    assert len(body) >= 50 * MIB
    return body


def to_wire(decoded, eol=b"\r\n"):
    stuffed = decoded.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed.replace(b"\n", eol)


class LargeMessageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mftest.large.")
        cls.message = build_message()
        cls.digest = hashlib.sha256(cls.message).hexdigest()
        cls.session = os.path.join(cls.tmp, "session")
        with open(cls.session, "wb") as f:
            f.write(b"EHLO client\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
            f.write(to_wire(cls.message))
            f.write(b".\r\nQUIT\r\n")
        cls.lf_session = os.path.join(cls.tmp, "session-lf")
        with open(cls.lf_session, "wb") as f:     # LF-only: the original's decoder
            f.write(b"EHLO client\nMAIL FROM:<a@b.example>\nRCPT TO:<c@d.example>\nDATA\n")
            f.write(to_wire(cls.message, b"\n"))
            f.write(b".\nQUIT\n")
        cls.message_len = len(cls.message)
        del cls.message

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def run_measured(self, backend, session=None, **env):
        """Run one session from the file; returns (proc, peak RSS KiB or None)."""
        e = harness.base_env(TCPLOCALHOST="mx.test", **env)
        out_path, err_path = os.path.join(self.tmp, "out"), os.path.join(self.tmp, "err")
        rss_path = os.path.join(self.tmp, "rss")
        argv = [harness.bin_path("mailfront"), "smtp", backend, "accept"]
        if TIME:
            argv = [TIME, "-f", "%M", "-o", rss_path] + argv
        session = session or self.session
        with open(session, "rb") as fin, open(out_path, "wb") as fout, open(err_path, "wb") as ferr:
            p = subprocess.run(argv, stdin=fin, stdout=fout, stderr=ferr, env=e, timeout=120)
        with open(out_path, "rb") as f:
            p.stdout = f.read()
        with open(err_path, "rb") as f:
            p.stderr = f.read()
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertIn(b"bytes in: %d " % os.path.getsize(session), p.stderr)
        rss = None
        if TIME:
            with open(rss_path) as f:
                rss = int(f.read().split()[-1])
        return p, rss

    def check_rss(self, rss_kib):
        if harness.SANITIZED:
            return   # ASan's shadow memory inflates RSS; delivery is still checked
        if rss_kib is None:
            self.skipTest("GNU time (/usr/bin/time) not installed: RSS not measured")
        self.assertLess(rss_kib, RSS_LIMIT_KIB, "peak RSS %d KiB" % rss_kib)

    def test_echo_50mib(self):
        p, rss = self.run_measured("echo")
        self.assertEqual(p.stdout, wire(GREET, *EHLO, "250 Sender='a@b.example'.", "250 Recipient='c@d.example'.",
                                        GO_AHEAD, "250 Received %d bytes." % self.message_len, QUIT))
        print("\n  echo 50 MiB: peak RSS %s KiB" % rss, end=" ")
        self.check_rss(rss)

    def test_echo_50mib_lf_only(self):
        p, rss = self.run_measured("echo", self.lf_session)
        self.assertEqual(p.stdout, wire(GREET, *EHLO, "250 Sender='a@b.example'.", "250 Recipient='c@d.example'.",
                                        GO_AHEAD, "250 Received %d bytes." % self.message_len, QUIT))
        print("\n  echo 50 MiB LF-only: peak RSS %s KiB" % rss, end=" ")
        self.check_rss(rss)

    def test_queuedir_50mib(self):
        qd = make_queuedir(os.path.join(self.tmp, "qd"))
        p, rss = self.run_measured("queuedir", QUEUEDIR=qd)
        self.assertEqual(p.stdout, wire(GREET, *EHLO, SENDER_OK, RCPT_OK, GO_AHEAD, MSG_OK, QUIT))
        (name,) = os.listdir(os.path.join(qd, "new"))
        self.assertEqual(os.listdir(os.path.join(qd, "tmp")), [])
        h = hashlib.sha256()
        with open(os.path.join(qd, "new", name), "rb") as f:
            head = f.read(len(b"a@b.example\0c@d.example\0\0"))
            self.assertEqual(head, b"a@b.example\0c@d.example\0\0")
            for block in iter(lambda: f.read(MIB), b""):
                h.update(block)
        self.assertEqual(h.hexdigest(), self.digest)
        print("\n  queuedir 50 MiB: peak RSS %s KiB" % rss, end=" ")
        self.check_rss(rss)
