"""Issue 10 item 7: a CVM lookup secret never turns an authentication into
a lookup.

A CVM module started with $CVM_LOOKUP_SECRET in its environment runs in
lookup mode and does not check the password.  The original's cvm-validate
exports that variable (empty) and every command-mode authentication module
then inherited it: any password authenticated.  Here every authentication
path is tried with Debian's cvm-pwfile as a command, on a UNIX socket
(cvm-local:) and on UDP (cvm-udp:), with the right and a wrong password,
while $CVM_LOOKUP_SECRET / $LOOKUP_SECRET are in the environment and (SMTP)
cvm-validate is loaded as in the default plugin list:

  SMTP AUTH PLAIN, LOGIN, CRAM-MD5 (initial response and continuation);
  pop3front-auth USER/PASS and AUTH PLAIN, LOGIN, CRAM-MD5;
  imapfront-auth LOGIN and AUTHENTICATE PLAIN, LOGIN, CRAM-MD5.

cvm-pwfile has no CRAM-MD5: that mechanism uses tests/cvm_test_module.py
(as a command, on a UNIX socket and on UDP), which, like a module built
with libcvm, runs in lookup mode when $CVM_LOOKUP_SECRET is in its
environment.

The POP3/IMAP programs switch to the user before their exec step, so these
tests run as root (as test_pop3_auth does).
"""
import base64
import hashlib
import hmac
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from harness import assert_no_sanitizer_report

PWFILE = shutil.which("cvm-pwfile") or "/usr/bin/cvm-pwfile"
MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cvm_test_module.py")
UID, GID = 4721, 4722
PASSWORD = b"right-Pa55"
WRONG = b"wrong-Pa55"
TIMEOUT = 20
EXECUTED = b"EXECUTED-AS-USER"

# The lookup secret in the environment of the front end, as the default
# plugin list (cvm-validate) or a site's run script would leave it.
SECRET_ENVS = [
    {"CVM_LOOKUP_SECRET": ""},
    {"CVM_LOOKUP_SECRET": "s3"},
    {"LOOKUP_SECRET": "s3"},
]

D = {}


def b64(b):
    return base64.b64encode(b).decode()


def setUpModule():
    if not os.path.exists(PWFILE):
        raise AssertionError("cvm-pwfile (Debian package cvm) is needed")
    d = tempfile.mkdtemp(prefix="mfbypass.")
    os.chmod(d, 0o755)
    home = os.path.join(d, "home")
    os.mkdir(home)
    os.chown(home, UID, GID)
    pw = os.path.join(d, "passwd")
    with open(pw, "w") as f:
        f.write(f"alice:{PASSWORD.decode()}:{UID}:{GID}:Alice:{home}:/bin/sh\n")
    prog = os.path.join(d, "mailbox.sh")
    with open(prog, "w") as f:
        f.write("#!/bin/sh\necho '%s'\n" % EXECUTED.decode())
    os.chmod(prog, 0o755)
    D.update(dir=d, pw=pw, prog=prog, servers=[])
    # cvm-pwfile as servers (their own environment has no lookup secret)
    sock = os.path.join(d, "pw.sock")
    start_server([PWFILE, "cvm-local:" + sock], wait_path=sock)
    port = harness.free_port()
    start_server([PWFILE, f"cvm-udp:127.0.0.1:{port}"], udp_port=port)
    pw_modules = {"command": PWFILE, "local": "cvm-local:" + sock, "udp": f"cvm-udp:127.0.0.1:{port}"}
    # CRAM-MD5: the test module
    users = os.path.join(d, "users")
    with open(users, "w") as f:
        f.write(f"alice:{PASSWORD.decode()}:{UID}:{GID}:{home}\n")
    tm = [sys.executable, MODULE, "--users", users]
    wrapper = os.path.join(d, "tm-command.sh")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec %s command\n" % " ".join(tm))
    os.chmod(wrapper, 0o755)
    tsock = os.path.join(d, "tm.sock")
    start_server(tm + ["local", tsock], wait_path=tsock)
    tport = harness.free_port()
    start_server(tm + ["udp", "127.0.0.1", str(tport)], udp_port=tport)
    tm_modules = {"command": wrapper, "local": "cvm-local:" + tsock, "udp": f"cvm-udp:127.0.0.1:{tport}"}
    D["modules"] = {name: {"pw": pw_modules[name], "cram": tm_modules[name]} for name in pw_modules}


