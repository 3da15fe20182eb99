"""TLS: the built-in STARTTLS of the SMTP front end (GnuTLS, tls/tls.c),
$TLS_IMMEDIATE (SMTPS) and the starttls-ucspi plugin.

protocols.md "Built-in STARTTLS (2.22; GnuTLS)", plugins.md
"starttls-ucspi", driver.md session items tls_*, compat-checklist items
34 and 56.  The test certificate and DH parameters are made with openssl
in a temporary directory.  Real clients talk to our mailfront: Python's
ssl/smtplib, swaks --tls and openssl s_client -starttls smtp over
tcpserver on 127.0.0.1, and Python's ssl over plain stdin/stdout pipes
(memory BIOs).  The session items are read back by a small test plugin
compiled here against include/mailfront/mailfront.h.

Every network step has a timeout; every server is stopped by its pid.
"""
import os
import select
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import harness
from harness import assert_no_sanitizer_report
from test_smtp_session import LOCAL, GREET, NOTIMPL, OK, QUIT, MAIL_FIRST, crlf, log_lines, smtp, wire

TIMEOUT = 15
READY = "220 2.0.0 Ready to start TLS"
EHLO_PLAIN = [f"250-{LOCAL}", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250 PIPELINING"]
EHLO_TLS = [f"250-{LOCAL}", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-PIPELINING", "250 STARTTLS"]
PIPELINED = "500 5.5.1 Unexpected pipelined commands following STARTTLS"

D = {}   # module fixtures: paths of cert, key, DH params, test plugin

PLUGIN_C = r"""
#include <mailfront/mailfront.h>
#include <stdio.h>
/* Answers MAIL with the TLS session items and the HELO domain. */
static char buf[2048];
static const char* s(const char* name) { const char* v = session_getstr(name); return v ? v : "-"; }
static const response* sender(str* a, str* p)
{
  static response r;
  unsigned long st = 0;
  (void)a; (void)p;
  snprintf(buf, sizeof buf, "state=%s|params=%s|proto=%s|kx=%s|cipher=%s|mac=%s|helo=%s",
           session_hasnum("tls_state", &st) ? (st == 1 ? "1" : "?") : "-",
           s("tls_params"), s("tls_protocol"), s("tls_keyex"), s("tls_cipher"), s("tls_mac"),
           s("helo_domain"));
  r.number = 250;
  r.message = buf;
  return &r;
}
static const response* recipient(str* a, str* p) { (void)a; (void)p; static RESPONSE(ok, 250, "rcpt ok"); return &resp_ok; }
struct plugin plugin = { .version = PLUGIN_VERSION, .sender = sender, .recipient = recipient };
"""


def setUpModule():
    if not shutil.which("openssl"):
        raise unittest.SkipTest("openssl not installed")
    d = tempfile.mkdtemp(prefix="mftls.")
    D["dir"] = d
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=mx.test",
                    "-addext", "subjectAltName=DNS:mx.test,IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    both = os.path.join(d, "both.pem")
    with open(both, "wb") as f:
        f.write(open(cert, "rb").read() + open(key, "rb").read())
    other_key = os.path.join(d, "otherkey.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", other_key], check=True, capture_output=True, timeout=60)
    dh = os.path.join(d, "dh.pem")
    subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048",
                    "-out", dh], check=True, capture_output=True, timeout=60)
    garbage = os.path.join(d, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("-----BEGIN DH PARAMETERS-----\nnot base64 !!\n-----END DH PARAMETERS-----\n")
    plugdir = os.path.join(d, "lib")
    os.mkdir(plugdir)
    for name in os.listdir(harness.LIB):
        os.symlink(os.path.join(harness.LIB, name), os.path.join(plugdir, name))
    src = os.path.join(d, "tlsitems.c")
    with open(src, "w") as f:
        f.write(PLUGIN_C)
    inc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "include")
    san = ["-fsanitize=address,undefined"] if harness.SANITIZED else []
    subprocess.run(["cc", "-std=c11", "-shared", "-fPIC", "-I", inc] + san +
                   ["-o", os.path.join(plugdir, "plugin-tlsitems.so"), src],
                   check=True, capture_output=True, timeout=60)
    D.update(cert=cert, key=key, both=both, other_key=other_key, dh=dh, garbage=garbage, lib=plugdir)


def tearDownModule():
    if "dir" in D:
        shutil.rmtree(D["dir"], True)


