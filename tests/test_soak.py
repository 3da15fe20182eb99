"""Smoke run of the soak (bench/soak.py, docs/soak.md): 50 concurrent
mixed sessions (normal, pipelined, slow-drip, abandoned, hostile) for 20 s
against mailfront under tcpserver and against mailfrontd.  It passes only
when no good session failed, every acknowledged message is in the queue,
no session crashed and the listener's RSS and fds stayed flat.  Every
client I/O in the script has a 60 s deadline; the whole run has one too."""
import os
import shutil
import subprocess
import sys
import unittest

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SoakSmoke(unittest.TestCase):
    def run_soak(self, server):
        if server == "tcpserver":
            self.assertIsNotNone(shutil.which("tcpserver"), "tcpserver (ucspi-tcp) is needed")
        env = dict(os.environ, MF_BUILD=harness.BUILD)
        # a sanitized listener keeps a larger heap (quarantine): a wider bound
        bound = "16384" if harness.SANITIZED else "2048"
        p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "soak.py"), "--seconds", "20",
                            "--clients", "50", "--period", "5", "--server", server, "--rss-bound", bound],
                           env=env, capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout[-4000:] + p.stderr[-2000:])
        self.assertIn("result: ok", p.stdout)
        self.assertRegex(p.stdout, r"messages: [1-9]\d* acknowledged")

    def test_tcpserver(self):
        self.run_soak("tcpserver")

    def test_mailfrontd(self):
        self.run_soak("mailfrontd")


if __name__ == "__main__":
    unittest.main()
