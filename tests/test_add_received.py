"""add-received: the Received: lines as the original writes them."""
import os
import re
import unittest

import harness
from harness import TempDirTest, assert_no_sanitizer_report

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "qmail_queue_standin.py")
DATE = re.compile(rb"\d\d [A-Z][a-z][a-z] \d{4} \d\d:\d\d:\d\d -0000")


class AddReceivedTest(TempDirTest):
    def message(self, argv0, data, plugins=("accept", "add-received"), **env):
        out = os.path.join(self.tmp, "qq")
        e = harness.base_env(QMAILHOME=self.tmp, QMAILQUEUE=STANDIN, QQ_OUT=out, **env)
        if argv0 != harness.bin_path("mailfront"):
            e.pop("MODULE_PATH")
            e.pop("ASAN_OPTIONS", None)
            e.pop("UBSAN_OPTIONS", None)
        p = harness.run([argv0, "smtp", "qmail"] + list(plugins), data, e)
        assert_no_sanitizer_report(self, p)
        with open(out + ".msg", "rb") as f:
            return p, f.read()

    SESSION = b"HELO cl.example\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"

    def test_standard_header(self):
        _, msg = self.message(harness.bin_path("mailfront"), self.SESSION, TCPLOCALIP="198.51.100.1",
                              TCPREMOTEIP="192.0.2.1", TCPLOCALHOST="mx.example.com")
        self.assertRegex(msg, rb"^Received: from cl\.example \(\[192\.0\.2\.1\]\)\n"
                              rb"  by mx\.example\.com \(\[198\.51\.100\.1\]\)\n"
                              rb"  with SMTP via TCP; \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d -0000\n"
                              rb"Subject: x\n\nhi\n$")

    def test_unknown_and_esmtp_ipv6(self):
        _, msg = self.message(harness.bin_path("mailfront"), self.SESSION)
        self.assertTrue(msg.startswith(b"Received: from cl.example\n  by unknown\n  with SMTP via TCP; "), msg)
        data = self.SESSION.replace(b"HELO", b"EHLO")
        _, msg = self.message(harness.bin_path("mailfront"), data, PROTO="TCP6", TCP6REMOTEIP="::1",
                              TCP6REMOTEHOST="client.host", TCP6LOCALIP="::2", TCP6LOCALHOST="mx.example.com")
        self.assertTrue(msg.startswith(b"Received: from cl.example (client.host [IPv6:::1])\n"
                                       b"  by mx.example.com ([IPv6:::2])\n  with ESMTP via TCP6; "), msg)

    def test_last_helo_wins(self):
        data = b"HELO first\r\nEHLO second\r\n" + self.SESSION.split(b"\r\n", 1)[1]
        _, msg = self.message(harness.bin_path("mailfront"), data)
        self.assertTrue(msg.startswith(b"Received: from second\n"), msg)

    def test_authenticated_without_header(self):
        _, msg = self.message(harness.bin_path("mailfront"), self.SESSION, RELAYCLIENT="", AUTH_ADD_RECEIVED="0")
        self.assertEqual(msg, b"Subject: x\n\nhi\n")
        _, msg = self.message(harness.bin_path("mailfront"), self.SESSION, RELAYCLIENT="")
        self.assertTrue(msg.startswith(b"Received: "))

    def test_injected_bytes_bypass_plugins_but_count(self):
        p, msg = self.message(harness.bin_path("mailfront"), self.SESSION, plugins=("accept", "add-received"))
        self.assertIn(b"bytes %d\r\n" % len(msg), p.stdout)

    @unittest.skipUnless(harness.reference_available(), "reference mailfront not installed")
    def test_same_as_reference(self):
        env = dict(TCPLOCALIP="198.51.100.1", TCPREMOTEIP="192.0.2.1", TCPLOCALHOST="mx.example.com",
                   TCPREMOTEHOST="client.example", HEADER_ADD="X-Added: yes",
                   FIXUP_RECEIVED_HOST=" fix.example ", FIXUP_RECEIVED_IP="203.0.113.9")
        for plugins in (("accept", "add-received"), ("accept", "add-received", "force-file")):
            with self.subTest(plugins=plugins):
                _, ours = self.message(harness.bin_path("mailfront"), self.SESSION, plugins, **env)
                _, ref = self.message(harness.REFERENCE, self.SESSION, plugins, **env)
                self.assertEqual(DATE.sub(b"DATE", ours), DATE.sub(b"DATE", ref))
                self.assertIn(b"by fix.example ([203.0.113.9])", ours)


if __name__ == "__main__":
    unittest.main()
