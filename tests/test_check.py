"""`mailfront --check PROTOCOL BACKEND [PLUGINS...]` and `mailfront --version`.

A corpus of broken configurations, each reported (with file and line where the
module knows them) and exiting 1; a good configuration exits 0; --check never
talks to a client (stdin is closed, stdout stays empty).
"""
import os
import subprocess

import harness
from harness import TempDirTest

MAILFRONT = os.path.join(harness.BUILD, "bin", "mailfront")


class CheckTest(TempDirTest):
    def write(self, name, text, mode=0o644):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def check(self, args, **env):
        e = harness.base_env(**env)
        p = subprocess.run([MAILFRONT, "--check"] + args, env=e, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
        harness.assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout, b"", "--check must not write to the client side")
        return p.returncode, p.stderr.decode(errors="replace")

    def good_env(self):
        rules = self.write("rules", ":sender\nd*@spam.example:*:Go away\n:recipient\nk*:[[@%s]]\n"
                           % self.write("domains", "example.com\n"))
        patterns = self.write("patterns", "=5.7.1 No\n *virus*\n")
        return dict(MAILRULES=rules, PATTERNS=patterns)

    def test_good_configuration(self):
        rc, err = self.check(["smtp", "echo", "check-fqdn:counters", "mailrules", "patterns", "accept"],
                             **self.good_env())
        self.assertEqual(rc, 0, err)
        self.assertIn("configuration OK", err)

    def test_bad_rule_line(self):
        env = self.good_env()
        env["MAILRULES"] = self.write("badrules", ":sender\nk*:*:ok:notanumber\n")
        rc, err = self.check(["smtp", "echo", "mailrules"], **env)
        self.assertEqual(rc, 1, err)
        self.assertIn(env["MAILRULES"] + ":2:", err)          # file and line
        self.assertIn("plugin mailrules: 421", err)
        self.assertIn("1 problem found", err)

    def test_bad_selector_line(self):
        path = self.write("badsel", "k*:*\n:x\n")
        rc, err = self.check(["smtp", "echo", "mailrules"], MAILRULES=path)
        self.assertEqual(rc, 1, err)
        self.assertIn(path + ":2:", err)

    def test_missing_cdb(self):
        missing = os.path.join(self.tmp, "nosuch.cdb")
        path = self.write("cdbrules", "k*:[[@%s]]\n" % missing)
        rc, err = self.check(["smtp", "echo", "mailrules"], MAILRULES=path)
        self.assertEqual(rc, 1, err)
        self.assertIn("nosuch.cdb", err)
        self.assertIn("Error opening file referenced from $MAILRULES", err)

    def test_missing_rules_and_patterns_files(self):
        rc, err = self.check(["smtp", "echo", "mailrules", "patterns"],
                             MAILRULES=os.path.join(self.tmp, "none"), PATTERNS=os.path.join(self.tmp, "nopat"))
        self.assertEqual(rc, 1, err)
        self.assertIn("plugin mailrules: 421 4.3.0 Could not open $MAILRULES file", err)
        self.assertIn("plugin patterns: 451", err)
        self.assertIn("nopat: No such file or directory", err)
        self.assertIn("2 problems found", err)

    def test_unreadable_certificate(self):
        rc, err = self.check(["smtp", "echo"], TLS_CERTFILE=os.path.join(self.tmp, "cert.pem"))
        self.assertEqual(rc, 1, err)
        self.assertIn("$TLS_CERTFILE " + os.path.join(self.tmp, "cert.pem") + ": No such file or directory", err)
        garbage = self.write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        rc, err = self.check(["smtp", "echo"], TLS_CERTFILE=garbage)
        self.assertEqual(rc, 1, err)
        self.assertIn("TLS:", err)

    def test_unknown_plugin_protocol_backend(self):
        rc, err = self.check(["smtpx", "nobackend", "accept:nosuchplugin", "othermissing"])
        self.assertEqual(rc, 1, err)
        for what in ("protocol: 451", "backend: 451", "plugin 'nosuchplugin'", "plugin 'othermissing'"):
            self.assertIn(what, err)
        self.assertIn("4 problems found", err)

    def test_bad_plugins_variable(self):
        rc, err = self.check(["smtp", "echo", "accept"], PLUGINS="counters:bogus1:+bogus2:-accept")
        self.assertEqual(rc, 1, err)
        self.assertIn("$PLUGINS element 'bogus1'", err)
        self.assertIn("$PLUGINS element '+bogus2'", err)
        self.assertIn("2 problems found", err)

    def test_bad_qmail_home(self):
        rc, err = self.check(["smtp", "echo", "qmail-validate"], QMAILHOME=os.path.join(self.tmp, "noqmail"))
        self.assertEqual(rc, 1, err)
        self.assertIn("plugin qmail-validate: 451", err)

    def test_missing_module_directory(self):
        rc, err = self.check(["smtp", "echo"], MODULE_PATH=os.path.join(self.tmp, "nomodules"))
        self.assertEqual(rc, 1, err)
        self.assertIn("module directory is missing", err)

    def test_usage(self):
        rc, err = self.check(["smtp"])
        self.assertEqual(rc, 100)
        self.assertIn("usage: mailfront --check", err)

    def test_version(self):
        p = subprocess.run([MAILFRONT, "--version"], capture_output=True, timeout=30)
        harness.assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 0)
        with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "VERSION")) as f:
            version = f.read().strip()
        self.assertRegex(p.stdout.decode(), r"^mailfront %s \(plugin ABI 3, " % version.replace(".", r"\."))


if __name__ == "__main__":
    import unittest
    unittest.main()
