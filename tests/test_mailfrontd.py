"""mailfrontd, the built-in listener, end to end.

Every server is started by the test on loopback (port 0, the daemon
prints the port with -1) and stopped by its pid; every socket and
subprocess call has a deadline.  Behaviour checked:
  - byte-identical transcripts against tcpserver + mailfront (smtp,
    qmqp, qmtp; echo and queuedir back ends; a plugin chain), including
    the session's log lines and the UCSPI variables each session sees;
  - tcprules cdbs built by ucspi-tcp's tcprules (allow/deny/RELAYCLIENT)
    with clients bound to 127.0.0.1, 127.0.0.2, 127.0.0.3;
  - the -c and -C limits under real concurrency; IPv6 on ::1;
  - PROXY v1/v2 headers by hand, from a real HAProxy (send-proxy-v2),
    malformed and missing;
  - privilege drop (the child's /proc status), SIGHUP with a new
    certificate, SIGTERM drain with a session in progress, a crashing
    child, systemd socket activation (systemd-socket-activate);
  - mailrules and patterns files read once in the parent and again on
    SIGHUP (a broken file keeps the old rules);
  - -h: TCPREMOTEHOST/TCPLOCALHOST from a dnsmasq started by the test,
    a DNS server that never answers (the -t deadline), -H the default.
"""
import contextlib
import errno
import os
import re
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

import harness
from harness import TempDirTest
from test_qmqp_qmtp import qmqp_message, qmtp_message
from test_smtp_session import make_queuedir, queue_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 15
MAILFRONTD = harness.bin_path("mailfrontd")

# A plugin that logs the variables a session sees (what third-party
# plugins read with getenv) and its credentials.
ENVLOG_C = r"""
#include <mailfront/mailfront.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static const char* const names[] = { "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST",
  "TCPREMOTEIP", "TCPREMOTEPORT", "TCPREMOTEHOST", "TCPREMOTEINFO", "RELAYCLIENT", "RULEVAR",
  "LISTEN_FDS", 0 };
static const response* envlog_init(void)
{
  char line[2048];
  int n = snprintf(line, sizeof line, "envlog pid=%ld uid=%ld gid=%ld", (long)getpid(),
                   (long)getuid(), (long)getgid());
  for (int i = 0; names[i]; i++) {
    const char* v = getenv(names[i]);
    n += snprintf(line + n, sizeof line - (size_t)n, " %s=%s", names[i], v ? v : "(unset)");
  }
  fprintf(stderr, "%s\n", line);
  if (getenv("ENVLOG_CRASH")) abort();
  return 0;
}
struct plugin plugin = { .version = PLUGIN_VERSION, .init = envlog_init };
"""

_moddir = None


def plugin_dir(prefix, plugins):
    """A temporary module directory: the built modules (symlinks) plus
    plugin-NAME.so compiled from C source for each (name, source,
    [extra cc args]) of plugins.  Readable by all (after a privilege drop)."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    for name in os.listdir(harness.LIB):
        os.symlink(os.path.join(harness.LIB, name), os.path.join(d, name))
    cc = shutil.which("cc") or shutil.which("gcc")
    for name, source, extra in plugins:
        src = os.path.join(d, name + ".c")
        with open(src, "w") as f:
            f.write(source)
        subprocess.run([cc, "-std=gnu11", "-fPIC", "-shared", "-I", os.path.join(ROOT, "include")] + extra
                       + ["-o", os.path.join(d, "plugin-%s.so" % name), src],
                       check=True, capture_output=True, timeout=60)
    return d


def module_dir():
    """The built modules plus plugin-envlog.so."""
    global _moddir
    if not _moddir:
        _moddir = plugin_dir("mftest.mfd.", [("envlog", ENVLOG_C, [])])
    return _moddir


def tearDownModule():
    if _moddir:
        shutil.rmtree(_moddir, True)


def env_for(**extra):
    return harness.base_env(MODULE_PATH=module_dir(), **extra)


class Daemon:
    """mailfrontd started with -1 (prints its port); stderr in a file."""

    def __init__(self, args, env=None, host="127.0.0.1", binary=MAILFRONTD):
        self.log_file = tempfile.TemporaryFile()
        argv = [binary, "-1"] + list(args[0]) + [host, "0"] + list(args[1])
        self.proc = subprocess.Popen(argv, env=env if env is not None else env_for(),
                                     stdout=subprocess.PIPE, stderr=self.log_file,
                                     start_new_session=True)
        self.port = self.read_port()

    def read_port(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        if not ready:
            self.stop()
            raise AssertionError("mailfrontd did not start: " + self.log())
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise AssertionError("mailfrontd did not start: %r %s" % (line, self.log()))
        return int(line)

    def log(self):
        return harness.read_shared(self.log_file).decode("latin-1")

    def wait_log(self, pattern, timeout=TIMEOUT):
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(pattern, self.log())
            if m:
                return m
            time.sleep(0.02)
        raise AssertionError("no %r in the log:\n%s" % (pattern, self.log()))

    def stop(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.stdout.close()
        return self.proc.returncode


def connect(port, source=None, family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    if source:
        s.bind((source, 0))
    s.connect((host, port))
    return s


def read_until(s, marker, timeout=TIMEOUT):
    data = b""
    end = time.time() + timeout
    while marker not in data and time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


def session(port, data, source=None, host="127.0.0.1", family=socket.AF_INET):
    """Send data in one write, half-close, return everything until EOF."""
    with connect(port, source, family, host) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            # the server may close first (deny, bad PROXY header, 421):
            # what it sent before is still read below
            if e.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                raise
        out = b""
        end = time.time() + TIMEOUT
        while time.time() < end:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:   # closed with our bytes unread
                break
            if not chunk:
                break
            out += chunk
        return out


def session_lines(log):
    """The sessions' own lines, pids and dates normalized, in order."""
    out = []
    for line in log.splitlines():
        m = re.match(r"mailfront\[\d+\]: (.*)", line)
        if not m:
            continue
        text = re.sub(r"\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [-+]\d{4}", "DATE", m.group(1))
        text = re.sub(r"(pid|TCPREMOTEPORT)=\d+", r"\1=N", text)
        out.append(text)
    return out


