"""mailfrontd's session processes that serve several connections (-n, -w).

A process serves up to -n connections one after another, only of one
client (the -C key: the address, or its -4/-6 prefix), and only when
every module is version 4.  Checked here with real clients on loopback,
every socket and subprocess call bounded by a deadline:
  - reuse happens (one pid for a client's sessions, a module's static
    counter goes 1, 2, 3) and stops at -n; -n 1 and a version-3 module
    give a process per connection;
  - nothing of a session reaches the next one in the same process: a
    hostile version-4 plugin sets a variable, leaves fds open, sets an
    alarm, a signal handler, the umask and the working directory, and
    the next session sees none of it; each session sees its own
    TCPREMOTEPORT;
  - another client address never gets the process (unless -4 puts both
    in one prefix);
  - byte-identical transcripts and queued files through a reused
    process, against tcpserver + mailfront;
  - an idle process ends after -w, on SIGHUP, on SIGTERM (the daemon
    stops at once), and to make room under -c for another client;
  - a session that kills its process: the parent logs the signal, the
    next connection gets a new process.
"""
import os
import re
import shutil
import signal
import tempfile
import time

import harness
from harness import TempDirTest
from test_mailfrontd import (Daemon, session, assert_clean, session_lines, connect, read_until, plugin_dir,
                             TIMEOUT)
from test_qmqp_qmtp import qmqp_message, qmtp_message
from test_smtp_session import make_queuedir, queue_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A plugin that reports what a session inherits from the one before it in
# the same process, then leaves all of it behind on purpose.
LEAKY_C = r"""
#include <mailfront/mailfront.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
static int sessions;   /* process-wide on purpose: shows the reuse */
static void on_term(int sig) { (void)sig; }
static int count_fds(void)
{
  DIR* d = opendir("/proc/self/fd");
  int n = 0;
  struct dirent* e;
  if (!d) return -1;
  while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;
}
static const response* leaky_init(void)
{
  char cwd[4096];
  struct sigaction sa;
  mode_t m = umask(0);
  umask(m);
  unsigned left = alarm(0);
  sigaction(SIGTERM, 0, &sa);
  const char* leak = getenv("LEAKVAR");
  const char* port = getenv("TCPREMOTEPORT");
  fprintf(stderr, "leaky pid=%ld session=%d leakvar=%s fds=%d alarm=%u cwd=%s umask=%03o sigterm=%s port=%s\n",
          (long)getpid(), ++sessions, leak ? leak : "(unset)", count_fds(), left,
          getcwd(cwd, sizeof cwd) ? cwd : "?", (unsigned)m,
          sa.sa_handler == SIG_DFL ? "default" : "handler", port ? port : "(unset)");
  /* what a careless plugin leaves behind */
  setenv("LEAKVAR", "left-by-an-earlier-session", 1);
  for (int i = 0; i < 3; i++) (void)open("/dev/null", O_RDONLY);
  alarm(1000);
  signal(SIGTERM, on_term);
  umask(077);
  if (chdir("/") != 0) return 0;
  return 0;
}
static const response* leaky_sender(str* address, str* params)
{
  (void)params;
  if (address->len >= 4 && memcmp(address->s, "kill", 4) == 0) raise(SIGKILL);
  return 0;
}
struct plugin plugin = { .version = LEAKY_VERSION, .init = leaky_init, .sender = leaky_sender };
"""

_moddir = None


def module_dir():
    """The built modules plus plugin-leaky.so (version 4) and
    plugin-leaky3.so (the same code as version 3)."""
    global _moddir
    if not _moddir:
        _moddir = plugin_dir("mftest.reuse.", [("leaky", LEAKY_C, ["-DLEAKY_VERSION=PLUGIN_VERSION_4"]),
                                               ("leaky3", LEAKY_C, ["-DLEAKY_VERSION=PLUGIN_VERSION"])])
    return _moddir


def tearDownModule():
    if _moddir:
        shutil.rmtree(_moddir, True)


def env_for(**extra):
    return harness.base_env(MODULE_PATH=module_dir(), **extra)


def leaky(log):
    """The leaky lines as dicts, in order."""
    return [dict(kv.split("=", 1) for kv in m.group(1).split(" "))
            for m in re.finditer(r"^leaky (pid=.*)$", log, re.M)]


