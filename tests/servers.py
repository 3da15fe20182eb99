"""Real and scripted servers for mailfront's Python tests: one home each.

Real servers (the Debian programs the plug-ins talk to) are started by a
class per kind: Rspamd, Spamd, Clamd, Dnsmasq.  Each one runs in a fresh
temporary directory of its own, listens on free loopback ports (and a UNIX
socket where the server has one), is waited for with a deadline, and is
stopped by stop(): SIGTERM to its process group, SIGKILL after a grace
period, the directory removed.  A server that does not become ready raises
RuntimeError from the constructor after stopping what it started, so the
test class that needs it fails (it is never turned into a skip).  Whether a
missing program skips is the test module's decision: program() only finds
it.

Scripted servers (ScriptedServer and its kinds) are threads on a loopback
port or a UNIX socket that record what a client sends and answer canned
bytes, one connection at a time, for the protocol tests of the scanners.

Also: dns_query(), a one-question UDP client used to probe a DNS server.
Only the standard library and harness.py are used.
"""
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import harness
from harness import stop_process


def program(name, *places):
    """The path of a server program: on PATH, else the first of `places`
    that exists, else None."""
    found = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if found:
        return found
    return next((p for p in places if os.path.exists(p)), None)


def wait_path(path, timeout):
    """Waits until `path` exists (a server's UNIX socket); RuntimeError at
    the deadline."""
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise RuntimeError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


class Daemon:
    """A server process in its own temporary directory (self.dir, mode
    0755 so that a server dropping privileges can read it).  Subclasses
    write their configuration into self.dir, call spawn() and wait for
    readiness inside ready(); the constructor stops everything when that
    raises."""

    GRACE = 10          # seconds between SIGTERM and SIGKILL

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.dir, 0o755)
        self.proc = None
        self.log = None
        try:
            self.ready()
        except BaseException:
            self.stop()
            raise

    def path(self, *names):
        return os.path.join(self.dir, *names)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def spawn(self, argv, env=None, log_name="stderr", stdout_to_log=False):
        """Starts argv in a new session; its stderr (and stdout if asked)
        goes to a file in self.dir."""
        self.log = open(self.path(log_name), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log if stdout_to_log else subprocess.DEVNULL,
                                     stderr=self.log, env=env, start_new_session=True)

    def ready(self):
        raise NotImplementedError

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, self.GRACE)
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.dir, True)


RSPAMD_CONFIG = """lua = "{dir}/rules.lua"
options {{
  pidfile = "{dir}/rspamd.pid";
  dns {{ nameserver = ["127.0.0.1:9"]; timeout = 0.2s; retransmits = 1; }}
}}
logging {{ type = "file"; filename = "{dir}/rspamd.log"; level = "notice"; }}
actions {{ reject = 15; rewrite_subject = 9; add_header = 6; greylist = 4; subject = "***SPAM*** %s"; }}
worker "normal" {{ bind_socket = "127.0.0.1:{port}"; bind_socket = "{dir}/rspamd.sock mode=0666"; count = 1; task_timeout = 8s; }}
worker "controller" {{ bind_socket = "127.0.0.1:{cport}"; count = 1; password = "{password}"; }}
"""


class Rspamd(Daemon):
    """Debian's rspamd with a minimal configuration: no Redis, no network
    lookups (DNS points at a closed local port), the Lua `rules` given, the
    normal worker on self.port and self.sock, the controller on self.cport
    with self.password."""

    EXE = program("rspamd")
    GRACE = 15

    def __init__(self, rules, password="testpass"):
        self.rules, self.password = rules, password
        super().__init__("mfrspamd.")

    def ready(self):
        self.port, self.cport = harness.free_port(), harness.free_port()
        self.sock = self.path("rspamd.sock")
        self.write("rules.lua", self.rules)
        conf = self.write("rspamd.conf", RSPAMD_CONFIG.format(dir=self.dir, port=self.port, cport=self.cport,
                                                              password=self.password))
        argv = [self.EXE, "-f", "-c", conf, "--var=DBDIR=" + self.dir, "--var=RUNDIR=" + self.dir,
                "--var=LOGDIR=" + self.dir]
        if os.geteuid() == 0:
            argv.append("-i")          # workers may run as root in the test
        self.spawn(argv, env={"PATH": "/usr/bin:/bin", "TMPDIR": self.dir}, stdout_to_log=True)
        harness.wait_port(self.port, timeout=120)
        harness.wait_port(self.cport, timeout=60)


