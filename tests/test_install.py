"""`make install` and an out-of-tree plugin built against the installed header."""
import os
import subprocess

import harness
from harness import TempDirTest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAN_ARGS = ["CFLAGS=-O1 -g", "SAN=-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"]


class InstallTest(TempDirTest):
    def test_install_and_template_plugin(self):
        prefix = os.path.join(self.tmp, "prefix")
        args = ["make", "-s", "-C", ROOT, "install", "BUILD=" + harness.BUILD, "PREFIX=" + prefix]
        if harness.SANITIZED:
            args += SAN_ARGS
        subprocess.run(args, check=True, capture_output=True, timeout=300)
        for f in ("bin/mailfront", "bin/smtpfront-echo", "bin/smtpfront-qmail",
                  "lib/mailfront/protocol-smtp.so", "lib/mailfront/backend-queuedir.so",
                  "lib/mailfront/plugin-add-received.so", "include/mailfront/mailfront.h",
                  "include/mailfront/responses.h", "include/mailfront/constants.h"):
            self.assertTrue(os.path.exists(os.path.join(prefix, f)), f)
        # Out of tree: copy the example somewhere else and build it with its own Makefile.
        src = os.path.join(self.tmp, "tpl")
        os.makedirs(src)
        for f in ("plugin-template.c", "Makefile"):
            with open(os.path.join(ROOT, "examples/plugin-template", f), "rb") as a, \
                    open(os.path.join(src, f), "wb") as b:
                b.write(a.read())
        subprocess.run(["make", "-s", "-C", src, "PREFIX=" + prefix], check=True, capture_output=True, timeout=120)
        subprocess.run(["make", "-s", "-C", src, "install", "PREFIX=" + prefix], check=True, capture_output=True)
        env = harness.base_env(MODULE_PATH=os.path.join(prefix, "lib/mailfront"), PLUGINS="accept:template",
                               TEMPLATE_BLOCK="blocked")
        data = (b"HELO x\nMAIL FROM:<a@b>\nRCPT TO:<blocked@x>\nRCPT TO:<ok@x>\nRCPT TO:<ok2@x>\n"
                b"DATA\nSubject: s\n\nb\n.\nQUIT\n")
        p = harness.run([os.path.join(prefix, "bin/smtpfront-echo")], data, env)
        harness.assert_no_sanitizer_report(self, p)
        lines = p.stdout.decode().split("\r\n")
        self.assertEqual(lines[3], "553 5.7.1 That recipient is blocked by the template plugin.")
        self.assertEqual(lines[4], "250 Recipient='ok@x'.")
        # the injected header "X-Template-Recipients: 2\n" (25 bytes) + 14 message bytes
        self.assertEqual(lines[7], "250 Received 39 bytes.")