def tls_env(**extra):
    env = {"TLS_CERTFILE": D["cert"], "TLS_KEYFILE": D["key"], "TCPLOCALHOST": LOCAL,
           "MODULE_PATH": D["lib"]}
    env.update(extra)
    return env


def client_context():
    ctx = ssl.create_default_context(cafile=D["cert"])
    return ctx


def items(reply_text):
    """Parse the test plugin's MAIL reply into a dict."""
    out = {}
    for part in reply_text.split("|"):
        k, _, v = part.partition("=")
        out[k] = v
    return out


class PipeTLS:
    """A TLS client over a child's stdin/stdout pipes (ssl memory BIOs)."""

    def __init__(self, proc):
        self.proc = proc
        self.plain = b""

    def send_plain(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _read_raw(self, deadline):
        fd = self.proc.stdout.fileno()
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from the server")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            raise TimeoutError("no data from the server")
        return os.read(fd, 65536)

    def read_plain_line(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.plain:
            chunk = self._read_raw(deadline)
            if not chunk:
                raise EOFError("server closed")
            self.plain += chunk
        line, _, self.plain = self.plain.partition(b"\n")
        return line.rstrip(b"\r").decode("latin-1")

    def start_tls(self, ctx, timeout=TIMEOUT):
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=False, server_hostname=LOCAL)
        deadline = time.monotonic() + timeout
        if self.plain:
            raise AssertionError(f"server sent plaintext before the handshake: {self.plain!r}")
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._pump(deadline)
        self._flush()
        self.tbuf = b""

    def _flush(self):
        data = self.out.read()
        if data:
            self.send_plain(data)

    def _pump(self, deadline):
        self._flush()
        chunk = self._read_raw(deadline)
        if not chunk:
            self.inc.write_eof()
        self.inc.write(chunk)

    def send(self, data):
        self.obj.write(data)
        self._flush()

    def read_line(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.tbuf:
            try:
                chunk = self.obj.read(65536)
                if not chunk:
                    raise EOFError("TLS closed")
                self.tbuf += chunk
            except ssl.SSLWantReadError:
                self._pump(deadline)
        line, _, self.tbuf = self.tbuf.partition(b"\n")
        return line.rstrip(b"\r").decode("latin-1")

    def read_reply(self):
        lines = [self.read_line()]
        while lines[-1][3:4] == "-":
            lines.append(self.read_line())
        return lines


def start_pipe(args=("smtp", "echo", "tlsitems"), **env):
    return subprocess.Popen([harness.bin_path("mailfront")] + list(args), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=harness.base_env(**tls_env(**env)))


def finish(tc, p, rc=0):
    try:
        p.stdin.close()
    except OSError:
        pass
    err = p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    status = p.wait(timeout=TIMEOUT)
    cp = subprocess.CompletedProcess(p.args, status, b"", err)
    assert_no_sanitizer_report(tc, cp)
    tc.assertEqual(status, rc, err)
    return log_lines(cp)


class TLSOffer(unittest.TestCase):
    """Whether STARTTLS is offered, and the start-up log lines."""

    def session(self, data=crlf("EHLO c", "STARTTLS", "QUIT"), **env):
        p = smtp(data, **tls_env(**env))
        assert_no_sanitizer_report(self, p)
        return p

    def test_tls_not_configured(self):
        p = self.session(TLS_CERTFILE=None, TLS_KEYFILE=None)
        self.assertEqual(p.stdout, wire(GREET, *EHLO_PLAIN, NOTIMPL, QUIT))
        self.assertFalse([l for l in log_lines(p) if "TLS" in l], p.stderr)

    def test_tls_offered_last_in_ehlo(self):
        p = self.session(crlf("EHLO c", "HELO c", "QUIT"))
        self.assertEqual(p.stdout, wire(GREET, *EHLO_TLS, f"250 {LOCAL}", QUIT))
        self.assertEqual(p.returncode, 0)

    def test_tls_keyfile_defaults_to_certfile(self):
        p = self.session(crlf("EHLO c", "QUIT"), TLS_CERTFILE=D["both"], TLS_KEYFILE=None)
        self.assertEqual(p.stdout, wire(GREET, *EHLO_TLS, QUIT))

    def test_tls_empty_keyfile_disables(self):
        p = self.session(TLS_KEYFILE="")
        self.assertEqual(p.stdout, wire(GREET, *EHLO_PLAIN, NOTIMPL, QUIT))

    def test_tls_empty_certfile_disables(self):
        p = self.session(TLS_CERTFILE="")
        self.assertEqual(p.stdout, wire(GREET, *EHLO_PLAIN, NOTIMPL, QUIT))

    def check_bad(self, prefix, **env):
        p = self.session(**env)
        self.assertEqual(p.stdout, wire(GREET, *EHLO_PLAIN, NOTIMPL, QUIT))
        self.assertEqual(p.returncode, 0)
        lines = [l for l in log_lines(p) if l.startswith(prefix)]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertGreater(len(lines[0]), len(prefix))

    def test_tls_missing_cert_logged(self):
        self.check_bad("TLS init failed: ", TLS_CERTFILE=os.path.join(D["dir"], "nonexistent.pem"))

    def test_tls_wrong_key_logged(self):
        self.check_bad("TLS init failed: ", TLS_KEYFILE=D["other_key"])

    def test_tls_bad_priority_logged(self):
        self.check_bad("TLS priority error: ", TLS_PRIORITY="NONSENSE:+NOTHING")

    def test_tls_missing_dh_logged(self):
        self.check_bad("TLS error reading DH params: ", TLS_DH_PARAMS=os.path.join(D["dir"], "nodh.pem"))
        # in the system's words, as the original (issue 10 item 6)
        p = self.session(TLS_DH_PARAMS=os.path.join(D["dir"], "nodh.pem"))
        self.assertIn("TLS error reading DH params: No such file or directory", log_lines(p))

    def test_tls_garbage_dh_logged(self):
        self.check_bad("TLS error parsing DH params: ", TLS_DH_PARAMS=D["garbage"])

    def test_tls_good_dh_and_compat_offered(self):
        p = self.session(crlf("EHLO c", "QUIT"), TLS_DH_PARAMS=D["dh"], TLS_COMPAT="", TLS_PRIORITY="NORMAL:-VERS-TLS1.3")
        self.assertEqual(p.stdout, wire(GREET, *EHLO_TLS, QUIT))
        self.assertFalse([l for l in log_lines(p) if "TLS" in l], p.stderr)

    def test_tls_handshake_failure_exit_1(self):
        p = self.session(crlf("EHLO c", "STARTTLS") + b"this is not a TLS client hello\r\n" * 3)
        self.assertEqual(p.stdout, wire(GREET, *EHLO_TLS, READY))
        self.assertEqual(p.returncode, 1)
        logs = log_lines(p)
        self.assertIn("Starting TLS handshake", logs)
        self.assertTrue([l for l in logs if l.startswith("TLS handshake failed: ")], p.stderr)

    def test_tls_handshake_eof_exit_1(self):
        p = self.session(crlf("EHLO c", "STARTTLS"))
        self.assertEqual(p.stdout, wire(GREET, *EHLO_TLS, READY))
        self.assertEqual(p.returncode, 1)

    def test_tls_handshake_timeout(self):
        # The client says STARTTLS and then nothing: $TIMEOUT bounds the handshake.
        p = subprocess.Popen([harness.bin_path("mailfront"), "smtp", "echo", "accept"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=harness.base_env(**tls_env(TIMEOUT="1", MODULE_PATH=harness.LIB)))
        try:
            p.stdin.write(crlf("STARTTLS"))
            p.stdin.flush()
            p.wait(timeout=TIMEOUT)          # stdin stays open: no EOF
            out, err = p.communicate(timeout=TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 1, err)
        self.assertIn(wire(READY), out)
        self.assertIn(b"TLS handshake failed: timed out", err)

    def test_tls_immediate_failure_exit_1(self):
        p = self.session(crlf("EHLO c"), TLS_IMMEDIATE="")
        self.assertEqual(p.stdout, b"")
        self.assertEqual(p.returncode, 1)
        self.assertTrue([l for l in log_lines(p) if l.startswith("TLS handshake failed: ")], p.stderr)

    def test_tls_immediate_without_config_is_plain(self):
        p = self.session(crlf("EHLO c", "QUIT"), TLS_IMMEDIATE="", TLS_CERTFILE=None)
        self.assertEqual(p.stdout, wire(GREET, *EHLO_PLAIN, QUIT))


class TLSPipes(unittest.TestCase):
    """Python's ssl over the stdin/stdout pipes of one mailfront process."""

    def test_tls_starttls_over_pipes_resets_state(self):
        p = start_pipe()
        c = PipeTLS(p)
        try:
            self.assertEqual(c.read_plain_line(), GREET)
            c.send_plain(crlf("EHLO before.example", "MAIL FROM:<a@b.example>"))
            self.assertEqual([c.read_plain_line() for _ in EHLO_TLS], EHLO_TLS)
            before = items(c.read_plain_line()[4:])
            self.assertEqual(before["state"], "-")
            self.assertEqual(before["params"], "-")
            self.assertEqual(before["helo"], "before.example")
            c.send_plain(crlf("STARTTLS"))
            self.assertEqual(c.read_plain_line(), READY)
            c.start_tls(client_context())
            # the transaction was forgotten: RCPT needs a new MAIL
            c.send(crlf("RCPT TO:<c@d.example>"))
            self.assertEqual(c.read_reply(), [MAIL_FIRST])
            c.send(crlf("MAIL FROM:<a@b.example>"))
            after = items(c.read_reply()[0][4:])
            self.assertEqual(after["state"], "1")
            self.assertEqual(after["helo"], "-")     # the HELO domain was forgotten
            self.assertEqual(after["proto"], c.obj.version().replace("v", ""))
            self.assertEqual(after["params"], " ".join([after["proto"], after["kx"], after["cipher"], after["mac"]]))
            self.assertNotIn("unknown", after["params"].split()[:3])
            c.send(crlf("EHLO after.example"))
            self.assertEqual(c.read_reply(), EHLO_PLAIN)        # no STARTTLS any more
            c.send(crlf("STARTTLS"))
            self.assertEqual(c.read_reply(), [NOTIMPL])
            c.send(crlf("MAIL FROM:<x@y.example>"))
            self.assertEqual(items(c.read_reply()[0][4:])["helo"], "after.example")
            c.send(crlf("QUIT"))
            self.assertEqual(c.read_reply(), [QUIT])
        finally:
            logs = finish(self, p)
        self.assertIn("Starting TLS handshake", logs)
        hs = [l for l in logs if l.startswith("TLS handshake: ")]
        self.assertEqual(hs, ["TLS handshake: " + after["params"]])

    def test_tls_injection_discarded_over_pipes(self):
        """CVE-2011-0411: commands in the same packet as STARTTLS are dropped."""
        p = start_pipe(("smtp", "echo", "accept"))
        c = PipeTLS(p)
        try:
            self.assertEqual(c.read_plain_line(), GREET)
            c.send_plain(crlf("EHLO c"))
            self.assertEqual([c.read_plain_line() for _ in EHLO_TLS], EHLO_TLS)
            c.send_plain(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x>\r\n")
            self.assertEqual(c.read_plain_line(), READY)
            c.start_tls(client_context())
            c.send(crlf("NOOP", "QUIT"))
            # only NOOP's and QUIT's replies: RSET and MAIL never ran
            self.assertEqual(c.read_reply(), [OK])
            self.assertEqual(c.read_reply(), [QUIT])
        finally:
            logs = finish(self, p)
        self.assertFalse([l for l in logs if "evil" in l], logs)
        self.assertTrue([l for l in logs if "discarded" in l and "bytes" in l], logs)


class TLSOverTCP(unittest.TestCase):
    """Real clients against mailfront under tcpserver on 127.0.0.1."""

    def server(self, plugins=("tlsitems",), backend="echo", **env):
        return harness.tcpserver([harness.bin_path("mailfront"), "smtp", backend] + list(plugins),
                                 env=harness.base_env(**tls_env(**env)))

    def check_log(self, proc):
        err = proc.stderr.read().decode("latin-1")
        self.assertNotIn("AddressSanitizer", err)
        self.assertNotIn("runtime error:", err)
        return err

    def test_tls_smtplib_starttls(self):
        with self.server() as (port, proc):
            with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=TIMEOUT) as s:
                s.ehlo()
                self.assertTrue(s.has_extn("starttls"))
                code, _ = s.starttls(context=client_context())   # verifies 127.0.0.1
                self.assertEqual(code, 220)
                s.ehlo()
                self.assertFalse(s.has_extn("starttls"))
                code, text = s.mail("a@b.example")
                self.assertEqual(code, 250)
                it = items(text.decode())
                self.assertEqual(it["state"], "1")
                self.assertEqual(it["helo"], "client.example")
                self.assertTrue(it["proto"].startswith("TLS1."))
                s.rcpt("c@d.example")
                code, _ = s.data(b"Subject: t\r\n\r\nover TLS\r\n")
                self.assertEqual(code, 250)
            time.sleep(0.2)
            err = self.check_log(proc)
        self.assertIn("TLS handshake: TLS1.", err)
        self.assertIn("Subject: t", err)      # the echo back end logs the first line

    def test_tls_immediate_smtps(self):
        with self.server(TLS_IMMEDIATE="1") as (port, proc):
            ctx = client_context()
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
                with ctx.wrap_socket(raw, server_hostname=LOCAL) as t:
                    f = t.makefile("rb")
                    self.assertEqual(f.readline(), wire(GREET))
                    t.sendall(crlf("EHLO c", "STARTTLS", "MAIL FROM:<a@b>", "QUIT"))
                    got = [f.readline().rstrip(b"\r\n").decode() for _ in range(len(EHLO_PLAIN) + 3)]
                    self.assertEqual(got[:len(EHLO_PLAIN)], EHLO_PLAIN)   # not offered again
                    self.assertEqual(got[len(EHLO_PLAIN)], NOTIMPL)
                    it = items(got[-2][4:])
                    self.assertEqual(it["state"], "1")                  # counts as STARTTLS
                    self.assertEqual(it["proto"], t.version().replace("v", ""))
                    self.assertEqual(got[-1], QUIT)
            time.sleep(0.2)
            err = self.check_log(proc)
        self.assertIn("TLS handshake: TLS1.", err)

    def test_tls_injection_single_packet_tcp(self):
        with self.server(("accept",)) as (port, proc):
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
                f = raw.makefile("rb")
                self.assertEqual(f.readline(), wire(GREET))
                raw.sendall(b"EHLO c\r\nSTARTTLS\r\nRSET\r\n")
                for line in EHLO_TLS:
                    self.assertEqual(f.readline(), wire(line))
                self.assertEqual(f.readline(), wire(READY))
                with client_context().wrap_socket(raw, server_hostname=LOCAL) as t:
                    t.sendall(crlf("QUIT"))
                    tf = t.makefile("rb")
                    self.assertEqual(tf.readline(), wire(QUIT))   # not RSET's 250
            time.sleep(0.2)
            self.check_log(proc)

    def test_tls_swaks(self):
        swaks = shutil.which("swaks")
        if not swaks:
            self.skipTest("swaks not installed")
        with self.server(("accept",)) as (port, proc):
            p = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(port), "--tls",
                                "--from", "a@b.example", "--to", "c@d.example", "--helo", "swaks.example",
                                "--body", "swaks over tls", "--timeout", str(TIMEOUT)],
                               capture_output=True, timeout=60)
            out = p.stdout.decode("latin-1")
            self.assertEqual(p.returncode, 0, out + p.stderr.decode("latin-1"))
            self.assertIn("STARTTLS", out)
            self.assertIn("TLS started", out)
            self.assertIn("<~  250 Received", out)
            time.sleep(0.2)
            err = self.check_log(proc)
        self.assertIn("TLS handshake: ", err)
        self.assertIn("Date: ", err)          # the echo back end logs the first line

    def test_tls_openssl_s_client(self):
        with self.server(("accept",), TLS_PRIORITY="NORMAL:-VERS-TLS1.3") as (port, proc):
            p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{port}",
                                "-CAfile", D["cert"], "-verify_return_error", "-quiet",
                                "-servername", LOCAL],
                               input=crlf("EHLO s.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA",
                                          "s_client body", ".", "QUIT"),
                               capture_output=True, timeout=60)
            out = p.stdout.decode("latin-1")
            self.assertIn("250 Received 14 bytes.", out, p.stderr.decode("latin-1"))
            self.assertIn("221 2.0.0 Good bye.", out)
            time.sleep(0.2)
            err = self.check_log(proc)
        self.assertIn("TLS handshake: TLS1.2 ", err)     # $TLS_PRIORITY is honoured
        self.assertIn("s_client body", err)   # the echo back end logs the first line


