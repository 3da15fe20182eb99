"""The scaffolding of the POP3 and IMAP authentication tests, one home for
test_pop3_auth.py, test_imap_auth.py, test_pop3_stls.py and
test_imap_starttls.py.

Users: a temporary directory with a password file for Debian's cvm-pwfile,
the users' homes with a maildir, the SHOW scripts that print what the
second stage was given, a fake CVM module; cvm_local() runs cvm-pwfile on a
UNIX socket.  AuthTest: the exec step needs root and cvm-pwfile (otherwise
the tests skip, as a non-root run cannot switch users); its reference()
runs Debian's 2.12 oracle with retries (a hang three times fails).

STARTTLS client side: make_cert()/drop_cert() (a throwaway certificate made
by openssl, once per module), client_context(), tls_env(), Direct (the
program on a socketpair the ssl module can wrap), s_client() (openssl
s_client -starttls).  Only the standard library, harness and servers.
"""
import base64
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import servers
from harness import base_env

PWFILE_CVM = "/usr/bin/cvm-pwfile"
UID, GID = 4711, 4712
PASSWORD = "s3cret pw"          # contains a space: PASS takes the rest of the line

SHOW = """#!/bin/sh
echo "+OK SHOW"
echo "ids $(id -ru) $(id -u) $(id -rg) $(id -g) groups=$(id -G)"
echo "cwd $(pwd -P)"
echo "args $*"
env | sort | sed 's/^/env /'
"""

