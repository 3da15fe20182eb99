"""Issue 10 items 4 and 8: no credential in any log.

Every AUTH path of the three programs is run and its log (stderr) is
searched for every secret the client sent: the passwords, each base64 line
(PLAIN payloads, LOGIN user name and password lines, CRAM-MD5 responses)
and the CRAM-MD5 digest.  Paths: PLAIN, LOGIN, CRAM-MD5; initial response
and continuation lines; refused (no authentication configured,
$AUTH_REQUIRES_TLS outside TLS), failed, aborted and succeeded; a client
sending `AUTH <base64>` without a mechanism; SMTP, POP3 (AUTH and
USER/PASS) and IMAP (AUTHENTICATE and LOGIN).  POP3 and IMAP are run in
both log formats (classic and $LOGFORMAT=kv); every kv line must parse.
"""
import base64
import hashlib
import hmac
import os
import unittest

import harness
import test_auth_bypass as tb
from test_auth_bypass import D, PASSWORD, WRONG, Session, b64
from test_logging_kv import events

PLAIN_OK = b64(b"\0alice\0" + PASSWORD)
PLAIN_BAD = b64(b"\0alice\0" + WRONG)
USER_B64 = b64(b"alice")
PW_B64 = b64(PASSWORD)
WRONG_B64 = b64(WRONG)
CRAM_BAD = b64(b"alice " + b"0123456789abcdef" * 2)
SECRETS = [PASSWORD, WRONG, PLAIN_OK.encode(), PLAIN_BAD.encode(), USER_B64.encode(), PW_B64.encode(),
           WRONG_B64.encode(), CRAM_BAD.encode(), b"0123456789abcdef"]


def setUpModule():
    tb.setUpModule()


def tearDownModule():
    tb.tearDownModule()


def sasl_scripts(verb):
    """(name, lines) of pipelined exchanges; verb is "AUTH" or "t AUTHENTICATE"."""
    return [
        ("plain-initial-wrong", [f"{verb} PLAIN {PLAIN_BAD}"]),
        ("plain-initial-right", [f"{verb} PLAIN {PLAIN_OK}"]),
        ("plain-continuation", [f"{verb} PLAIN", PLAIN_BAD]),
        ("login-continuation", [f"{verb} LOGIN", USER_B64, WRONG_B64]),
        ("login-initial", [f"{verb} LOGIN {USER_B64}", WRONG_B64]),
        ("login-right", [f"{verb} LOGIN", USER_B64, PW_B64]),
        ("cram-wrong", [f"{verb} CRAM-MD5", CRAM_BAD]),
        ("no-mechanism", [f"{verb} {PLAIN_BAD}", PLAIN_OK]),
        ("no-mechanism-two-words", [f"{verb} {USER_B64} {WRONG_B64}", PW_B64]),
        ("aborted", [f"{verb} LOGIN", USER_B64, "*", WRONG_B64]),
        ("bad-base64", [f"{verb} LOGIN", "!!" + PW_B64, WRONG_B64]),
    ]


FORMATS = {"classic": None, "kv": "kv"}