def envlog(log):
    """The envlog lines as dicts."""
    out = []
    for m in re.finditer(r"^envlog (pid=.*)$", log, re.M):
        out.append(dict(kv.split("=", 1) for kv in m.group(1).split(" ")))
    return out


def assert_clean(tc, log):
    tc.assertNotIn("AddressSanitizer", log)
    tc.assertNotIn("runtime error:", log)


SMTP_SESSION = (b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
                b"RCPT TO:<c@example.net>\r\nDATA\r\nSubject: t\r\n\r\nline\r\n..dot\r\n.\r\n"
                b"RSET\r\nBOGUS\r\nMAIL FROM:<x@y.example> SIZE=100\r\nRCPT TO:<d@e.example>\r\n"
                b"DATA\r\nsecond\r\n.\r\nQUIT\r\n")


class DifferentialTest(TempDirTest):
    """The same bytes through tcpserver + mailfront and through mailfrontd."""

    CASES = [
        ("smtp", "echo", ["envlog", "accept"], SMTP_SESSION),
        ("smtp", "queuedir", ["accept"], SMTP_SESSION),
        ("smtp", "echo", ["envlog", "add-received", "check-fqdn", "counters", "relayclient", "accept"],
         SMTP_SESSION),
        ("qmqp", "queuedir", ["accept"], qmqp_message(b"Subject: q\n\nbody\n", b"a@b.example",
                                                      [b"c@d.example", b"e@f.example"])),
        ("qmqp", "echo", ["add-received", "accept"], qmqp_message(b"x\n", b"a@b.example", [b"c@d.example"])),
        ("qmtp", "queuedir", ["accept"], qmtp_message(b"Subject: q\n\nbody\n", b"a@b.example",
                                                      [b"c@d.example"])
         + qmtp_message(b"two\n", b"", [b"x@y.example"])),
        ("qmtp", "echo", ["envlog", "add-received", "accept"], qmtp_message(b"x\n", b"a@b.example", [b"c@d.example"])),
    ]

    def run_both(self, proto, backend, plugins, data):
        results = []
        for kind in ("tcpserver", "mailfrontd"):
            qd = make_queuedir(tempfile.mkdtemp(dir=self.tmp))
            env = env_for(QUEUEDIR=qd, QUEUEDIR_NOSYNC=1, MAXRCPTS=5)
            if kind == "tcpserver":
                argv = [harness.bin_path("mailfront"), proto, backend] + plugins
                # -1: the port on stdout, so no probe connection makes a session
                d = Daemon((["-R", "-H", "-c", "40", "-l", "mx.test"], argv), env=env,
                           binary=shutil.which("tcpserver") or "/usr/bin/tcpserver")
                try:
                    wire = session(d.port, data)
                    d.wait_log(r"bytes in: ")
                    log = d.log()
                finally:
                    d.stop()
            else:
                d = Daemon((["-R", "-H", "-l", "mx.test"], [proto, backend] + plugins), env=env)
                try:
                    wire = session(d.port, data)
                    d.wait_log(r"end id=1 ")
                    log = d.log()
                finally:
                    self.assertEqual(d.stop(), 0)
            files = []
            for name in queue_files(qd):
                with open(os.path.join(qd, "new", name), "rb") as f:
                    files.append(f.read())
            results.append((wire, session_lines(log), sorted(files), log))
        return results

    def test_transcripts(self):
        for proto, backend, plugins, data in self.CASES:
            with self.subTest(proto=proto, backend=backend, plugins=plugins):
                ref, ours = self.run_both(proto, backend, plugins, data)
                assert_clean(self, ours[3])
                self.assertTrue(ref[0], "the reference session produced no reply")
                self.assertEqual(ours[0], ref[0])
                self.assertEqual(ours[1], ref[1])
                self.assertEqual(ours[2], ref[2])
                if backend == "queuedir":
                    self.assertTrue(ours[2], "nothing queued")

    def test_ucspi_variables(self):
        ref, ours = self.run_both("smtp", "echo", ["envlog", "accept"], b"QUIT\r\n")
        (r,), (o,) = envlog(ref[3]), envlog(ours[3])
        for k in ("PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST", "TCPREMOTEIP",
                  "TCPREMOTEHOST", "TCPREMOTEINFO", "RELAYCLIENT", "LISTEN_FDS"):
            if k == "TCPLOCALPORT":
                continue   # two listeners, two ports
            self.assertEqual(o[k], r[k], k)
        self.assertEqual(o["PROTO"], "TCP")
        self.assertEqual(o["TCPREMOTEIP"], "127.0.0.1")
        self.assertTrue(o["TCPREMOTEPORT"].isdigit() and o["TCPLOCALPORT"].isdigit())