# A CVM module (command mode) that answers every request with a fixed reply:
# used for facts cvm-pwfile cannot give (MAILBOX, DOMAIN, GIDS) and for
# modules that hang, die or talk garbage.
FAKE_CVM = """#!/usr/bin/python3
import os, sys, time
mode = os.environ.get("FAKE_CVM_MODE", "ok")
req = sys.stdin.buffer.read()
if mode == "hang":
    time.sleep(60)
if mode == "die":
    os.kill(os.getpid(), 9)
if mode == "garbage":
    sys.stdout.buffer.write(b"\\x00\\x05garbage"); sys.exit(0)
L = req[1]
rnd = req[2:2 + L]
creds = {}
i = 2 + L
while i < len(req) and req[i] != 0:
    t, n = req[i], req[i + 1]
    creds.setdefault(t, req[i + 2:i + 2 + n])
    i += 2 + n
with open(os.environ["FAKE_CVM_LOG"], "ab") as f:
    f.write(repr(sorted(creds.items())).encode() + b"\\n")
if creds.get(3, creds.get(6)) is None or (3 in creds and creds[3] != os.environ["FAKE_CVM_PASS"].encode()):
    sys.stdout.buffer.write(bytes([100, L]) + rnd + b"\\0"); sys.exit(100)
def fact(t, v):
    v = v.encode() if isinstance(v, str) else v
    return bytes([t, len(v)]) + v
home = os.environ["FAKE_CVM_HOME"]
out = bytes([0, L]) + rnd + fact(1, "vuser") + fact(2, os.environ["FAKE_CVM_UID"]) \\
    + fact(3, os.environ["FAKE_CVM_GID"]) + fact(4, "Virtual User") + fact(5, home) \\
    + fact(6, "/bin/false") + fact(7, "vgroup") + fact(8, "100") + fact(8, "101") \\
    + fact(14, "example.net") + fact(15, os.environ["FAKE_CVM_MAILBOX"]) + b"\\0"
sys.stdout.buffer.write(out)
"""


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class Users:
    """A password file for cvm-pwfile, the users' home directories with a
    maildir, the SHOW script and the fake CVM, under a fresh directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mftest.auth.")
        os.chmod(self.dir, 0o755)      # the user must reach its home
        self.home = os.path.join(self.dir, "home", "alice")
        self.maildir = os.path.join(self.home, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        with open(os.path.join(self.maildir, "new", "1000000000.M1P1.test"), "w") as f:
            f.write("From: a@example.com\nSubject: one\n\nfirst body\n")
        with open(os.path.join(self.maildir, "cur", "999999999.M2P2.test:2,"), "w") as f:
            f.write("From: b@example.com\nSubject: two\n\nsecond\n.dotted\n")
        os.chmod(os.path.join(self.dir, "home"), 0o755)
        for root, dirs, files in os.walk(self.home):
            os.chown(root, UID, GID)
            for n in files:
                os.chown(os.path.join(root, n), UID, GID)
        self.pwfile = os.path.join(self.dir, "passwd")
        with open(self.pwfile, "w") as f:
            f.write(f"alice:{PASSWORD}:{UID}:{GID}:Alice Example:{self.home}:/bin/sh\n")
            f.write(f"bob:bobpw:{UID + 1}:{GID}:Bob:{self.dir}/nonexistent:/bin/sh\n")
        self.show = self._script("show.sh", SHOW)
        self.fake_cvm = self._script("fake-cvm", FAKE_CVM)
        self.fake_log = os.path.join(self.dir, "fake-cvm.log")
        self.hang_cvm = self._script("hang-cvm", "#!/bin/sh\nexec sleep 60\n")

    def _script(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path

    def env(self, **extra):
        settings = dict(CVM_PWFILE_PATH=self.pwfile, FAKE_CVM_LOG=self.fake_log,
                        FAKE_CVM_PASS=PASSWORD, FAKE_CVM_UID=UID, FAKE_CVM_GID=GID,
                        FAKE_CVM_HOME=self.home, FAKE_CVM_MAILBOX=self.maildir)
        settings.update(extra)
        return base_env(**settings)

    def messages(self):
        """The contents of every message in the maildir (cur/, then new/)."""
        out = []
        for sub in ("cur", "new"):
            d = os.path.join(self.maildir, sub)
            for n in sorted(os.listdir(d)):
                with open(os.path.join(d, n), "rb") as f:
                    out.append(f.read())
        return out

    @contextlib.contextmanager
    def cvm_local(self, name):
        """cvm-pwfile serving this password file on the UNIX socket `name`
        in the directory; yields the CVM's name (cvm-local:PATH)."""
        sock = os.path.join(self.dir, name)
        srv = subprocess.Popen([PWFILE_CVM, "cvm-local:" + sock], env=self.env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            servers.wait_path(sock, 4)
            yield "cvm-local:" + sock
        finally:
            srv.kill()
            srv.wait()

    def cleanup(self):
        shutil.rmtree(self.dir, True)


def parse_show(out):
    """The SHOW script's lines: (ids, cwd, args, env dict)."""
    lines = out.decode("utf-8", "replace").splitlines()
    i = lines.index("+OK SHOW")
    info = {"env": {}}
    for line in lines[i + 1:]:
        key, _, rest = line.partition(" ")
        if key == "env":
            k, _, v = rest.partition("=")
            info["env"][k] = v
        else:
            info[key] = rest
    return info


DOVECOT_IMAP = "/usr/lib/dovecot/imap"

ISHOW = """#!/bin/sh
echo "$IMAPLOGINTAG OK SHOW"
echo "+OK SHOW"
echo "ids $(id -ru) $(id -u) $(id -rg) $(id -g) groups=$(id -G)"
echo "cwd $(pwd -P)"
echo "args $*"
env | sort | sed 's/^/env /'
"""

# Dovecot in pre-authenticated mode: run as the user with USER and HOME set
# (Dovecot reads IMAPLOGINTAG, mailfront's convention, and answers
# "TAG OK [CAPABILITY ...] Logged in" instead of a PREAUTH greeting; the
# variable must be listed in import_environment to survive doveconf).
DOVECOT_CONF = """protocols = imap
ssl = no
mail_location = maildir:~/Maildir
log_path = /dev/stderr
import_environment = TZ IMAPLOGINTAG
"""


def wait_log(srv, needle, seconds=10):
    """The server log once it contains needle (Dovecot logs at its exit,
    after the client saw LOGOUT's reply), or as it is after `seconds`."""
    end = time.time() + seconds
    log = srv.stderr.read()
    while needle not in log and time.time() < end:
        time.sleep(0.05)
        log = srv.stderr.read()
    return log


def require_exec_step():
    """Skips unless the exec step can run: it switches to the test user
    (root only) and authenticates with cvm-pwfile."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("the exec step needs root")
    if not os.path.exists(PWFILE_CVM):
        raise unittest.SkipTest("cvm-pwfile (Debian cvm) not installed")


class AuthTest(unittest.TestCase):
    """One Users for the class.  Subclasses define session(data, binary=,
    timeout=, **env) (a run of the front end) and REFERENCE (the 2.12
    program) for reference()."""

    REFERENCE = None

    @classmethod
    def setUpClass(cls):
        require_exec_step()
        cls.u = Users()

    @classmethod
    def tearDownClass(cls):
        cls.u.cleanup()

    def reference(self, script, **env):
        """The oracle's run.  It sometimes hangs on a CVM that exits without
        reading its input (a 2.12 bug), and a loaded machine makes it slow:
        tried three times, then the test fails (never a skip)."""
        for attempt in range(3):
            try:
                return self.session(script, binary=self.REFERENCE, timeout=10 * (attempt + 1), **env)
            except subprocess.TimeoutExpired:
                continue
        self.fail("the reference hung three times")


class TlsAuthTest(unittest.TestCase):
    """A fresh Users for every test (self.u), for the STARTTLS tests."""

    def setUp(self):
        require_exec_step()
        self.u = Users()
        self.addCleanup(self.u.cleanup)


TIMEOUT = 20
CERT = {}


def make_cert():
    if CERT:
        return CERT
    if not shutil.which("openssl"):
        raise unittest.SkipTest("openssl not installed")
    d = tempfile.mkdtemp(prefix="mftest.stls.")
    os.chmod(d, 0o755)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=mx.test",
                    "-addext", "subjectAltName=DNS:mx.test,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    CERT.update(dir=d, cert=cert, key=key)
    return CERT


def drop_cert():
    if CERT:
        shutil.rmtree(CERT["dir"], True)
        CERT.clear()


def client_context():
    ctx = ssl.create_default_context(cafile=CERT["cert"])
    return ctx


def tls_env(**extra):
    env = dict(TLS_CERTFILE=CERT["cert"], TLS_KEYFILE=CERT["key"])
    env.update(extra)
    return env


class Direct:
    """The program with fd 0/1 on one end of a socketpair: the test holds
    the other end (a real socket the ssl module can wrap), and sees the exit
    status and the log."""

    def __init__(self, argv, env):
        self.sock, child = socket.socketpair()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=self.log, env=env)
        child.close()
        self.sock.settimeout(TIMEOUT)
        self.f = self.sock.makefile("rb")
        self.tls = None

    def send(self, data):
        (self.tls or self.sock).sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        return self.f.readline()

    def start_tls(self, hostname="mx.test"):
        self.tls = client_context().wrap_socket(self.sock, server_hostname=hostname)
        self.f = self.tls.makefile("rb")

    def rest(self):
        try:
            return self.f.read()
        except ConnectionResetError:     # closed with our bytes unread
            return None

    def finish(self, tc):
        try:
            self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.f.close()
            (self.tls or self.sock).close()
        self.log.seek(0)
        err = self.log.read()
        self.log.close()
        tc.assertNotIn(b"AddressSanitizer", err)
        tc.assertNotIn(b"runtime error:", err)
        return self.proc.returncode, err

    def bad_handshake(self, tc, garbage, replies):
        """After `replies` lines (ending with the STARTTLS go-ahead), sends
        `garbage` instead of a client hello and closes the sending side;
        returns (exit status, log)."""
        for _ in range(replies):
            self.line()
        self.send(garbage)
        self.sock.shutdown(socket.SHUT_WR)
        self.rest()
        return self.finish(tc)


def s_client(proto, port, data):
    """openssl s_client -starttls `proto` to 127.0.0.1:port, verifying our
    certificate for mx.test, with `data` as the client's input."""
    return subprocess.run(["openssl", "s_client", "-starttls", proto, "-connect", f"127.0.0.1:{port}",
                           "-CAfile", CERT["cert"], "-verify_return_error", "-quiet", "-servername", "mx.test"],
                          input=data, capture_output=True, timeout=60)