def starts(log):
    """id -> pid of the `start` lines."""
    return {int(i): int(p) for i, p in re.findall(r"start id=(\d+) pid=(\d+)", log)}


QUIT = b"QUIT\r\n"
MAIL = b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nQUIT\r\n"


def gone(pid, timeout=TIMEOUT):
    """Wait until process pid has ended (a zombie counts as ended)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


class ReuseTest(TempDirTest):
    def daemon(self, opts, mods, **env):
        d = Daemon((["-R", "-H", "-l", "mx.test"] + opts, mods), env=env_for(**env))
        self.addCleanup(d.stop)
        return d

    def sessions(self, d, n, data=QUIT, source="127.0.0.1"):
        """n sequential sessions; waits for each one's end line."""
        out = []
        for _ in range(n):
            before = len(re.findall(r"end id=", d.log()))
            out.append(session(d.port, data, source=source))
            end = time.time() + TIMEOUT
            while len(re.findall(r"end id=", d.log())) <= before and time.time() < end:
                time.sleep(0.01)
        return out

    def test_one_process_serves_a_clients_sessions_up_to_n(self):
        d = self.daemon(["-n", "3"], ["smtp", "echo", "leaky", "accept"])
        replies = self.sessions(d, 4)
        for r in replies:
            self.assertTrue(r.startswith(b"220 ") and b"221 " in r, r)
        log = d.log()
        assert_clean(self, log)
        self.assertIn("sessions_per_process=3", log)
        seen = leaky(log)
        self.assertEqual([s["session"] for s in seen], ["1", "2", "3", "1"], log)
        pids = [s["pid"] for s in seen]
        self.assertEqual(len(set(pids[:3])), 1, log)
        self.assertNotEqual(pids[3], pids[0], "-n 3: the fourth session needs a new process")
        st = starts(log)
        self.assertEqual([st[i] for i in (1, 2, 3, 4)], [int(p) for p in pids], log)
        for i in (1, 2, 3, 4):
            self.assertRegex(log, r"end id=%d pid=%s ip=127\.0\.0\.1 port=\d+ status=0 " % (i, st[i]))
        # the first session's process exited after its third (its exit status was that session's)
        self.assertTrue(gone(int(pids[0])))

    def test_nothing_of_a_session_reaches_the_next(self):
        d = self.daemon(["-n", "10"], ["smtp", "echo", "leaky", "accept"])
        ports = []
        for _ in range(3):
            with connect(d.port) as s:
                ports.append(str(s.getsockname()[1]))
                s.sendall(QUIT)
                self.assertIn(b"221 ", read_until(s, b"221 "))
            d.wait_log(r"end id=%d " % len(ports))
        log = d.log()
        seen = leaky(log)
        self.assertEqual([s["session"] for s in seen], ["1", "2", "3"], log)
        first = seen[0]
        self.assertEqual(first["leakvar"], "(unset)")
        for s in seen[1:]:
            self.assertEqual(s["pid"], first["pid"])
            self.assertEqual(s["leakvar"], "(unset)", "a variable set by the session before")
            self.assertEqual(s["fds"], first["fds"], "fds left open by the session before")
            self.assertEqual(s["alarm"], "0", "the alarm of the session before")
            self.assertEqual(s["cwd"], first["cwd"], "the directory of the session before")
            self.assertEqual(s["umask"], first["umask"], "the umask of the session before")
            self.assertEqual(s["sigterm"], "default", "the signal handler of the session before")
        self.assertEqual([s["port"] for s in seen], ports, "each session sees its own TCPREMOTEPORT")

    def test_another_client_never_gets_the_process(self):
        d = self.daemon(["-n", "10"], ["smtp", "echo", "leaky", "accept"])
        self.sessions(d, 1, source="127.0.0.1")
        self.sessions(d, 1, source="127.0.0.2")
        self.sessions(d, 1, source="127.0.0.1")
        self.sessions(d, 1, source="127.0.0.2")
        st = starts(d.log())
        self.assertEqual(st[1], st[3], d.log())
        self.assertEqual(st[2], st[4], d.log())
        self.assertNotEqual(st[1], st[2], "127.0.0.2 was served by 127.0.0.1's process")

    def test_proxy_source_is_the_client(self):
        d = self.daemon(["-n", "10", "-p", "v1"], ["smtp", "echo", "leaky", "accept"])
        for src, port in (("192.0.2.7", 1111), ("192.0.2.8", 2222), ("192.0.2.7", 3333)):
            hdr = b"PROXY TCP4 %s 198.51.100.1 %d 25\r\n" % (src.encode(), port)
            self.sessions(d, 1, data=hdr + QUIT)
        log = d.log()
        st = starts(log)
        self.assertEqual(st[1], st[3], log)
        self.assertNotEqual(st[1], st[2], "192.0.2.8 was served by 192.0.2.7's process")
        self.assertEqual([s["port"] for s in leaky(log)], ["1111", "2222", "3333"], log)
        self.assertRegex(log, r"start id=3 pid=%d ip=192\.0\.2\.7 port=3333 proxy=127\.0\.0\.1" % st[1])

    def test_prefix_makes_one_client(self):
        d = self.daemon(["-n", "10", "-4", "24"], ["smtp", "echo", "leaky", "accept"])
        self.sessions(d, 1, source="127.0.0.1")
        self.sessions(d, 1, source="127.0.0.2")
        st = starts(d.log())
        self.assertEqual(st[1], st[2], "-4 24: 127.0.0.1 and 127.0.0.2 are one client")

    def test_n1_and_version3_give_a_process_per_connection(self):
        for opts, mods, warn in ((["-n", "1"], ["smtp", "echo", "leaky", "accept"], False),
                                 ([], ["smtp", "echo", "leaky3", "accept"], True)):
            with self.subTest(opts=opts, mods=mods):
                d = self.daemon(opts, mods)
                self.sessions(d, 3)
                log = d.log()
                seen = leaky(log)
                self.assertEqual([s["session"] for s in seen], ["1", "1", "1"], log)
                self.assertEqual(len({s["pid"] for s in seen}), 3, log)
                self.assertIn("sessions_per_process=1", log)
                if warn:
                    self.assertRegex(log, r"one process per connection: module leaky3 is not version 4")
                d.stop()

    def test_transcripts_through_a_reused_process(self):
        smtp = (b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
                b"DATA\r\nSubject: t\r\n\r\nline\r\n..dot\r\n.\r\nRSET\r\nBOGUS\r\n"
                b"MAIL FROM:<x@y.example> SIZE=100\r\nRCPT TO:<d@e.example>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n")
        cases = [
            ("smtp", "echo", ["accept"], smtp),
            ("smtp", "queuedir", ["accept"], smtp),
            ("smtp", "echo", ["add-received", "check-fqdn", "counters", "relayclient", "accept"], smtp),
            ("qmqp", "queuedir", ["accept"], qmqp_message(b"Subject: q\n\nbody\n", b"a@b.example",
                                                          [b"c@d.example", b"e@f.example"])),
            ("qmtp", "queuedir", ["accept"], qmtp_message(b"Subject: q\n\nbody\n", b"a@b.example",
                                                          [b"c@d.example"])),
        ]
        for proto, backend, plugins, data in cases:
            with self.subTest(proto=proto, backend=backend):
                # the reference: tcpserver + mailfront, one session
                qd = make_queuedir(tempfile.mkdtemp(dir=self.tmp))
                env = env_for(QUEUEDIR=qd, QUEUEDIR_NOSYNC=1)
                ref = Daemon((["-R", "-H", "-c", "40", "-l", "mx.test"],
                              [harness.bin_path("mailfront"), proto, backend] + plugins), env=env,
                             binary=shutil.which("tcpserver") or "/usr/bin/tcpserver")
                try:
                    ref_wire = session(ref.port, data)
                    ref.wait_log(r"bytes in: ")
                    ref_lines = session_lines(ref.log())
                finally:
                    ref.stop()
                ref_files = sorted(open(os.path.join(qd, "new", n), "rb").read() for n in queue_files(qd))
                # three sessions through one mailfrontd process
                qd2 = make_queuedir(tempfile.mkdtemp(dir=self.tmp))
                d = Daemon((["-R", "-H", "-l", "mx.test"], [proto, backend] + plugins),
                           env=env_for(QUEUEDIR=qd2, QUEUEDIR_NOSYNC=1))
                try:
                    for i in (1, 2, 3):
                        wire = session(d.port, data)
                        d.wait_log(r"end id=%d " % i)
                        self.assertEqual(wire, ref_wire, "session %d" % i)
                        files = sorted(open(os.path.join(qd2, "new", n), "rb").read() for n in queue_files(qd2))
                        self.assertEqual(files, ref_files, "session %d" % i)
                        for n in queue_files(qd2):
                            os.unlink(os.path.join(qd2, "new", n))
                    log = d.log()
                finally:
                    self.assertEqual(d.stop(), 0)
                assert_clean(self, log)
                self.assertEqual(len(set(starts(log).values())), 1, log)
                lines = session_lines(log)
                n = len(ref_lines)
                self.assertEqual(lines, ref_lines * 3)
                self.assertTrue(n > 0)
                if backend == "queuedir":
                    self.assertTrue(ref_files, "nothing queued")

    def test_idle_process_ends_after_w(self):
        d = self.daemon(["-w", "1"], ["smtp", "echo", "leaky", "accept"])
        self.sessions(d, 1)
        pid = starts(d.log())[1]
        self.assertTrue(gone(pid, timeout=5), "the idle process outlived -w 1")
        self.sessions(d, 1)
        self.assertNotEqual(starts(d.log())[2], pid)

    def test_reload_ends_idle_processes(self):
        d = self.daemon([], ["smtp", "echo", "leaky", "accept"])
        self.sessions(d, 1)
        pid = starts(d.log())[1]
        os.kill(d.proc.pid, signal.SIGHUP)
        d.wait_log(r"reload: done")
        self.assertTrue(gone(pid), "an idle process of the old configuration survived SIGHUP")
        self.sessions(d, 1)
        self.assertNotEqual(starts(d.log())[2], pid)

    def test_stop_ends_idle_processes_at_once(self):
        d = self.daemon(["-G", "30"], ["smtp", "echo", "leaky", "accept"])
        self.sessions(d, 2, source="127.0.0.1")
        self.sessions(d, 1, source="127.0.0.2")
        pids = set(starts(d.log()).values())
        self.assertEqual(len(pids), 2)
        t0 = time.time()
        self.assertEqual(d.stop(timeout=10), 0)
        self.assertLess(time.time() - t0, 5, "idle processes held the stop for the grace period")
        for pid in pids:
            self.assertTrue(gone(pid))

    def test_idle_process_makes_room_under_c(self):
        d = self.daemon(["-c", "2"], ["smtp", "echo", "leaky", "accept"])
        # two idle processes of 127.0.0.1: two sessions at once
        a, b = connect(d.port, "127.0.0.1"), connect(d.port, "127.0.0.1")
        try:
            for s in (a, b):
                self.assertTrue(read_until(s, b"220 ").startswith(b"220 "))
            for s in (a, b):
                s.sendall(QUIT)
                self.assertIn(b"221 ", read_until(s, b"221 "))
        finally:
            a.close()
            b.close()
        d.wait_log(r"end id=2 ")
        idle = set(starts(d.log()).values())
        self.assertEqual(len(idle), 2)
        r = self.sessions(d, 1, data=MAIL, source="127.0.0.2")[0]
        self.assertIn(b"221 ", r)
        self.assertNotIn(starts(d.log())[3], idle)
        self.assertTrue(any(gone(p, timeout=5) for p in idle), "no idle process ended to make room")

    def test_a_session_that_kills_its_process(self):
        d = self.daemon([], ["smtp", "echo", "leaky", "accept"])
        self.sessions(d, 1)
        kill = b"HELO c\r\nMAIL FROM:<kill@x.example>\r\nQUIT\r\n"
        r = self.sessions(d, 1, data=kill)[0]
        self.assertNotIn(b"221 ", r)
        st = starts(d.log())
        self.assertEqual(st[1], st[2], "the second session ran in the first one's process")
        d.wait_log(r"end id=2 pid=%d ip=127\.0\.0\.1 port=\d+ signal=KILL" % st[2])
        r = self.sessions(d, 1, data=MAIL)[0]
        self.assertIn(b"250 ", r)
        self.assertIn(b"221 ", r)
        self.assertNotEqual(starts(d.log())[3], st[1])


if __name__ == "__main__":
    import unittest
    unittest.main()