class Spamd(Daemon):
    """Debian's spamd with its own configuration directory: Debian's
    default header preferences plus the `rules` text given, no user
    configuration (-x), no network tests (-L), on 127.0.0.1:self.port and
    the UNIX socket self.sockpath; as root its children run as nobody."""

    EXE = program("spamd", "/usr/sbin/spamd")
    DEFAULT_PREFS = "/usr/share/spamassassin/10_default_prefs.cf"

    def __init__(self, rules):
        self.rules = rules
        super().__init__("mfspamd.")

    def ready(self):
        rules, site = self.path("rules"), self.path("site")
        os.mkdir(rules)
        os.mkdir(site)
        shutil.copy(self.DEFAULT_PREFS, rules)
        self.write("rules/init.pre", "loadplugin Mail::SpamAssassin::Plugin::Check\n")
        self.write("rules/50_test.cf", self.rules)
        self.write("site/local.cf", "")
        self.port = harness.free_port()
        self.sockpath = self.path("spamd.sock")
        argv = [self.EXE, "--configpath=" + rules, "--siteconfigpath=" + site, "-L", "-x",
                "--listen=127.0.0.1:%d" % self.port, "--listen=" + self.sockpath,
                "--max-children=2", "--min-children=1", "--syslog=stderr"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        self.spawn(argv, log_name="spamd.log")
        harness.wait_port(self.port, timeout=60)
        wait_path(self.sockpath, 10)


class Clamd(Daemon):
    """Debian's clamd with a database directory holding only the `ndb`
    signatures given (no freshclam, no network), on 127.0.0.1:self.port
    and the UNIX socket self.sockpath; `conf` adds configuration lines
    (thread and queue limits)."""

    EXE = program("clamd", "/usr/sbin/clamd")

    def __init__(self, ndb, conf="MaxThreads 4\n"):
        self.ndb, self.conf = ndb, conf
        super().__init__("mfclamd.")

    def ready(self):
        os.mkdir(self.path("db"))
        self.write("db/test.ndb", self.ndb)
        self.port = harness.free_port()
        self.sockpath = self.path("clamd.sock")
        conf = self.write("clamd.conf", "DatabaseDirectory %s\nLocalSocket %s\nTCPSocket %d\nTCPAddr 127.0.0.1\n"
                          "Foreground yes\nLogFile %s\nBytecode no\n%s"
                          % (self.path("db"), self.sockpath, self.port, self.path("clamd.log"), self.conf))
        self.spawn([self.EXE, "-c", conf])
        harness.wait_port(self.port, timeout=60)
        wait_path(self.sockpath, 10)


def dns_query(addr, port, name, timeout=0.5, qid=0x4242, qtype=16):
    """Sends one query (TXT by default) to addr:port over UDP; returns the
    raw answer, OSError (socket.timeout) when none comes in time."""
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (addr, port))
        return s.recvfrom(4096)[0]


def free_udp_port(addr="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


class Dnsmasq(Daemon):
    """dnsmasq (Debian dnsmasq-base) answering only from its command line
    (`options`: --local, --txt-record, ...), on one loopback address.
    `places` lists the (address, port) pairs to try in turn (port None: a
    free one); each try is ready when `probe` (a TXT name) is answered
    within `timeout` seconds.  self.addr and self.port say where it runs."""

    EXE = program("dnsmasq", "/usr/sbin/dnsmasq")
    GRACE = 5

    def __init__(self, options, probe, places=(("127.0.0.1", None),), timeout=5.0):
        self.options, self.probe, self.places, self.timeout = list(options), probe, list(places), timeout
        super().__init__("mfdns.")

    def ready(self):
        for addr, port in self.places:
            port = port or free_udp_port()
            self.spawn([self.EXE, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                        f"--port={port}", f"--listen-address={addr}", "--bind-interfaces"] + self.options)
            end = time.monotonic() + self.timeout
            while time.monotonic() < end and self.proc.poll() is None:
                try:
                    dns_query(addr, port, self.probe, 0.2)
                    self.addr, self.port = addr, port
                    return
                except OSError:
                    time.sleep(0.05)
            stop_process(self.proc, self.GRACE)
            self.log.close()
            self.proc = self.log = None
        raise RuntimeError("dnsmasq did not start")

    def read_log(self):
        with open(self.path("stderr"), "rb") as f:
            return f.read()


class ScriptedServer:
    """A listener on 127.0.0.1 (self.port) or on the UNIX socket
    `unix_path`, served by a thread one connection at a time: exchange()
    (of the subclass) reads the client's request and answers.  `reply` is
    the canned answer; None means the server never answers (it holds the
    connection until close()).  Every read has a deadline (`conn_timeout`
    seconds)."""

    def __init__(self, reply=None, unix_path=None, backlog=4, join=3, conn_timeout=5):
        self.reply, self.join, self.conn_timeout = reply, join, conn_timeout
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(unix_path)
        else:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.requests = []
        self.conns = []
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            c.settimeout(self.conn_timeout)
            self.exchange(c)

    def exchange(self, c):
        raise NotImplementedError

    def answer(self, c):
        """Sends the reply and closes c (with reply None: waits for
        close() first)."""
        if self.reply is None:
            while not self.stop:
                time.sleep(0.05)
        else:
            try:
                c.sendall(self.reply)
            except OSError:
                pass
        c.close()

    def close(self):
        self.stop = True
        self.t.join(self.join)
        for c in self.conns:
            c.close()
        self.sock.close()


class SilentServer(ScriptedServer):
    """Accepts and keeps every connection, never reads, never answers."""

    def __init__(self):
        super().__init__(backlog=8, join=2)

    def exchange(self, c):
        self.conns.append(c)


def read_exact(c, n):
    """n bytes from socket c; EOFError if the peer closes first."""
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError
        b += x
    return b
