"""`mailfront --check PROTOCOL BACKEND [PLUGINS...]` and `mailfront --version`.

A corpus of broken configurations, each reported (with file and line where the
module knows them) and exiting 1; a good configuration exits 0; --check never
talks to a client (stdin is closed, stdout stays empty).
"""
import os
import socket
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

    # ---- the back ends' check hooks ----

    def qmail_home(self, queue_mode=0o755):
        home = os.path.join(self.tmp, "qmail")
        os.makedirs(os.path.join(home, "bin"))
        self.write("qmail/bin/qmail-queue", "#!/bin/sh\nexit 0\n", queue_mode)
        return home

    def test_qmail_backend_good(self):
        rc, err = self.check(["smtp", "qmail"], QMAILHOME=self.qmail_home(), QMAILQUEUE_TIMEOUT="600")
        self.assertEqual(rc, 0, err)
        rc, err = self.check(["smtp", "qmail"], QMAILHOME=self.tmp, QMAILQUEUE="true")   # found on $PATH
        self.assertEqual(rc, 0, err)

    def test_qmail_backend_broken(self):
        missing = os.path.join(self.tmp, "noqmail")
        rc, err = self.check(["smtp", "qmail"], QMAILHOME=missing)
        self.assertEqual(rc, 1, err)
        self.assertIn("backend qmail: $QMAILHOME %s: No such file or directory" % missing, err)
        self.assertIn("mailfront --check: backend qmail: 451", err)
        home = self.qmail_home(queue_mode=0o644)
        rc, err = self.check(["smtp", "qmail"], QMAILHOME=home, QMAILQUEUE_TIMEOUT="10 minutes")
        self.assertEqual(rc, 1, err)
        self.assertIn("backend qmail: $QMAILQUEUE bin/qmail-queue: not an executable file", err)
        self.assertIn("backend qmail: $QMAILQUEUE_TIMEOUT '10 minutes': not a decimal number", err)
        rc, err = self.check(["smtp", "qmail"], QMAILHOME=home, QMAILQUEUE="no-such-qmail-queue")
        self.assertEqual(rc, 1, err)
        self.assertIn("$QMAILQUEUE no-such-qmail-queue: not found on $PATH", err)

    def test_queuedir_backend(self):
        q = os.path.join(self.tmp, "queue")
        rc, err = self.check(["smtp", "queuedir"])
        self.assertEqual(rc, 1, err)
        self.assertIn("backend queuedir: $QUEUEDIR: not set", err)
        rc, err = self.check(["smtp", "queuedir"], QUEUEDIR=q)
        self.assertEqual(rc, 1, err)
        self.assertIn("$QUEUEDIR %s: No such file or directory" % q, err)
        os.makedirs(os.path.join(q, "tmp"))
        rc, err = self.check(["smtp", "queuedir"], QUEUEDIR=q)
        self.assertEqual(rc, 1, err)
        self.assertIn("destination directory %s/new: No such file or directory" % q, err)
        self.write("queue/new", "a file, not a directory\n")
        rc, err = self.check(["smtp", "queuedir"], QUEUEDIR=q)
        self.assertIn("destination directory %s/new: not a directory" % q, err)
        os.unlink(os.path.join(q, "new"))
        os.makedirs(os.path.join(q, "new"))
        rc, err = self.check(["smtp", "queuedir"], QUEUEDIR=q)
        self.assertEqual(rc, 0, err)
        os.makedirs(os.path.join(q, "incoming"))
        rc, err = self.check(["smtp", "queuedir"], QUEUEDIR=q, QUEUEDIR_DEST="incoming", QUEUEDIR_TMP="scratch")
        self.assertEqual(rc, 1, err)
        self.assertIn("temporary directory %s/scratch: No such file or directory" % q, err)

    def test_relay_backends(self):
        ca = self.write("ca.pem", "-----BEGIN CERTIFICATE-----\n")
        sock_path = os.path.join(self.tmp, "lmtp.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(sock_path)
        for backend in ("smtp", "lmtp"):
            rc, err = self.check(["smtp", backend], RELAY_HOST="mx1.example.net mx2.example.net:2525,[192.0.2.1]:25 [2001:db8::1]",
                                 RELAY_TLS_CAFILE=ca)
            self.assertEqual(rc, 0, err)
        rc, err = self.check(["smtp", "lmtp"], RELAY_SOCKET=sock_path)
        self.assertEqual(rc, 0, err)
        rc, err = self.check(["smtp", "smtp"], RELAY_HOST="good.example :25 bad.example:0 [192.0.2.1 [::1]x h:99999",
                             RELAY_TLS_CAFILE=os.path.join(self.tmp, "noca.pem"), RELAY_TIMEOUT="5m")
        self.assertEqual(rc, 1, err)
        for line in ("$RELAY_HOST next hop ':25': empty host",
                     "$RELAY_HOST next hop 'bad.example:0': bad port (1 to 65535)",
                     "$RELAY_HOST next hop '[192.0.2.1': no ']' after the address",
                     "$RELAY_HOST next hop '[::1]x': text after ']' that is no :port",
                     "$RELAY_HOST next hop 'h:99999': bad port (1 to 65535)",
                     "$RELAY_TLS_CAFILE %s/noca.pem: No such file or directory" % self.tmp,
                     "$RELAY_TIMEOUT '5m': not a decimal number",
                     "mailfront --check: backend smtp: 451"):
            self.assertIn("backend relay: " + line if line[0] == "$" else line, err)
        self.assertNotIn("good.example'", err)
        rc, err = self.check(["smtp", "lmtp"], RELAY_SOCKET=self.tmp)
        self.assertEqual(rc, 1, err)
        self.assertIn("$RELAY_SOCKET %s: not a socket" % self.tmp, err)
        rc, err = self.check(["smtp", "smtp"])      # neither set: relay_config's own report
        self.assertEqual(rc, 1, err)
        self.assertIn("backend smtp: 4", err)


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


class ProgramCheckTest(TempDirTest):
    """pop3front-auth --check, imapfront-auth --check, pop3front-maildir --check."""

    def write(self, name, text, mode=0o644):
        return CheckTest.write(self, name, text, mode)

    def check(self, program, args, **env):
        e = harness.base_env(**env)
        p = subprocess.run([os.path.join(harness.BUILD, "bin", program), "--check"] + args, env=e,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        harness.assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout, b"", "--check must not write to the client side")
        return p.returncode, p.stderr.decode(errors="replace")

    def cvm(self):
        return self.write("cvm-module", "#!/bin/sh\nexit 100\n", 0o755)

    def test_pop3front_auth_good(self):
        rc, err = self.check("pop3front-auth", [self.cvm(), os.path.join(harness.BUILD, "bin", "pop3front-maildir"), "Maildir"],
                             CVM_SASL_PLAIN="cvm-command:" + self.cvm(), MAXAUTHFAIL="3", TIMEOUT=" 60")
        self.assertEqual(rc, 0, err)
        self.assertIn("pop3front-auth --check: configuration OK", err)

    def test_pop3front_auth_broken(self):
        nox = self.write("not-executable", "#!/bin/sh\n")
        sock = os.path.join(self.tmp, "nosock")
        rc, err = self.check("pop3front-auth", ["%s,cvm-local:%s,cvm-udp:host.example,cvm-command:" % (nox, sock),
                                                "no-such-mailbox-server"],
                             CVM_SASL_LOGIN="cvm-udp:[::1]:port", MAXUSERCMD="ten", SESSION_TIMEOUT="99999999999999999999999")
        self.assertEqual(rc, 1, err)
        for line in ("CVM module %s: not an executable file" % nox,
                     "CVM module %s: No such file or directory" % sock,
                     "CVM module cvm-udp:host.example: no :port",
                     "CVM module: no program named",
                     "$CVM_SASL_LOGIN cvm-udp:[::1]:port: bad port (1 to 65535)",
                     "$MAXUSERCMD 'ten': not a decimal number",
                     "$SESSION_TIMEOUT '99999999999999999999999': not a decimal number",
                     "program no-such-mailbox-server: not found on $PATH",
                     "8 problems found"):
            self.assertIn("pop3front-auth --check: " + line, err)

    def test_pop3front_auth_usage(self):
        rc, err = self.check("pop3front-auth", [self.cvm()])
        self.assertEqual(rc, 100, err)
        self.assertIn("usage: pop3front-auth --check", err)

    def test_imapfront_auth(self):
        rc, err = self.check("imapfront-auth", ["true"], CVM_SASL_PLAIN=self.cvm(), MAX_LITERAL_LENGTH="65536")
        self.assertEqual(rc, 0, err)
        rc, err = self.check("imapfront-auth", ["true"])
        self.assertEqual(rc, 1, err)
        self.assertIn("imapfront-auth --check: $CVM_SASL_PLAIN: not set", err)
        rc, err = self.check("imapfront-auth", [os.path.join(self.tmp, "imapd")], CVM_SASL_PLAIN="cvm-local:" + self.tmp,
                             MAX_LITERAL_LENGTH="64k", TLS_CERTFILE=os.path.join(self.tmp, "cert.pem"))
        self.assertEqual(rc, 1, err)
        for line in ("$CVM_SASL_PLAIN %s: not a socket" % self.tmp,
                     "$MAX_LITERAL_LENGTH '64k': not a decimal number",
                     "$TLS_CERTFILE %s/cert.pem: No such file or directory" % self.tmp,
                     "program %s/imapd: No such file or directory" % self.tmp,
                     "4 problems found"):
            self.assertIn("imapfront-auth --check: " + line, err)

    def test_imapfront_auth_tls(self):
        cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=mx.test"],
                       check=True, capture_output=True, timeout=60)
        rc, err = self.check("imapfront-auth", ["true"], CVM_SASL_PLAIN=self.cvm(), TLS_CERTFILE=cert, TLS_KEYFILE=key)
        self.assertEqual(rc, 0, err)
        garbage = self.write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        rc, err = self.check("imapfront-auth", ["true"], CVM_SASL_PLAIN=self.cvm(), TLS_CERTFILE=garbage)
        self.assertEqual(rc, 1, err)
        self.assertIn("imapfront-auth --check: TLS: ", err)

    def test_pop3front_maildir(self):
        md = os.path.join(self.tmp, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub))
        rc, err = self.check("pop3front-maildir", [md], MAX_MESSAGES="1000")
        self.assertEqual(rc, 0, err)
        rc, err = self.check("pop3front-maildir", [], MAILBOX=md)
        self.assertEqual(rc, 0, err)
        rc, err = self.check("pop3front-maildir", [])
        self.assertEqual(rc, 1, err)
        self.assertIn("neither $MAILBOX nor an argument names it", err)
        os.rmdir(os.path.join(md, "tmp"))
        rc, err = self.check("pop3front-maildir", [md], MAX_NEW_MESSAGES="lots")
        self.assertEqual(rc, 1, err)
        self.assertIn("maildir subdirectory %s/tmp: No such file or directory" % md, err)
        self.assertIn("$MAX_NEW_MESSAGES 'lots': not a decimal number", err)
        self.assertIn("2 problems found", err)
        rc, err = self.check("pop3front-maildir", [], MAILBOX=os.path.join(self.tmp, "none"))
        self.assertEqual(rc, 1, err)
        self.assertIn("$MAILBOX %s/none: No such file or directory" % self.tmp, err)


if __name__ == "__main__":
    import unittest
    unittest.main()