class RulesTest(TempDirTest):
    def make_rules(self, text):
        path = os.path.join(self.tmp, "tcp.smtp")
        with open(path, "w") as f:
            f.write(text)
        subprocess.run(["tcprules", path + ".cdb", path + ".tmp"], input=text.encode(),
                       check=True, timeout=TIMEOUT, capture_output=True)
        return path + ".cdb"

    def test_allow_deny_relayclient(self):
        cdb = self.make_rules('127.0.0.1:allow,RELAYCLIENT=""\n127.0.0.2:deny\n'
                              '127.0.0.3:allow,RULEVAR="three"\n:allow\n')
        d = Daemon((["-R", "-H", "-l", "mx.test", "-x", cdb], ["smtp", "echo", "envlog", "accept-sender", "relayclient"]))
        try:
            rcpt = b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nQUIT\r\n"
            one = session(d.port, rcpt, source="127.0.0.1")
            replies = one.split(b"\r\n")
            self.assertTrue(replies[3].startswith(b"250"), one)      # the recipient: relaying allowed
            two = session(d.port, rcpt, source="127.0.0.2")
            self.assertEqual(two, b"")                                 # denied: closed at once
            three = session(d.port, rcpt, source="127.0.0.3")
            self.assertTrue(three.split(b"\r\n")[3].startswith(b"5"), three)   # no RELAYCLIENT
            d.wait_log(r"deny id=2 ip=127\.0\.0\.2")
            d.wait_log(r"end id=3 ")
            seen = {e["TCPREMOTEIP"]: e for e in envlog(d.log())}
            self.assertEqual(seen["127.0.0.1"]["RELAYCLIENT"], "")
            self.assertEqual(seen["127.0.0.3"]["RELAYCLIENT"], "(unset)")
            self.assertEqual(seen["127.0.0.3"]["RULEVAR"], "three")
            self.assertNotIn("127.0.0.2", seen)
        finally:
            self.assertEqual(d.stop(), 0)
        assert_clean(self, d.log())

    def test_reload_rules_and_bad_file_keeps_old(self):
        cdb = self.make_rules('127.0.0.1:deny\n')
        d = Daemon((["-H", "-x", cdb], ["smtp", "echo", "accept"]))
        try:
            self.assertEqual(session(d.port, b"QUIT\r\n"), b"")
            os.unlink(cdb)
            self.make_rules('127.0.0.1:allow\n')
            os.kill(d.proc.pid, signal.SIGHUP)
            d.wait_log(r"reload: done")
            self.assertTrue(session(d.port, b"QUIT\r\n").startswith(b"220 "))
            with open(cdb, "wb") as f:
                f.write(b"garbage")          # too short to be a cdb
            os.chmod(cdb, 0)
            os.kill(d.proc.pid, signal.SIGHUP)
            d.wait_log(r"reload: rules kept")
            self.assertTrue(session(d.port, b"QUIT\r\n").startswith(b"220 "))
        finally:
            self.assertEqual(d.stop(), 0)

    def test_missing_rules_file(self):
        missing = os.path.join(self.tmp, "none.cdb")
        p = subprocess.run([MAILFRONTD, "-x", missing, "127.0.0.1", "0", "smtp", "echo"],
                           env=env_for(), capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 111)
        self.assertIn(b"Fatal: cannot read", p.stderr)
        d = Daemon((["-H", "-X", "-x", missing], ["smtp", "echo", "accept"]))
        try:
            self.assertTrue(session(d.port, b"QUIT\r\n").startswith(b"220 "))
        finally:
            self.assertEqual(d.stop(), 0)


class LimitsTest(TempDirTest):
    def hold(self, port, n, source="127.0.0.1"):
        socks = []
        for _ in range(n):
            s = connect(port, source)
            self.assertTrue(read_until(s, b"\r\n").startswith(b"220 "))
            socks.append(s)
        return socks

    def test_c_limit_waits(self):
        d = Daemon((["-H", "-c", "2"], ["smtp", "echo", "accept"]))
        try:
            held = self.hold(d.port, 2)
            third = connect(d.port)
            self.assertEqual(read_until(third, b"\r\n", timeout=1.0), b"")   # waits in the backlog
            held[0].sendall(b"QUIT\r\n")
            self.assertTrue(read_until(held[0], b"221").startswith(b"221"))
            held[0].close()
            self.assertTrue(read_until(third, b"\r\n").startswith(b"220 "))
            for s in held[1:] + [third]:
                s.close()
            # the listener logs `start` after handing the connection over:
            # the greeting may come first
            d.wait_log(r"start id=3 ")
            self.assertEqual(len(re.findall(r"start id=", d.log())), 3)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_C_limit_per_client(self):
        d = Daemon((["-H", "-c", "10", "-C", "2"], ["smtp", "echo", "accept"]))
        try:
            held = self.hold(d.port, 2, "127.0.0.1")
            extra = session(d.port, b"", source="127.0.0.1")
            self.assertTrue(extra.startswith(b"421 "), extra)
            other = self.hold(d.port, 2, "127.0.0.2")     # other addresses keep being served
            d.wait_log(r"refused id=3 ip=127\.0\.0\.1 .*reason=per-client-limit")
            for s in held + other:
                s.close()
        finally:
            self.assertEqual(d.stop(), 0)

    def test_C_limit_ipv6_prefix(self):
        if not socket.has_ipv6:
            self.fail("no IPv6 on this host")
        d = Daemon((["-H", "-C", "1", "-6", "64"], ["smtp", "echo", "envlog", "accept"]), host="::1")
        try:
            with connect(d.port, family=socket.AF_INET6, host="::1") as s:
                self.assertTrue(read_until(s, b"\r\n").startswith(b"220 "))
                second = session(d.port, b"", host="::1", family=socket.AF_INET6)
                self.assertTrue(second.startswith(b"421 "), second)
            e = envlog(d.wait_log(r"end id=1 ") and d.log())[0]
            self.assertEqual(e["TCPREMOTEIP"], "::1")
            self.assertEqual(e["TCPLOCALIP"], "::1")
        finally:
            self.assertEqual(d.stop(), 0)