class LogMasking(unittest.TestCase):
    def check_log(self, err, what, fmt="classic"):
        for s in SECRETS:
            self.assertNotIn(s, err, f"{what}: {s!r} in the log:\n{err.decode('latin-1')[-1500:]}")
        if fmt == "kv":
            ev = events(err)          # raises on a line that is not kv
            self.assertTrue(any(e["event"] == "command" for e in ev), what)

    def env(self, **more):
        e = harness.base_env(CVM_PWFILE_PATH=D["pw"], TCPLOCALHOST="mx.test", PROTO="TCP")
        e.update({k: str(v) for k, v in more.items() if v is not None})
        return e

    def pipelined(self, argv, lines, env, end):
        data = "".join(l + "\r\n" for l in lines + [end]).encode()
        p = harness.run(argv, data, env, timeout=tb.TIMEOUT * 2)
        harness.assert_no_sanitizer_report(self, p)
        return p

    def cram_success(self, argv, verb, prefix, env, end):
        s = Session(argv, env)
        s.line()
        s.send(f"{verb} CRAM-MD5")
        l = s.line()
        self.assertTrue(l.startswith(prefix), l)
        ch = base64.b64decode(l[len(prefix):])
        digest = hmac.new(PASSWORD, ch, hashlib.md5).hexdigest().encode()
        s.send(b64(b"alice " + digest))
        final = s.line()
        s.send(end)
        cp = s.finish(self)
        self.assertNotIn(digest, cp.stderr)
        self.assertNotIn(b64(b"alice " + digest).encode(), cp.stderr)
        return final, cp

    # ---- SMTP ----

    SMTP = ["smtp", "echo", "cvm-authenticate", "accept"]

    def auth_envs(self):
        """AUTH enabled, not configured, refused outside TLS."""
        m = D["modules"]["command"]
        return {
            "enabled": dict(CVM_SASL_PLAIN=m["pw"], CVM_SASL_CRAM_MD5=m["cram"]),
            "not-configured": {},
            "requires-tls": dict(CVM_SASL_PLAIN=m["pw"], CVM_SASL_CRAM_MD5=m["cram"], AUTH_REQUIRES_TLS=1),
        }

    def test_smtp(self):
        argv = [harness.bin_path("mailfront")] + self.SMTP
        for ename, extra in self.auth_envs().items():
            for name, lines in sasl_scripts("AUTH"):
                with self.subTest(env=ename, script=name):
                    p = self.pipelined(argv, ["EHLO c"] + lines, self.env(**extra), "QUIT")
                    self.check_log(p.stderr, f"smtp {ename} {name}")
                    if ename == "enabled" and name in ("plain-initial-right", "login-right"):
                        self.assertIn(b"235 ", p.stdout)
        final, cp = self.cram_success(argv, "AUTH", b"334 ", self.env(**self.auth_envs()["enabled"]), "QUIT")
        self.assertTrue(final.startswith(b"235 "), final)
        self.check_log(cp.stderr, "smtp cram success")

    # ---- POP3 ----

    def test_pop3(self):
        if os.geteuid() != 0:
            self.skipTest("the exec step needs root")
        argv = [harness.bin_path("pop3front-auth"), D["modules"]["command"]["pw"], D["prog"]]
        scripts = sasl_scripts("AUTH") + [
            ("user-pass-wrong", ["USER alice", b"PASS ".decode() + WRONG.decode()]),
            ("user-pass-right", ["USER alice", "PASS " + PASSWORD.decode()]),
        ]
        for fmt, logformat in FORMATS.items():
            for ename, extra in self.auth_envs().items():
                for name, lines in scripts:
                    with self.subTest(fmt=fmt, env=ename, script=name):
                        p = self.pipelined(argv, lines, self.env(LOGFORMAT=logformat, **extra), "QUIT")
                        self.check_log(p.stderr, f"pop3 {fmt} {ename} {name}", fmt)
            env = self.env(LOGFORMAT=logformat, **self.auth_envs()["enabled"])
            final, cp = self.cram_success(argv, "AUTH", b"+ ", env, "QUIT")
            self.assertEqual(final, tb.EXECUTED)
            self.check_log(cp.stderr, f"pop3 {fmt} cram success", fmt)

    # ---- IMAP ----

    def test_imap(self):
        if os.geteuid() != 0:
            self.skipTest("the exec step needs root")
        argv = [harness.bin_path("imapfront-auth"), D["prog"]]
        m = D["modules"]["command"]
        envs = {
            "enabled": dict(CVM_SASL_PLAIN=m["pw"], CVM_SASL_CRAM_MD5=m["cram"]),
            "requires-tls": dict(CVM_SASL_PLAIN=m["pw"], CVM_SASL_CRAM_MD5=m["cram"], AUTH_REQUIRES_TLS=1),
        }
        scripts = sasl_scripts("t AUTHENTICATE") + [
            ("login-wrong", ["t LOGIN alice " + WRONG.decode()]),
            ("login-right", ["t LOGIN alice " + PASSWORD.decode()]),
            ("login-quoted", ['t LOGIN "alice" "' + WRONG.decode() + '"']),
        ]
        for fmt, logformat in FORMATS.items():
            for ename, extra in envs.items():
                for name, lines in scripts:
                    with self.subTest(fmt=fmt, env=ename, script=name):
                        p = self.pipelined(argv, lines, self.env(LOGFORMAT=logformat, **extra), "u LOGOUT")
                        self.check_log(p.stderr, f"imap {fmt} {ename} {name}", fmt)
            env = self.env(LOGFORMAT=logformat, **envs["enabled"])
            final, cp = self.cram_success(argv, "t AUTHENTICATE", b"+ ", env, "u LOGOUT")
            self.assertEqual(final, tb.EXECUTED)
            self.check_log(cp.stderr, f"imap {fmt} cram success", fmt)


if __name__ == "__main__":
    unittest.main()