class FakeSSLServer:
    """An ucspi-tls wrapper stand-in (the sslserver -y protocol): the child
    gets plain stdin/stdout pipes plus $SSLCTLFD (it writes "y" there to
    start TLS), $SSLREADFD and $SSLWRITEFD (the 'decrypted' streams, here
    plain pipes that the test talks through after the switch)."""

    def __init__(self, tc, plugins=("starttls-ucspi", "tlsitems"), drop=(), **env):
        self.ctl_r, ctl_w = os.pipe()
        tin_r, self.tin_w = os.pipe()
        self.tout_r, tout_w = os.pipe()
        fds = {"SSLCTLFD": ctl_w, "SSLREADFD": tin_r, "SSLWRITEFD": tout_w}
        e = {"UCSPITLS": "", "TCPLOCALHOST": LOCAL, "MODULE_PATH": D["lib"]}
        e.update({k: str(v) for k, v in fds.items()})
        for k in drop:
            e.pop(k, None)
        e.update(env)
        self.p = subprocess.Popen([harness.bin_path("mailfront"), "smtp", "echo"] + list(plugins),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=harness.base_env(**e), pass_fds=tuple(fds.values()))
        for fd in fds.values():
            os.close(fd)
        self.plain = PipeTLS(self.p)
        self.buf = b""
        tc.addCleanup(self.close)

    def close(self):
        for fd in (self.ctl_r, self.tin_w, self.tout_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def read_ctl(self):
        r, _, _ = select.select([self.ctl_r], [], [], TIMEOUT)
        return os.read(self.ctl_r, 16) if r else b""

    def send(self, data):
        os.write(self.tin_w, data)

    def read_line(self):
        while b"\n" not in self.buf:
            r, _, _ = select.select([self.tout_r], [], [], TIMEOUT)
            if not r:
                raise TimeoutError("nothing on SSLWRITEFD")
            chunk = os.read(self.tout_r, 65536)
            if not chunk:
                raise EOFError("SSLWRITEFD closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("latin-1")


EHLO_UCSPI = [f"250-{LOCAL}", "250-STARTTLS", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250 PIPELINING"]


class TLSUcspi(unittest.TestCase):
    """plugin-starttls-ucspi against a fake sslserver (plugins.md)."""

    def test_tls_ucspi_switch_and_pipelined_500(self):
        f = FakeSSLServer(self)
        c = f.plain
        self.assertEqual(c.read_plain_line(), GREET)
        c.send_plain(crlf("EHLO before.example", "MAIL FROM:<a@b>"))
        self.assertEqual([c.read_plain_line() for _ in EHLO_UCSPI], EHLO_UCSPI)
        self.assertEqual(items(c.read_plain_line()[4:])["state"], "-")
        c.send_plain(b"STARTTLS\r\nRSET\r\n")          # one write: RSET is pipelined
        self.assertEqual(c.read_plain_line(), READY)
        self.assertEqual(f.read_ctl(), b"y")
        self.assertEqual(f.read_line(), PIPELINED)      # RSET was not executed
        f.send(crlf("RCPT TO:<c@d>"))
        self.assertEqual(f.read_line(), MAIL_FIRST)     # the transaction was forgotten
        f.send(crlf("EHLO after.example"))
        self.assertEqual([f.read_line() for _ in EHLO_PLAIN], EHLO_PLAIN)
        f.send(crlf("STARTTLS"))
        self.assertEqual(f.read_line(), NOTIMPL)        # no longer available
        f.send(crlf("MAIL FROM:<a@b>"))
        it = items(f.read_line()[4:])
        self.assertEqual(it["state"], "1")
        self.assertEqual(it["helo"], "after.example")
        f.send(crlf("QUIT"))
        self.assertEqual(f.read_line(), QUIT)
        self.assertEqual(f.p.stdout.read(), b"")        # nothing more in plaintext
        logs = finish(self, f.p)
        self.assertFalse([l for l in logs if "TLS handshake" in l], logs)

    def test_tls_ucspi_no_pipelining_no_500(self):
        f = FakeSSLServer(self)
        c = f.plain
        self.assertEqual(c.read_plain_line(), GREET)
        c.send_plain(crlf("STARTTLS"))
        self.assertEqual(c.read_plain_line(), READY)
        self.assertEqual(f.read_ctl(), b"y")
        f.send(crlf("NOOP", "QUIT"))
        self.assertEqual([f.read_line(), f.read_line()], [OK, QUIT])
        finish(self, f.p)

    def test_tls_ucspi_with_parameter_501(self):
        f = FakeSSLServer(self)
        c = f.plain
        self.assertEqual(c.read_plain_line(), GREET)
        c.send_plain(crlf("STARTTLS now", "QUIT"))
        self.assertEqual(c.read_plain_line(), "501 5.5.2 Syntax error, command requires a parameter.")
        self.assertEqual(c.read_plain_line(), QUIT)
        finish(self, f.p)

    def test_tls_ucspi_unavailable_without_ucspitls(self):
        f = FakeSSLServer(self, drop=("UCSPITLS",))
        c = f.plain
        self.assertEqual(c.read_plain_line(), GREET)
        c.send_plain(crlf("EHLO c", "STARTTLS", "QUIT"))
        self.assertEqual([c.read_plain_line() for _ in EHLO_PLAIN], EHLO_PLAIN)
        self.assertEqual([c.read_plain_line(), c.read_plain_line()], [NOTIMPL, QUIT])
        finish(self, f.p)

    def test_tls_ucspi_missing_fd_exit_1(self):
        f = FakeSSLServer(self, drop=("SSLWRITEFD",))
        c = f.plain
        self.assertEqual(c.read_plain_line(), GREET)
        c.send_plain(crlf("STARTTLS"))
        self.assertEqual(c.read_plain_line(), READY)
        finish(self, f.p, rc=1)

    def test_tls_ucspi_takes_precedence_over_builtin(self):
        f = FakeSSLServer(self, TLS_CERTFILE=D["cert"], TLS_KEYFILE=D["key"])
        c = f.plain
        self.assertEqual(c.read_plain_line(), GREET)
        c.send_plain(crlf("EHLO c"))                  # STARTTLS listed once
        self.assertEqual([c.read_plain_line() for _ in EHLO_UCSPI], EHLO_UCSPI)
        c.send_plain(crlf("STARTTLS"))
        self.assertEqual(c.read_plain_line(), READY)
        self.assertEqual(f.read_ctl(), b"y")
        f.send(crlf("EHLO x", "QUIT"))                 # tls_state set: built-in not offered
        self.assertEqual([f.read_line() for _ in EHLO_PLAIN], EHLO_PLAIN)
        self.assertEqual(f.read_line(), QUIT)
        logs = finish(self, f.p)
        self.assertNotIn("Starting TLS handshake", logs)


class TLSAuthRequiresTLS(unittest.TestCase):
    """cvm-authenticate's $AUTH_REQUIRES_TLS sees tls_state from STARTTLS
    and from $TLS_IMMEDIATE (compat-checklist 34: immediate counts)."""

    def setUp(self):
        if not os.path.exists(os.path.join(harness.LIB, "plugin-cvm-authenticate.so")):
            self.skipTest("plugin-cvm-authenticate not built")

    def test_tls_auth_only_after_starttls(self):
        p = start_pipe(("smtp", "echo", "cvm-authenticate", "accept"), CVM_SASL_PLAIN="/bin/false",
                       AUTH_REQUIRES_TLS="")
        c = PipeTLS(p)
        try:
            self.assertEqual(c.read_plain_line(), GREET)
            c.send_plain(crlf("EHLO c"))
            self.assertEqual([c.read_plain_line() for _ in EHLO_TLS], EHLO_TLS)     # no AUTH
            c.send_plain(crlf("STARTTLS"))
            self.assertEqual(c.read_plain_line(), READY)
            c.start_tls(client_context())
            c.send(crlf("EHLO c"))
            ehlo = c.read_reply()
            self.assertTrue([l for l in ehlo if l[4:].startswith("AUTH ")], ehlo)
            self.assertNotIn("250 STARTTLS", ehlo)
            c.send(crlf("QUIT"))
            self.assertEqual(c.read_reply(), [QUIT])
        finally:
            finish(self, p)

    def test_tls_auth_with_immediate(self):
        env = tls_env(TLS_IMMEDIATE="", CVM_SASL_PLAIN="/bin/false", AUTH_REQUIRES_TLS="")
        with harness.tcpserver([harness.bin_path("mailfront"), "smtp", "echo", "cvm-authenticate", "accept"],
                               env=harness.base_env(**env)) as (port, proc):
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
                with client_context().wrap_socket(raw, server_hostname=LOCAL) as t:
                    f = t.makefile("rb")
                    self.assertEqual(f.readline(), wire(GREET))
                    t.sendall(crlf("EHLO c", "QUIT"))
                    lines = []
                    while not lines or lines[-1] != QUIT:
                        lines.append(f.readline().rstrip(b"\r\n").decode())
            self.assertTrue([l for l in lines if l[4:].startswith("AUTH ")], lines)
            self.assertNotIn("STARTTLS", " ".join(lines))


if __name__ == "__main__":
    unittest.main()