def proxy_v2(src, sport, dst, dport, command=0x21, tlvs=b""):
    fam = 0x11 if "." in src else 0x21
    af = socket.AF_INET if fam == 0x11 else socket.AF_INET6
    addrs = socket.inet_pton(af, src) + socket.inet_pton(af, dst) + struct.pack("!HH", sport, dport)
    body = addrs + tlvs
    return b"\r\n\r\n\0\r\nQUIT\n" + bytes([command, fam]) + struct.pack("!H", len(body)) + body


class ProxyTest(TempDirTest):
    def start(self, version="any", extra=()):
        return Daemon((["-H", "-l", "mx.test", "-p", version, "-W", "700"] + list(extra),
                       ["smtp", "echo", "envlog", "accept"]))

    def test_v1_and_v2_by_hand(self):
        d = self.start()
        try:
            out = session(d.port, b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nQUIT\r\n")
            self.assertTrue(out.startswith(b"220 mx.test"), out)
            self.assertTrue(out.endswith(b"221 2.0.0 Good bye.\r\n"), out)
            out = session(d.port, proxy_v2("2001:db8::7", 4242, "2001:db8::1", 25,
                                           tlvs=b"\x04\x00\x05hello") + b"QUIT\r\n")
            self.assertTrue(out.startswith(b"220 "), out)
            out = session(d.port, proxy_v2("203.0.113.9", 1, "198.51.100.1", 25, command=0x20) + b"QUIT\r\n")
            self.assertTrue(out.startswith(b"220 "), out)
            d.wait_log(r"end id=3 ")
            e = envlog(d.log())
            self.assertEqual((e[0]["TCPREMOTEIP"], e[0]["TCPREMOTEPORT"]), ("192.0.2.7", "56324"))
            self.assertEqual((e[0]["TCPLOCALIP"], e[0]["TCPLOCALPORT"]), ("198.51.100.1", "25"))
            self.assertEqual((e[1]["TCPREMOTEIP"], e[1]["TCPREMOTEPORT"]), ("2001:db8::7", "4242"))
            self.assertEqual(e[2]["TCPREMOTEIP"], "127.0.0.1")    # LOCAL: the real peer
            self.assertRegex(d.log(), r"start id=1 pid=\d+ ip=192\.0\.2\.7 port=56324 proxy=127\.0\.0\.1")
        finally:
            self.assertEqual(d.stop(), 0)
        assert_clean(self, d.log())

    def test_header_split_across_writes(self):
        d = self.start("v2")
        try:
            hdr = proxy_v2("192.0.2.8", 999, "198.51.100.1", 25, tlvs=b"\x01\x00\x02h2")
            with connect(d.port) as s:
                for i in range(0, len(hdr), 5):
                    s.sendall(hdr[i:i + 5])
                    time.sleep(0.01)
                s.sendall(b"QUIT\r\n")
                self.assertTrue(read_until(s, b"221").startswith(b"220 "))
            d.wait_log(r"end id=1 ")
            self.assertEqual(envlog(d.log())[0]["TCPREMOTEIP"], "192.0.2.8")
        finally:
            self.assertEqual(d.stop(), 0)

    def test_malformed_and_missing(self):
        d = self.start("v1")
        try:
            self.assertEqual(session(d.port, b"PROXY TCP4 192.0.2.7 nonsense 1 2\r\nQUIT\r\n"), b"")
            self.assertEqual(session(d.port, b"EHLO x\r\nQUIT\r\n"), b"")
            self.assertEqual(session(d.port, proxy_v2("192.0.2.7", 1, "192.0.2.8", 2) + b"QUIT\r\n"), b"")
            with connect(d.port) as s:      # says nothing: closed after -W
                t0 = time.time()
                self.assertEqual(read_until(s, b"\n", timeout=TIMEOUT), b"")
                self.assertLess(time.time() - t0, TIMEOUT)
            d.wait_log(r"no header within 700 ms")
            self.assertNotIn("start id=", d.log())
            self.assertEqual(envlog(d.log()), [])
        finally:
            self.assertEqual(d.stop(), 0)

    def test_rules_and_limits_see_the_proxy_source(self):
        path = os.path.join(self.tmp, "rules")
        subprocess.run(["tcprules", path + ".cdb", path + ".tmp"], input=b"192.0.2.66:deny\n:allow\n",
                       check=True, timeout=TIMEOUT, capture_output=True)
        d = self.start("v1", ["-x", path + ".cdb", "-C", "1"])
        try:
            self.assertEqual(session(d.port, b"PROXY TCP4 192.0.2.66 198.51.100.1 5 25\r\nQUIT\r\n"), b"")
            with connect(d.port) as s:
                s.sendall(b"PROXY TCP4 192.0.2.1 198.51.100.1 5 25\r\n")
                self.assertTrue(read_until(s, b"\r\n").startswith(b"220 "))
                out = session(d.port, b"PROXY TCP4 192.0.2.1 198.51.100.1 6 25\r\n")
                self.assertTrue(out.startswith(b"421 "), out)
                out = session(d.port, b"PROXY TCP4 192.0.2.2 198.51.100.1 6 25\r\nQUIT\r\n")
                self.assertTrue(out.startswith(b"220 "), out)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_haproxy_send_proxy_v2(self):
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.assertTrue(os.path.exists(haproxy), "haproxy is not installed")
        d = self.start("v2")
        front = harness.free_port()
        cfg = os.path.join(self.tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("global\n  maxconn 20\ndefaults\n  mode tcp\n  timeout connect 5s\n"
                    "  timeout client 20s\n  timeout server 20s\n"
                    "frontend smtp\n  bind 127.0.0.1:%d\n  default_backend mf\n"
                    "backend mf\n  server mf1 127.0.0.1:%d send-proxy-v2\n" % (front, d.port))
        hp = subprocess.Popen([haproxy, "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            harness.wait_port(front)
            with connect(front, source="127.0.0.3") as s:
                myport = s.getsockname()[1]
                s.sendall(b"QUIT\r\n")
                out = read_until(s, b"221")
            self.assertTrue(out.startswith(b"220 mx.test"), out)
            d.wait_log(r"end id=\d+ ")
            e = [x for x in envlog(d.log()) if x["TCPREMOTEIP"] == "127.0.0.3"]
            self.assertEqual(len(e), 1, d.log())
            self.assertEqual(e[0]["TCPREMOTEPORT"], str(myport))
            self.assertEqual(e[0]["TCPLOCALPORT"], str(front))
        finally:
            os.killpg(hp.pid, signal.SIGTERM)
            hp.wait(timeout=TIMEOUT)
            self.assertEqual(d.stop(), 0)


class ProcessTest(TempDirTest):
    def test_privilege_drop(self):
        d = Daemon((["-H", "-u", "65534", "-g", "65534"], ["smtp", "echo", "envlog", "accept"]))
        try:
            with connect(d.port) as s:
                self.assertTrue(read_until(s, b"\r\n").startswith(b"220 "))
                pid = int(d.wait_log(r"start id=1 pid=(\d+)").group(1))
                with open("/proc/%d/status" % pid) as f:
                    status = f.read()
                self.assertRegex(status, r"\nUid:\s+65534\s+65534\s+65534\s+65534\n")
                self.assertRegex(status, r"\nGid:\s+65534\s+65534\s+65534\s+65534\n")
                self.assertRegex(status, r"\nGroups:\s*\n")
                with open("/proc/%d/status" % d.proc.pid) as f:
                    self.assertRegex(f.read(), r"\nUid:\s+65534\s")
        finally:
            self.assertEqual(d.stop(), 0)

    def test_sigterm_drains_a_session_in_progress(self):
        qd = make_queuedir(self.tmp)
        d = Daemon((["-H", "-G", "20"], ["smtp", "queuedir", "accept"]), env=env_for(QUEUEDIR=qd))
        with connect(d.port) as s:
            self.assertTrue(read_until(s, b"\r\n").startswith(b"220 "))
            s.sendall(b"HELO c\r\nMAIL FROM:<a@b.example>\r\n")
            self.assertIn(b"250", read_until(s, b"Sender"))
            os.kill(d.proc.pid, signal.SIGTERM)
            d.wait_log(r"stopping: sessions=1")
            with self.assertRaises(OSError):
                connect(d.port).close()          # no longer accepting
            self.assertIsNone(d.proc.poll())
            s.sendall(b"RCPT TO:<c@d.example>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n")
            out = read_until(s, b"221")
            self.assertIn(b"\r\n250 ", out)
        self.assertEqual(d.proc.wait(timeout=TIMEOUT), 0)
        self.assertEqual(len(queue_files(qd)), 1)
        d.stop()

    def test_sigterm_grace_period_ends(self):
        d = Daemon((["-H", "-G", "0"], ["smtp", "echo", "accept"]))
        with connect(d.port) as s:
            self.assertTrue(read_until(s, b"\r\n").startswith(b"220 "))
            os.kill(d.proc.pid, signal.SIGTERM)
            self.assertEqual(d.proc.wait(timeout=TIMEOUT), 0)
        self.assertIn("signal=TERM", d.log())
        d.stop()

    def test_crashing_child(self):
        d = Daemon((["-H"], ["smtp", "echo", "envlog", "accept"]), env=env_for(ENVLOG_CRASH=1))
        try:
            self.assertEqual(session(d.port, b"QUIT\r\n"), b"")
            d.wait_log(r"end id=1 pid=\d+ ip=127\.0\.0\.1 port=\d+ signal=ABRT")
            self.assertIsNone(d.proc.poll())
            os.environ.pop("ENVLOG_CRASH", None)
        finally:
            self.assertEqual(d.stop(), 0)
        d2 = Daemon((["-H"], ["smtp", "echo", "accept"]))
        try:
            with connect(d2.port) as s:
                self.assertTrue(read_until(s, b"\r\n").startswith(b"220 "))
                pid = int(d2.wait_log(r"start id=1 pid=(\d+)").group(1))
                # ASan turns a SEGV into exit 99: there, an uncatchable signal
                sig, name = (signal.SIGKILL, "KILL") if harness.SANITIZED else (signal.SIGSEGV, "SEGV")
                os.kill(pid, sig)
                d2.wait_log(r"end id=1 .*signal=" + name)
            self.assertTrue(session(d2.port, b"QUIT\r\n").startswith(b"220 "))   # goes on
        finally:
            self.assertEqual(d2.stop(), 0)

    def test_socket_activation(self):
        tool = shutil.which("systemd-socket-activate")
        self.assertTrue(tool, "systemd-socket-activate is not installed")
        ports = [harness.free_port(), harness.free_port()]
        env = env_for()
        sets = []
        for k, v in env.items():
            sets += ["-E", "%s=%s" % (k, v)]
        log = tempfile.TemporaryFile()
        p = subprocess.Popen([tool, "-l", "127.0.0.1:%d" % ports[0], "-l", "127.0.0.1:%d" % ports[1]] + sets +
                             [MAILFRONTD, "-H", "-l", "mx.test", "-", "-", "smtp", "echo", "envlog", "accept"],
                             env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            for port in ports:
                harness.wait_port(port)      # a probe session each
                out = session(port, b"QUIT\r\n")
                self.assertTrue(out.startswith(b"220 mx.test"), out)
            end = time.time() + TIMEOUT
            text = ""
            while time.time() < end and text.count("end id=") < 4:
                text = harness.read_shared(log).decode("latin-1")
                time.sleep(0.05)
            self.assertIn("ready listeners=2 (socket activation)", text)
            self.assertEqual(len(re.findall(r"end id=\d+ .*status=0", text)), 4, text)
            seen = envlog(text)
            self.assertEqual(sorted({int(e["TCPLOCALPORT"]) for e in seen}), sorted(ports))
            self.assertTrue(all(e["LISTEN_FDS"] == "(unset)" for e in seen))
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            self.assertEqual(p.wait(timeout=TIMEOUT), 0)

    def test_sd_notify(self):
        path = os.path.join(self.tmp, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ns:
            ns.bind(path)
            ns.settimeout(TIMEOUT)
            d = Daemon((["-H"], ["smtp", "echo", "accept"]), env=env_for(NOTIFY_SOCKET=path))
            try:
                self.assertEqual(ns.recv(4096), b"READY=1")
                os.kill(d.proc.pid, signal.SIGHUP)
                self.assertRegex(ns.recv(4096), rb"^RELOADING=1\nMONOTONIC_USEC=\d+$")
                self.assertEqual(ns.recv(4096), b"READY=1")
                os.kill(d.proc.pid, signal.SIGTERM)
                self.assertEqual(ns.recv(4096), b"STOPPING=1")
            finally:
                self.assertEqual(d.stop(), 0)

    def make_cert(self, cn):
        pem = os.path.join(self.tmp, cn + ".pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", "/CN=" + cn, "-keyout", pem + ".key", "-out", pem],
                       check=True, capture_output=True, timeout=60)
        with open(pem) as f:
            cert = f.read()
        with open(pem + ".key") as f:
            both = cert + f.read()
        return cert, both

    def served_cert(self, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with connect(port) as s:
            self.assertTrue(read_until(s, b"\r\n").startswith(b"220 "))
            s.sendall(b"EHLO c\r\n")
            self.assertIn(b"STARTTLS", read_until(s, b"250 "))
            s.sendall(b"STARTTLS\r\n")
            self.assertTrue(read_until(s, b"\r\n").startswith(b"220 "))
            with ctx.wrap_socket(s) as t:
                der = t.getpeercert(binary_form=True)
                t.sendall(b"QUIT\r\n")
                self.assertTrue(t.recv(100).startswith(b"221"))
        return ssl.DER_cert_to_PEM_cert(der).strip()

    def test_tls_loaded_once_and_on_sighup(self):
        cert_a, pem_a = self.make_cert("a.test")
        cert_b, pem_b = self.make_cert("b.test")
        path = os.path.join(self.tmp, "server.pem")
        with open(path, "w") as f:
            f.write(pem_a)
        d = Daemon((["-H"], ["smtp", "echo", "accept"]), env=env_for(TLS_CERTFILE=path))
        try:
            self.assertEqual(self.served_cert(d.port), cert_a.strip())
            with open(path, "w") as f:
                f.write(pem_b)
            # loaded once: a changed file alone changes nothing
            self.assertEqual(self.served_cert(d.port), cert_a.strip())
            os.kill(d.proc.pid, signal.SIGHUP)
            d.wait_log(r"reload: done")
            self.assertEqual(self.served_cert(d.port), cert_b.strip())
            with open(path, "w") as f:
                f.write("not a certificate\n")
            os.kill(d.proc.pid, signal.SIGHUP)
            d.wait_log(r"reload: TLS credentials kept: TLS init failed")
            self.assertEqual(self.served_cert(d.port), cert_b.strip())
        finally:
            self.assertEqual(d.stop(), 0)
        assert_clean(self, d.log())

    def test_kv_log_events(self):
        d = Daemon((["-H"], ["smtp", "echo", "accept"]), env=env_for(LOGFORMAT="kv"))
        try:
            self.assertTrue(session(d.port, b"QUIT\r\n").startswith(b"220 "))
            end = d.wait_log(r"prog=mailfrontd pid=\d+ event=conn_end id=1 child_pid=(\d+) ip=127\.0\.0\.1 "
                             r"port=\d+ status=0 duration_ms=\d+\n")
            self.assertRegex(d.log(), r"prog=mailfrontd pid=\d+ event=conn_start id=1 child_pid=%s " % end.group(1))
            self.assertRegex(d.log(), r"prog=mailfront pid=%s sid=\S+ ip=127\.0\.0\.1 event=session_end status=0"
                             % end.group(1))
        finally:
            self.assertEqual(d.stop(), 0)

    def test_usage(self):
        p = subprocess.run([MAILFRONTD, "127.0.0.1", "0", "smtp"], env=env_for(),
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 100)
        p = subprocess.run([MAILFRONTD, "-p", "v9", "127.0.0.1", "0", "smtp", "echo"], env=env_for(),
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 100)
        p = subprocess.run([MAILFRONTD, "127.0.0.1", "0", "smtp", "nosuchbackend"], env=env_for(),
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 111)
        self.assertIn(b"mailfrontd[", p.stderr)


RULES_SCRIPT = (b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@one.example>\r\nRCPT TO:<y@two.example>\r\n"
                b"DATA\r\nSubject: t\r\n\r\none forbidden\r\ntwo forbidden\r\n.\r\nQUIT\r\n")


class PreloadTest(TempDirTest):
    """mailrules and patterns files read once in the parent, again on SIGHUP."""

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path + ".new", "w") as f:
            f.write(text)
        os.rename(path + ".new", path)
        return path

    def verdicts(self, port):
        """(first RCPT reply, second RCPT reply, reply after the data)."""
        lines = session(port, RULES_SCRIPT).decode().split("\r\n")
        return lines[3], lines[4], lines[6]

    def test_rules_preloaded_and_reloaded(self):
        rules = self.write("rules", "d*:*@one.example:rule one\nk*:*\n")
        pats = self.write("patterns", "=hit one\nxone forbidden\n")
        d = Daemon((["-H"], ["smtp", "echo", "mailrules", "patterns", "accept"]),
                   env=env_for(MAILRULES=rules, PATTERNS=pats))
        try:
            one = ("553 rule one", "250 Recipient='y@two.example'.", "554 hit one")
            self.assertEqual(self.verdicts(d.port), one)
            # the files are gone: the sessions still follow the preloaded rules
            os.unlink(rules)
            os.unlink(pats)
            self.assertEqual(self.verdicts(d.port), one)
            self.assertNotIn("Could not", d.log())
            # new files + SIGHUP: new sessions follow them
            self.write("rules", "d*:*@two.example:rule two\nk*:*\n")
            self.write("patterns", "=hit two\nxtwo forbidden\n")
            os.kill(d.proc.pid, signal.SIGHUP)
            d.wait_log(r"reload: done")
            two = ("250 Recipient='x@one.example'.", "553 rule two", "554 hit two")
            self.assertEqual(self.verdicts(d.port), two)
            # a broken rules file and a missing patterns file: both kept, both logged
            self.write("rules", "k*:*\n\n:x\n")
            os.unlink(pats)
            os.kill(d.proc.pid, signal.SIGHUP)
            d.wait_log(r"reload: modules kept their state")
            self.assertRegex(d.log(), r"mailrules: reload: \S*rules:3: .*\(the old rules stay\)")
            self.assertRegex(d.log(), r"patterns: reload: \S*patterns: No such file or directory "
                                      r"\(the old patterns stay\)")
            self.assertEqual(self.verdicts(d.port), two)
        finally:
            self.assertEqual(d.stop(), 0)
        assert_clean(self, d.log())

    def test_session_rules_file_named_by_tcprules(self):
        # a tcprules rule may name another $MAILRULES: that session reads it
        other = self.write("other", "d*:*@two.example:other rules\nk*:*\n")
        rules = self.write("rules", "d*:*@one.example:rule one\nk*:*\n")
        text = '127.0.0.2:allow,MAILRULES="%s"\n:allow\n' % other
        path = os.path.join(self.tmp, "tcp")
        subprocess.run(["tcprules", path + ".cdb", path + ".tmp"], input=text.encode(),
                       check=True, timeout=TIMEOUT, capture_output=True)
        d = Daemon((["-H", "-x", path + ".cdb"], ["smtp", "echo", "mailrules", "accept"]),
                   env=env_for(MAILRULES=rules))
        try:
            out = session(d.port, RULES_SCRIPT, source="127.0.0.2").decode().split("\r\n")
            self.assertEqual(out[3:5], ["250 Recipient='x@one.example'.", "553 other rules"])
            out = session(d.port, RULES_SCRIPT, source="127.0.0.1").decode().split("\r\n")
            self.assertEqual(out[3:5], ["553 rule one", "250 Recipient='y@two.example'."])
        finally:
            self.assertEqual(d.stop(), 0)


def dns_up(addr, port, timeout=0.3):
    """1 when something answers a DNS query on addr:port."""
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x04test\x00" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (addr, port))
        try:
            return bool(s.recvfrom(4096)[0])
        except OSError:
            return False


class LookupTest(TempDirTest):
    """-h: TCPREMOTEHOST/TCPLOCALHOST from PTR records of a dnsmasq started
    here; a server that never answers costs the deadline, not a hang; -H
    (the default) asks nothing."""

    @classmethod
    def setUpClass(cls):
        exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        if not os.path.exists(exe):
            raise RuntimeError("dnsmasq (dnsmasq-base) is needed by this test")
        cls.dns = None
        why = ""
        for _ in range(3):   # a free port may be taken before dnsmasq binds it
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                cls.dns_port = s.getsockname()[1]
            cls.dns_log = tempfile.TemporaryFile()
            cls.dns = subprocess.Popen([exe, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                                        "--port=%d" % cls.dns_port, "--listen-address=127.0.0.1",
                                        "--bind-interfaces",
                                        "--ptr-record=2.0.0.127.in-addr.arpa,client.test",
                                        "--ptr-record=1.0.0.127.in-addr.arpa,mx.test",
                                        "--ptr-record=3.0.0.127.in-addr.arpa,bad\\032name.test"],
                                       stdout=subprocess.DEVNULL, stderr=cls.dns_log, start_new_session=True)
            end = time.time() + TIMEOUT
            while cls.dns.poll() is None and time.time() < end:
                if dns_up("127.0.0.1", cls.dns_port):
                    break
                time.sleep(0.05)
            else:
                why = harness.read_shared(cls.dns_log).decode("latin-1")
                cls.tearDownClass()
                continue
            break
        else:
            raise RuntimeError("dnsmasq did not start: " + why)
        # a "server" that reads queries and never answers
        cls.mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cls.mute.bind(("127.0.0.1", 0))

    @classmethod
    def tearDownClass(cls):
        if cls.dns.poll() is None:
            cls.dns.kill()
        cls.dns.wait(timeout=TIMEOUT)
        cls.dns_log.close()
        cls.dns = cls.dns_log = None
        if getattr(cls, "mute", None):
            cls.mute.close()

    def envs(self, args, port, sources):
        env = env_for(DNSCACHEIP="127.0.0.1", DNSCACHEPORT=str(port))
        d = Daemon((args, ["smtp", "echo", "envlog", "accept"]), env=env)
        try:
            times = []
            for src in sources:
                t0 = time.time()
                self.assertTrue(session(d.port, b"QUIT\r\n", source=src).startswith(b"220 "))
                times.append(time.time() - t0)
            d.wait_log(r"end id=%d " % len(sources))
            seen = {e["TCPREMOTEIP"]: e for e in envlog(d.log())}
        finally:
            self.assertEqual(d.stop(), 0)
        assert_clean(self, d.log())
        return seen, times

    def test_h_sets_the_ptr_names(self):
        seen, _ = self.envs(["-h"], self.dns_port, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        self.assertEqual(seen["127.0.0.2"]["TCPREMOTEHOST"], "client.test")
        self.assertEqual(seen["127.0.0.2"]["TCPLOCALHOST"], "mx.test")
        self.assertEqual(seen["127.0.0.3"]["TCPREMOTEHOST"], "(unset)")   # a name no host can have
        self.assertEqual(seen["127.0.0.4"]["TCPREMOTEHOST"], "(unset)")   # no PTR record

    def test_l_wins_over_the_local_lookup(self):
        seen, _ = self.envs(["-h", "-l", "given.test"], self.dns_port, ["127.0.0.2"])
        self.assertEqual(seen["127.0.0.2"]["TCPLOCALHOST"], "given.test")
        self.assertEqual(seen["127.0.0.2"]["TCPREMOTEHOST"], "client.test")

    def test_default_asks_nothing(self):
        seen, _ = self.envs([], self.dns_port, ["127.0.0.2"])
        self.assertEqual(seen["127.0.0.2"]["TCPREMOTEHOST"], "(unset)")
        self.assertEqual(seen["127.0.0.2"]["TCPLOCALHOST"], "(unset)")

    def test_server_that_never_answers_costs_the_deadline(self):
        mute_port = self.mute.getsockname()[1]
        seen, times = self.envs(["-h", "-t", "2", "-l", "mx.test"], mute_port, ["127.0.0.2"])
        self.assertEqual(seen["127.0.0.2"]["TCPREMOTEHOST"], "(unset)")
        self.assertGreaterEqual(times[0], 1.5)    # it did wait for an answer...
        self.assertLess(times[0], 8)              # ...and gave up at the deadline
        self.mute.settimeout(0.5)
        self.assertTrue(self.mute.recvfrom(4096)[0], "no query reached the silent server")


if __name__ == "__main__":
    unittest.main()
