"""Shared helpers for mailfront's Python tests.

Binaries are always taken from $MF_BUILD (bin/, lib/), never from PATH.
Everything here uses only the standard library.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BUILD = os.environ.get("MF_BUILD", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build"))
BIN = os.path.join(BUILD, "bin")
LIB = os.path.join(BUILD, "lib")
SANITIZED = bool(os.environ.get("MF_SANITIZED"))
REFERENCE = "/usr/sbin/mailfront"   # Debian's original, used only as an oracle


def bin_path(name):
    return os.path.join(BIN, name)


# The ESMTP extensions added after 2.12 (CHUNKING, SMTPUTF8, LIMITS) change
# the EHLO reply, which many transcripts and the differential tests against
# 2.12 pin.  Sessions run with them switched off unless a test passes the
# variable (test_smtp_esmtp.py tests them, on by default, with
# ESMTP_DEFAULTS).
LEGACY_EHLO = {"SMTP_CHUNKING": "0", "SMTP_SMTPUTF8": "0", "SMTP_LIMITS": "0"}
ESMTP_DEFAULTS = {k: None for k in LEGACY_EHLO}


def base_env(**extra):
    """A clean environment for a session: only what we set."""
    env = {"PATH": "/usr/bin:/bin", "MODULE_PATH": LIB}
    env.update(LEGACY_EHLO)
    if SANITIZED:
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:exitcode=99"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=98"
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run(argv, data=b"", env=None, timeout=60, cwd=None):
    """Run argv with data on stdin; returns CompletedProcess (bytes)."""
    return subprocess.run(argv, input=data, env=env if env is not None else base_env(),
                          capture_output=True, timeout=timeout, cwd=cwd)


def mailfront(args, data=b"", timeout=60, cwd=None, **envvars):
    return run([bin_path("mailfront")] + list(args), data, base_env(**envvars), timeout, cwd)


def reference_available():
    return os.path.exists(REFERENCE) and os.path.isdir("/usr/lib/mailfront")


def assert_no_sanitizer_report(tc, proc):
    err = proc.stderr.decode("utf-8", "replace") if isinstance(proc.stderr, bytes) else proc.stderr
    tc.assertNotIn("AddressSanitizer", err)
    tc.assertNotIn("runtime error:", err)
    tc.assertNotIn(proc.returncode, (98, 99), err)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


@contextlib.contextmanager
def reaped(p):
    """Yields the Popen p; on leaving (also by an exception) p is killed if
    it still runs, reaped, and the pipes it was given are closed."""
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                f.close()


def idle_session(argv, env, sent=b"", timeout=30):
    """Runs argv, writes `sent` and then stays silent with its input open
    until the program ends by itself (its timeout, within `timeout`
    seconds); returns (exit status, output, log)."""
    with tempfile.TemporaryFile() as log:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        with reaped(p):
            p.stdin.write(sent)
            p.stdin.flush()
            out = p.stdout.read()
            p.wait(timeout=timeout)
        log.seek(0)
        return p.returncode, out, log.read()


def send_all_read_all(sock, data):
    """Sends data on a connected socket (with its deadline set), closes the
    sending side and returns everything the peer sends until it closes."""
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return got
        got += chunk


def read_shared(f):
    """Everything written so far to file f, which a running process also
    writes (its stderr): pread, because the file offset is shared and
    seek + read would move it back under that process's next write."""
    fd = f.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


class _Log:
    """stderr of a server: written to an unlinked temporary file; read()
    returns everything written so far."""

    def __init__(self):
        self.file = tempfile.TemporaryFile()

    def read(self):
        return read_shared(self.file)

    def close(self):
        self.file.close()


@contextlib.contextmanager
def tcpserver(argv, env=None, port=None, limit=40):
    """Start ucspi-tcp's tcpserver on 127.0.0.1 running argv per connection."""
    tcps = shutil.which("tcpserver")
    if not tcps:
        raise unittest.SkipTest("tcpserver (ucspi-tcp) not installed")
    port = port or free_port()
    log = _Log()
    p = subprocess.Popen([tcps, "-q", "-R", "-H", "-c", str(limit), "-l", "mx.test",
                          "127.0.0.1", str(port)] + list(argv),
                         env=env if env is not None else base_env(),
                         stdout=subprocess.DEVNULL, stderr=log.file, start_new_session=True)
    p.stderr = log   # the servers' log: a file, so a busy server never blocks on it
    try:
        wait_port(port)
        yield port, p
    finally:
        stop_process(p, 5)


def stop_process(p, timeout=5):
    """SIGTERM to the process group of p (started with
    start_new_session=True), SIGKILL after `timeout` seconds; reaped."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


class TempDirTest(unittest.TestCase):
    """A TestCase with self.tmp, a fresh directory removed afterwards."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mftest.")
        self.addCleanup(shutil.rmtree, self.tmp, True)


STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "qmail_queue_standin.py")


def replies(p):
    """The non-empty reply lines of a finished SMTP session."""
    return [l for l in p.stdout.decode("utf-8", "replace").split("\r\n") if l]


def end_of_data(p):
    """The reply to the end of DATA (the one before 221)."""
    r = replies(p)
    return r[-2] if len(r) >= 2 else ""


class StandinTest(TempDirTest):
    """A TempDirTest whose deliver() runs an SMTP session into the qmail
    back end with the queue stand-in (tests/qmail_queue_standin.py)."""

    def deliver(self, modules, data, timeout=60, **env):
        """mailfront `modules` (after "smtp qmail") on `data`; returns the
        process and the bytes the stand-in was given (None: not queued)."""
        out = os.path.join(self.tmp, "qq")
        if os.path.exists(out + ".msg"):
            os.unlink(out + ".msg")
        settings = {"QMAILHOME": self.tmp, "QMAILQUEUE": STANDIN, "QQ_OUT": out}
        settings.update(env)
        p = mailfront(["smtp", "qmail"] + list(modules), data, timeout=timeout, **settings)
        assert_no_sanitizer_report(self, p)
        msg = None
        if os.path.exists(out + ".msg"):
            with open(out + ".msg", "rb") as f:
                msg = f.read()
        return p, msg
