"""plugin-milter: a 50 MiB message through two milters with flat memory.

Two python3-milter test milters (tests/milter_test_milter.py) each receive
the whole body in chunks and add a header, so the message is also
rewritten through a scratch file at the end of data.  The queuedir back end
keeps mailfront the only process measured: its peak RSS (wait4) for the
50 MiB message must stay within a few MiB of the peak for a 1 MiB message.
"""
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import unittest

import harness
from test_milter import MilterProcess, have_pymilter

SIZE = 50 * 1024 * 1024
LINE = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab\r\n"


@unittest.skipUnless(have_pymilter(), "python3-milter not installed")
class MilterLargeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mfmilterbig.")
        cls.milters = [MilterProcess(cls.dir), MilterProcess(cls.dir)]

    @classmethod
    def tearDownClass(cls):
        for m in cls.milters:
            m.stop()
        shutil.rmtree(cls.dir, True)

    def run_size(self, size):
        """One session with a body of about `size` bytes; returns (peak RSS
        in KiB, the queued file, the body bytes on the wire)."""
        tmp = tempfile.mkdtemp(prefix="mftest.", dir=self.dir)
        qd = os.path.join(tmp, "queue")
        for d in ("tmp", "new"):
            os.makedirs(os.path.join(qd, d))
        n = size // len(LINE)
        inp = os.path.join(tmp, "in")
        with open(inp, "wb") as f:
            f.write(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
                    b"From: a@b.example\r\nSubject: big\r\nX-Test: addheader\r\n\r\n")
            block = LINE * 1024
            for _ in range(n // 1024):
                f.write(block)
            f.write(LINE * (n % 1024))
            f.write(b".\r\nQUIT\r\n")
        env = harness.base_env(QUEUEDIR=qd, QUEUEDIR_NOSYNC="1", TMPDIR=tmp,
                               MILTERS=",".join(m.spec for m in self.milters), TCPREMOTEIP="127.0.0.1",
                               MILTER_CONTENT_TIMEOUT="60", DATABYTES="0")
        with open(inp, "rb") as stdin, open(os.path.join(tmp, "out"), "wb") as out, \
                open(os.path.join(tmp, "err"), "wb") as err:
            p = subprocess.Popen([harness.bin_path("mailfront"), "smtp", "queuedir", "accept", "milter"],
                                 stdin=stdin, stdout=out, stderr=err, env=env)
            timer = threading.Timer(300, p.kill)
            timer.start()
            try:
                _, status, ru = os.wait4(p.pid, 0)
            finally:
                timer.cancel()
            p.returncode = os.waitstatus_to_exitcode(status)
        with open(os.path.join(tmp, "out"), "rb") as f:
            replies = f.read()
        self.assertIn(b"250 2.6.0", replies)
        files = os.listdir(os.path.join(qd, "new"))
        self.assertEqual(len(files), 1, replies)
        return ru.ru_maxrss, os.path.join(qd, "new", files[0]), n * len(LINE)

    def test_milter_50mib_two_milters_flat_memory(self):
        small, _, _ = self.run_size(1024 * 1024)
        big, path, wire = self.run_size(SIZE)
        self.assertLess(big - small, 8 * 1024, "peak RSS %d KiB for 50 MiB vs %d KiB for 1 MiB" % (big, small))
        # Both milters saw the whole body, CRLF lines, and both headers are in.
        for m in self.milters:
            self.assertEqual(m.records()[-1]["bodylen"], wire)
        with open(path, "rb") as f:
            head = f.read(4096)
            f.seek(0, os.SEEK_END)
            total = f.tell()
        self.assertEqual(head.count(b"X-Added: added by the milter\n"), 2)
        body_lf = wire - wire // len(LINE)          # stored with LF lines
        self.assertGreater(total, body_lf)
        self.assertLess(total, body_lf + 400)


if __name__ == "__main__":
    unittest.main()