def tearDownModule():
    for p in D.get("servers", []):
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        p.wait(timeout=5)
    if "dir" in D:
        shutil.rmtree(D["dir"], True)


def start_server(argv, wait_path=None, udp_port=None):
    p = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin", "CVM_PWFILE_PATH": D["pw"]},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    D["servers"].append(p)
    end = time.time() + 10
    while time.time() < end:
        if wait_path and os.path.exists(wait_path):
            return
        if udp_port:
            # a lookup of an unknown user answers once the server is up
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.2)
                s.sendto(b"\x02\x00\x01\x01x\x00", ("127.0.0.1", udp_port))
                try:
                    s.recv(600)
                    return
                except OSError:
                    pass
        time.sleep(0.05)
    raise AssertionError(f"CVM server {argv} did not start")


class Session:
    """An interactive session with a child over pipes; every read has a
    deadline."""

    def __init__(self, argv, env):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.buf = b""

    def send(self, line):
        """Send a line; the program may already have ended (after the exec
        step the mailbox program exits at once), which is not an error."""
        try:
            self.p.stdin.write((line if isinstance(line, bytes) else line.encode()) + b"\r\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            pass

    def line(self):
        end = time.monotonic() + TIMEOUT
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            r, _, _ = select.select([fd], [], [], max(left, 0))
            if not r:
                raise AssertionError(f"no reply within {TIMEOUT}s: {self.buf!r}")
            chunk = os.read(fd, 4096)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def finish(self, tc):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            rest = self.p.stdout.read()
            err = self.p.stderr.read()
            rc = self.p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise
        cp = subprocess.CompletedProcess(self.p.args, rc, self.buf + rest, err)
        assert_no_sanitizer_report(tc, cp)
        return cp


def cram(challenge_b64, password):
    ch = base64.b64decode(challenge_b64)
    return b64(b"alice " + hmac.new(password, ch, hashlib.md5).hexdigest().encode())


class Bypass(unittest.TestCase):
    def env(self, extra, **more):
        e = harness.base_env(CVM_PWFILE_PATH=D["pw"], TCPLOCALHOST="mx.test", PROTO="TCP")
        e.update(extra)
        e.update({k: str(v) for k, v in more.items()})
        return e

    def exchange(self, s, mech, password, prefix, initial):
        """Drive a SASL exchange; prefix is the server's challenge prefix
        ("334 " or "+ ").  Returns the final reply line."""
        if mech == "PLAIN":
            payload = b64(b"\0alice\0" + password)
            if initial:
                return None, payload
            return [payload], None
        if mech == "LOGIN":
            if initial:
                return [b64(password)], b64(b"alice")
            return [b64(b"alice"), b64(password)], None
        return "CRAM", None

    def run_sasl(self, s, command, mech, password, prefix, initial):
        steps, ir = self.exchange(s, mech, password, prefix, initial)
        s.send(command + " " + mech + (" " + ir if ir else ""))
        if steps == "CRAM":
            l = s.line()
            self.assertTrue(l.startswith(prefix.encode()), l)
            s.send(cram(l[len(prefix):], password))
        else:
            for step in steps or []:
                l = s.line()
                self.assertTrue(l.startswith(prefix.encode()), l)
                s.send(step)
        return s.line()

    # ---- SMTP ----

    def smtp(self, module, mech, password, initial, extra):
        env = self.env(extra, CVM_LOOKUP=PWFILE)
        if mech == "CRAM-MD5":
            env["CVM_SASL_CRAM_MD5"] = module["cram"]
        else:
            env["CVM_SASL_PLAIN"] = module["pw"]
        s = Session([harness.bin_path("mailfront"), "smtp", "echo", "cvm-validate",
                     "cvm-authenticate", "require-auth", "accept"], env)
        self.assertTrue(s.line().startswith(b"220 "))
        final = self.run_sasl(s, "AUTH", mech, password, "334 ", initial)
        s.send("MAIL FROM:<a@b.example>")
        mail = s.line()
        s.send("QUIT")
        s.finish(self)
        return final, mail

    def test_smtp_every_mechanism_transport_and_secret(self):
        for name, module in D["modules"].items():
            for extra in SECRET_ENVS:
                for mech in ("PLAIN", "LOGIN", "CRAM-MD5"):
                    for initial in ((False, True) if mech != "CRAM-MD5" else (False,)):
                        with self.subTest(module=name, env=extra, mech=mech, initial=initial):
                            final, mail = self.smtp(module, mech, WRONG, initial, extra)
                            self.assertTrue(final.startswith(b"535 ") or final.startswith(b"501 "), final)
                            self.assertEqual(mail, b"530 5.7.1 You must authenticate first.")
                            final, mail = self.smtp(module, mech, PASSWORD, initial, extra)
                            self.assertEqual(final, b"235 2.7.0 Authentication succeeded.")
                            self.assertTrue(mail.startswith(b"250 "), mail)

    def test_cvm_validate_still_looks_up_through_command_module(self):
        # The secret goes to cvm-validate's own lookups (lookup mode).
        s = Session([harness.bin_path("mailfront"), "smtp", "echo", "cvm-validate", "accept"],
                    self.env({}, CVM_LOOKUP=PWFILE))
        self.assertTrue(s.line().startswith(b"220 "))
        s.send("MAIL FROM:<a@b.example>")
        s.line()
        s.send("RCPT TO:<alice@ex.org>")
        self.assertEqual(s.line(), b"250 Recipient='alice@ex.org'.")
        s.send("RCPT TO:<nobody@ex.org>")
        self.assertEqual(s.line(), b"553 5.1.1 Sorry, that recipient does not exist.")
        s.send("QUIT")
        s.finish(self)

    # ---- POP3 and IMAP (exec step: root) ----

    def need_root(self):
        if os.geteuid() != 0:
            self.skipTest("the exec step switches to the user: needs root")

    def pop3(self, module, how, password, initial, extra):
        env = self.env(extra)
        if how == "CRAM-MD5":
            env["CVM_SASL_CRAM_MD5"] = module["cram"]
        elif how != "USER":
            env["CVM_SASL_PLAIN"] = module["pw"]
        s = Session([harness.bin_path("pop3front-auth"), module["pw"], D["prog"]], env)
        self.assertTrue(s.line().startswith(b"+OK"))
        if how == "USER":
            s.send("USER alice")
            self.assertTrue(s.line().startswith(b"+OK"))
            s.send(b"PASS " + password)
            final = s.line()
        else:
            final = self.run_sasl(s, "AUTH", how, password, "+ ", initial)
        s.send("QUIT")
        cp = s.finish(self)
        return final, cp

    def test_pop3_every_method_transport_and_secret(self):
        self.need_root()
        for name, module in D["modules"].items():
            for extra in SECRET_ENVS:
                for how in ("USER", "PLAIN", "LOGIN", "CRAM-MD5"):
                    for initial in ((False, True) if how in ("PLAIN", "LOGIN") else (False,)):
                        with self.subTest(module=name, env=extra, how=how, initial=initial):
                            final, cp = self.pop3(module, how, WRONG, initial, extra)
                            self.assertTrue(final.startswith(b"-ERR"), final)
                            self.assertNotIn(EXECUTED, cp.stdout)
                            final, cp = self.pop3(module, how, PASSWORD, initial, extra)
                            self.assertEqual(final, EXECUTED, cp.stderr[-500:])

    def imap(self, module, how, password, initial, extra):
        env = self.env(extra, CVM_SASL_PLAIN=module["pw"])
        if how == "CRAM-MD5":
            env["CVM_SASL_CRAM_MD5"] = module["cram"]
        s = Session([harness.bin_path("imapfront-auth"), D["prog"]], env)
        self.assertTrue(s.line().startswith(b"* OK"))
        if how == "LOGIN-CMD":
            s.send(b"a1 LOGIN alice " + password)
            final = s.line()
        else:
            final = self.run_sasl(s, "a1 AUTHENTICATE", how, password, "+ ", initial)
        s.send("a2 LOGOUT")
        cp = s.finish(self)
        return final, cp

    def test_imap_every_method_transport_and_secret(self):
        self.need_root()
        for name, module in D["modules"].items():
            for extra in SECRET_ENVS:
                for how in ("LOGIN-CMD", "PLAIN", "LOGIN", "CRAM-MD5"):
                    for initial in ((False, True) if how in ("PLAIN", "LOGIN") else (False,)):
                        with self.subTest(module=name, env=extra, how=how, initial=initial):
                            final, cp = self.imap(module, how, WRONG, initial, extra)
                            self.assertTrue(final.startswith(b"a1 NO"), final)
                            self.assertNotIn(EXECUTED, cp.stdout)
                            final, cp = self.imap(module, how, PASSWORD, initial, extra)
                            self.assertEqual(final, EXECUTED, cp.stderr[-500:])


if __name__ == "__main__":
    unittest.main()
