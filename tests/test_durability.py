"""Durability of acknowledged mail: the front end killed at many points,
queue files that cannot be written, a full or read-only queue disk.

The invariant everywhere: every message the client saw acknowledged (250
after its data) is complete in the queue; nothing partial is ever visible
in new/ (queuedir) or handed on by qmail-queue; a write, fsync or link
that fails gives a temporary failure (451), never a 250.

Tools: tests/shims/iotrace.c, an LD_PRELOAD library that logs the calls
that make a message durable (open, write, fsync, link, rename, unlink,
fork, and the replies written to fd 1), kills the process at the N-th of
them ($IOTRACE_KILL_AT, before or after the call), or makes a kind of call
fail ($IOTRACE_FAIL=write:N:ERRNO); tests/shims/qqdurable.c, a qmail-queue
with qmail-queue's guarantee (queues only a whole message and envelope)."""
import errno
import os
import random
import re
import resource
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import base_env, bin_path

HERE = os.path.dirname(os.path.abspath(__file__))
CC = shutil.which("cc") or shutil.which("gcc")


def build_shims(d):
    """Compile the shims into d; returns (iotrace.so, qqdurable)."""
    lib = os.path.join(d, "iotrace.so")
    qq = os.path.join(d, "qqdurable")
    subprocess.run([CC, "-shared", "-fPIC", "-O1", "-o", lib, os.path.join(HERE, "shims", "iotrace.c"), "-ldl"],
                   check=True, capture_output=True, timeout=60)
    subprocess.run([CC, "-O1", "-o", qq, os.path.join(HERE, "shims", "qqdurable.c")],
                   check=True, capture_output=True, timeout=60)
    return lib, qq


def message(i, size=0):
    body = b"".join(b"line %d of message %d\r\n" % (n, i) for n in range(max(1, size // 24)))
    return b"Subject: message %d\r\n\r\n" % i + body


def session(msgs):
    """An SMTP session (pipelined) sending msgs, one transaction each."""
    s = b"EHLO client.example\r\n"
    for i, m in enumerate(msgs):
        s += b"MAIL FROM:<s%d@example.com>\r\nRCPT TO:<r%d@example.net>\r\nDATA\r\n" % (i, i)
        s += m.replace(b"\r\n.", b"\r\n..") + b".\r\n"      # m ends in CR LF
    return s + b"QUIT\r\n"


def expected_file(i, m):
    """queuedir's file for message i: sender NUL, rcpt NUL, NUL, data (LF)."""
    return b"s%d@example.com\0r%d@example.net\0\0" % (i, i) + m.replace(b"\r\n", b"\n")


def acknowledged(stdout):
    """How many messages the client saw accepted (a 250 after 354)."""
    n = 0
    lines = stdout.split(b"\r\n")
    after_354 = False
    for line in lines:
        if line.startswith(b"354"):
            after_354 = True
        elif after_354 and line[:1] in (b"2", b"4", b"5"):
            if line.startswith(b"250"):
                n += 1
            after_354 = False
    return n


def live_in_group(pgid):
    """Processes of group pgid that are still running (zombies, which an
    init that does not reap may keep around, do not count)."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            n += 1
    return n


def wait_group_gone(tc, pgid, timeout=10.0):
    """Wait until no process of group pgid is left running; fail after
    timeout."""
    end = time.time() + timeout
    while time.time() < end:
        if not live_in_group(pgid):
            return
        time.sleep(0.01)
    tc.fail("qmail-queue still running after %.0fs" % timeout)


class DurabilityBase(harness.TempDirTest):
    @classmethod
    def setUpClass(cls):
        if not CC:
            raise RuntimeError("no C compiler for the shims")
        cls.shimdir = tempfile.mkdtemp(prefix="mfshim.")
        cls.iotrace, cls.qqdurable = build_shims(cls.shimdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.shimdir, True)

    def queuedir(self):
        qd = os.path.join(self.tmp, "queue")
        shutil.rmtree(qd, True)
        for d in ("tmp", "new"):
            os.makedirs(os.path.join(qd, d))
        return qd

    def env(self, **extra):
        env = base_env(LD_PRELOAD=self.iotrace, **extra)
        if harness.SANITIZED:
            env["ASAN_OPTIONS"] += ":verify_asan_link_order=0"
        return env

    def run_front(self, data, env, backend="queuedir", preexec=None):
        return subprocess.run([bin_path("mailfront"), "smtp", backend, "accept"], input=data, env=env,
                              capture_output=True, timeout=60, preexec_fn=preexec)

    def trace(self, path):
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()

    def check_queuedir(self, qd, msgs, acked):
        """Every acknowledged message complete in new/; every file in new/
        one whole message."""
        files = {}
        for name in os.listdir(os.path.join(qd, "new")):
            with open(os.path.join(qd, "new", name), "rb") as f:
                files[name] = f.read()
        want = [expected_file(i, m) for i, m in enumerate(msgs)]
        contents = list(files.values())
        for i in range(acked):
            self.assertTrue(want[i] in contents, "acknowledged message %d not complete in new/" % i)
        for name, c in files.items():
            self.assertTrue(c in want, "partial or foreign file in new/: %s: %r" % (name, c[:120]))
        return len(files)


class QueuedirOrderTest(DurabilityBase):
    """What a mutation review found unchecked: the order of fsync, link and
    the reply, and failed writes."""

    def test_fsync_file_then_link_then_fsync_dir_then_reply(self):
        qd = self.queuedir()
        log = os.path.join(self.tmp, "trace")
        m = message(0, 3000)
        p = self.run_front(session([m]), self.env(QUEUEDIR=qd, IOTRACE_LOG=log))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(acknowledged(p.stdout), 1)
        t = self.trace(log)
        tmpdir = os.path.join(qd, "tmp") + "/"
        tmpname = next(line.split(" ", 1)[1] for line in t if line.startswith("open " + tmpdir))
        newname = os.path.join(qd, "new", os.path.basename(tmpname))
        i_write = max(i for i, line in enumerate(t) if line.startswith("write ") and tmpname in line)
        i_fsync = t.index("fsync " + tmpname)
        i_link = t.index("link %s %s" % (tmpname, newname))
        i_dir = t.index("fsync " + os.path.join(qd, "new"))
        i_reply = next(i for i, line in enumerate(t) if line.startswith("reply") and "2.6.0" in line)
        self.assertLess(i_write, i_fsync, "the whole file is written before its fsync")
        self.assertLess(i_fsync, i_link, "fsync(file) precedes the link into new/")
        self.assertLess(i_link, i_dir, "the link precedes fsync(new/)")
        self.assertLess(i_dir, i_reply, "fsync(new/) precedes the 250")
        self.check_queuedir(qd, [m], 1)

    def failing(self, spec):
        qd = self.queuedir()
        m = message(0, 20000)
        p = self.run_front(session([m]), self.env(QUEUEDIR=qd, IOTRACE_FAIL=spec))
        self.assertEqual(acknowledged(p.stdout), 0, p.stdout)
        self.assertRegex(p.stdout, rb"\r\n451 4\.3\.0 Error writing queue file\r\n")
        self.assertEqual(os.listdir(os.path.join(qd, "new")), [])
        self.assertIn(b"451", p.stderr, "the failure is logged")
        return p

    def test_failed_write_gives_451(self):
        for n in (1, 3, 7):
            with self.subTest(write=n):
                self.failing("write:%d:%d" % (n, errno.ENOSPC))

    def test_failed_fsync_gives_451(self):
        self.failing("fsync:1:%d" % errno.EIO)

    def test_failed_dir_fsync_gives_451(self):
        self.failing("fsync:2:%d" % errno.EIO)

    def test_failed_link_gives_451(self):
        self.failing("link:1:%d" % errno.ENOSPC)

    def test_file_size_limit_gives_451(self):
        # A real write failure: RLIMIT_FSIZE (SIGXFSZ ignored) cuts the
        # queue file short; nothing may be accepted or left in new/.
        qd = self.queuedir()
        m = message(0, 40000)

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
        p = self.run_front(session([m]), base_env(QUEUEDIR=qd), preexec=limit)
        self.assertEqual(acknowledged(p.stdout), 0, p.stdout)
        self.assertIn(b"\r\n451 ", p.stdout)
        self.assertEqual(os.listdir(os.path.join(qd, "new")), [])


class KillPointsTest(DurabilityBase):
    """SIGKILL at every traced call of several sessions (before and after the
    call), then at random points: the invariant holds every time."""

    points = 0

    def kill_run(self, msgs, kill_at, after, qd):
        env = self.env(QUEUEDIR=qd, IOTRACE_KILL_AT=kill_at)
        if after:
            env["IOTRACE_KILL_AFTER"] = "1"
        p = self.run_front(session(msgs), env)
        acked = acknowledged(p.stdout)
        self.check_queuedir(qd, msgs, acked)
        self.check_restart_cleans(qd)
        type(self).points += 1
        return p

    def check_restart_cleans(self, qd):
        """One more session (a restart in tcpserver mode) leaves no stale
        file in tmp/: the killed writer's pid is gone."""
        p = self.run_front(b"QUIT\r\n", base_env(QUEUEDIR=qd, QUEUEDIR_TMP_MAXAGE=0, QUEUEDIR_TMP_SWEEP=0))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(os.listdir(os.path.join(qd, "tmp")), [], "a restart removes what the killed writer left")

    def count_events(self, msgs):
        qd = self.queuedir()
        log = os.path.join(self.tmp, "count")
        if os.path.exists(log):
            os.unlink(log)
        p = self.run_front(session(msgs), self.env(QUEUEDIR=qd, IOTRACE_LOG=log))
        self.assertEqual(acknowledged(p.stdout), len(msgs))
        return len(self.trace(log))

    def sweep(self, msgs):
        events = self.count_events(msgs)
        self.assertGreater(events, 5 * len(msgs))
        killed = 0
        for n in range(1, events + 1):
            for after in (0, 1):
                qd = self.queuedir()
                p = self.kill_run(msgs, n, after, qd)
                killed += p.returncode == -signal.SIGKILL
        self.assertGreaterEqual(killed, 2 * events - 2, "the kills happened")

    def test_sweep_three_small_messages(self):
        self.sweep([message(i, 100) for i in range(3)])

    def test_sweep_one_large_message(self):
        self.sweep([message(0, 120000)])

    def test_random_points(self):
        rnd = random.Random(18)
        msgs = [message(i, rnd.choice((10, 2000, 30000))) for i in range(5)]
        events = self.count_events(msgs)
        for _ in range(500):
            qd = self.queuedir()
            self.kill_run(msgs, rnd.randint(1, events), rnd.randint(0, 1), qd)

    @classmethod
    def tearDownClass(cls):
        # Reported by the suite's log: how many kill points were checked.
        print("\nqueuedir kill points checked: %d" % cls.points)
        super().tearDownClass()


class QmailKillTest(DurabilityBase):
    """The qmail back end killed at random moments while qmail-queue runs:
    every acknowledged message was queued whole by qmail-queue; nothing cut
    short was queued."""

    def qq_dir(self):
        d = os.path.join(self.tmp, "qq")
        shutil.rmtree(d, True)
        for sub in ("tmp", "queue"):
            os.makedirs(os.path.join(d, sub))
        return d

    def check_qq(self, d, msgs, acked):
        want = []
        for i, m in enumerate(msgs):
            env = b"Fs%d@example.com\0Tr%d@example.net\0\0" % (i, i)
            want.append(env + m.replace(b"\r\n", b"\n"))
        got = []
        for name in os.listdir(os.path.join(d, "queue")):
            with open(os.path.join(d, "queue", name), "rb") as f:
                got.append(f.read())
        for i in range(acked):
            self.assertTrue(want[i] in got, "acknowledged message %d not queued whole" % i)
        for g in got:
            self.assertTrue(g in want, "a partial message was queued: %d bytes %r ... %r" % (len(g), g[:120], g[-60:]))

    def test_qmail_random_kills(self):
        rnd = random.Random(1818)
        msgs = [message(i, rnd.choice((10, 5000, 200000))) for i in range(4)]
        data = session(msgs)
        killed = 0
        for k in range(400):
            d = self.qq_dir()
            scratch = os.path.join(d, "scratch")
            os.mkdir(scratch)
            env = base_env(QMAILQUEUE=self.qqdurable, QQ_DIR=d, QMAILHOME=self.tmp, TMPDIR=scratch)
            p = subprocess.Popen([bin_path("mailfront"), "smtp", "qmail", "accept"], env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
            delay = rnd.uniform(0.0, 0.06 if not harness.SANITIZED else 0.15)
            try:
                out, _ = p.communicate(data, timeout=delay)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                out, _ = p.communicate(timeout=30)
                killed += 1
            # A qmail-queue left running finishes (or refuses) on its own.
            wait_group_gone(self, p.pid)
            self.check_qq(d, msgs, acknowledged(out))
            # The back end writes no file of its own (qmail-queue's are
            # qmail-queue's, cleaned by qmail-clean).
            self.assertEqual(os.listdir(scratch), [], "the qmail back end left a file")
        self.assertGreater(killed, 100, "most runs were killed mid-session")
        print("\nqmail kill points checked: 400 (%d killed mid-session)" % killed)


def dead_pid():
    """A pid that no process has now (a child that ran and was reaped)."""
    q = subprocess.Popen(["true"])
    q.wait(timeout=30)
    return q.pid


def age(path, seconds):
    """Set path's access and modification times `seconds` in the past."""
    t = time.time() - seconds
    os.utime(path, (t, t))


class TmpSweepTest(DurabilityBase):
    """What killed writers leave in tmp/ is removed by the next start, and
    nothing a live session writes ever is."""

    def plant(self, qd, name, seconds_old, data=b"partial"):
        path = os.path.join(qd, "tmp", name)
        with open(path, "wb") as f:
            f.write(data)
        age(path, seconds_old)
        return path

    def sweep_env(self, qd, **extra):
        env = dict(QUEUEDIR=qd, QUEUEDIR_TMP_MAXAGE=60, QUEUEDIR_TMP_SWEEP=0)
        env.update(extra)
        return base_env(**env)

    def test_live_slow_session_is_not_swept(self):
        qd = self.queuedir()
        live = subprocess.Popen([bin_path("mailfront"), "smtp", "queuedir", "accept"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=self.sweep_env(qd, QUEUEDIR_TMP_MAXAGE=0))
        try:
            live.stdin.write(b"HELO c\r\nMAIL FROM:<slow@example.com>\r\nRCPT TO:<r@example.net>\r\n"
                             b"DATA\r\nSubject: slow\r\n\r\nfirst line\r\n")
            live.stdin.flush()
            end = time.time() + 30
            mine = []
            while time.time() < end and not mine:
                mine = [n for n in os.listdir(os.path.join(qd, "tmp")) if n.endswith(".%d" % live.pid)]
                time.sleep(0.02)
            self.assertEqual(len(mine), 1, "the live session's file appears in tmp/")
            livefile = os.path.join(qd, "tmp", mine[0])
            age(livefile, 3600)   # old, but its writer runs
            dead = dead_pid()
            stale = self.plant(qd, "1700000000.000001.%d" % dead, 120)
            young = self.plant(qd, "1700000000.000002.%d" % dead, 5)
            foreign_old = self.plant(qd, "not-ours", 37 * 3600)         # any file 36 h old
            foreign_new = self.plant(qd, "not-ours-either", 3600)
            # Another session's sweep (MAXAGE 0: only the pid protects it).
            p = self.run_front(b"QUIT\r\n", self.sweep_env(qd, QUEUEDIR_TMP_MAXAGE=0))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"removed stale temporary file", p.stderr, "a removal is logged")
            self.assertTrue(os.path.exists(livefile), "a live session's file is never removed")
            self.assertFalse(os.path.exists(stale), "a dead writer's file goes")
            self.assertFalse(os.path.exists(foreign_old), "any file 36 hours old goes")
            self.assertTrue(os.path.exists(foreign_new), "a file without a pid stays until 36 h old")
            self.assertFalse(os.path.exists(young), "MAXAGE 0: a dead writer's file goes at once")
            # The live session finishes: its message is whole in new/.
            out, _ = live.communicate(b"last line\r\n.\r\nQUIT\r\n", timeout=30)
        finally:
            if live.poll() is None:
                live.kill()
                live.wait(timeout=30)
        self.assertEqual(acknowledged(out), 1, out)
        self.assertEqual(sorted(os.listdir(os.path.join(qd, "tmp"))), ["not-ours-either"])
        self.assertEqual(len(os.listdir(os.path.join(qd, "new"))), 1)

    def test_maxage_protects_young_files(self):
        qd = self.queuedir()
        dead = dead_pid()
        young = self.plant(qd, "1700000000.000002.%d" % dead, 5)
        old = self.plant(qd, "1700000000.000003.%d" % dead, 120)
        p = self.run_front(b"QUIT\r\n", self.sweep_env(qd))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(young), "younger than QUEUEDIR_TMP_MAXAGE")
        self.assertFalse(os.path.exists(old))

    def test_sweeps_are_rate_limited(self):
        qd = self.queuedir()
        dead = dead_pid()
        env = base_env(QUEUEDIR=qd, QUEUEDIR_TMP_MAXAGE=0, QUEUEDIR_TMP_SWEEP=300)
        first = self.plant(qd, "1700000000.000001.%d" % dead, 10)
        p = self.run_front(b"QUIT\r\n", env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(first), "no stamp yet: the first start sweeps")
        stamp = os.path.join(qd, ".sweep-tmp")
        self.assertTrue(os.path.exists(stamp), "the stamp is outside tmp/")
        second = self.plant(qd, "1700000000.000002.%d" % dead, 10)
        p = self.run_front(session([message(0, 100)]), env)
        self.assertEqual(acknowledged(p.stdout), 1, p.stdout)
        self.assertTrue(os.path.exists(second), "within QUEUEDIR_TMP_SWEEP seconds no new sweep")
        age(stamp, 301)
        p = self.run_front(b"QUIT\r\n", env)
        self.assertFalse(os.path.exists(second), "the interval over: swept again")

    def test_mailfrontd_start_sweeps(self):
        qd = self.queuedir()
        stale = self.plant(qd, "1700000000.000001.%d" % dead_pid(), 120)
        log = tempfile.TemporaryFile()
        d = subprocess.Popen([bin_path("mailfrontd"), "-1", "127.0.0.1", "0", "smtp", "queuedir", "accept"],
                             env=self.sweep_env(qd), stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        try:
            ready, _, _ = select.select([d.stdout], [], [], 30)
            self.assertTrue(ready, "mailfrontd printed its port")
            self.assertTrue(d.stdout.readline().strip().isdigit())
            self.assertFalse(os.path.exists(stale), "mailfrontd's start removed the dead writer's file")
        finally:
            os.killpg(d.pid, signal.SIGTERM)
            try:
                d.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(d.pid, signal.SIGKILL)
                d.wait(timeout=10)
            d.stdout.close()
            log.close()

    def test_pop3_maildir_quit_cleans_tmp(self):
        md = os.path.join(self.tmp, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub))
        with open(os.path.join(md, "new", "1700000000.1.host"), "wb") as f:
            f.write(b"Subject: x\n\nbody\n")
        old = os.path.join(md, "tmp", "1600000000.1.host")
        recent = os.path.join(md, "tmp", "1700000000.2.host")
        for path, seconds in ((old, 37 * 3600), (recent, 35 * 3600)):
            with open(path, "wb") as f:
                f.write(b"partial delivery")
            age(path, seconds)
        env = base_env(MAILBOX=md)
        p = subprocess.run([bin_path("pop3front-maildir")], input=b"STAT\r\n", env=env,
                           capture_output=True, timeout=60)
        self.assertTrue(os.path.exists(old), "only QUIT changes the maildir")
        p = subprocess.run([bin_path("pop3front-maildir")], input=b"STAT\r\nQUIT\r\n", env=env,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.endswith(b"+OK \r\n"), p.stdout)
        self.assertFalse(os.path.exists(old), "a tmp/ file untouched for 36 hours goes at QUIT")
        self.assertTrue(os.path.exists(recent), "a younger one stays")
        self.assertEqual(os.listdir(os.path.join(md, "cur")), ["1700000000.1.host"])


class DiskFaultTest(DurabilityBase):
    """A real small tmpfs as the queue: filled up (ENOSPC), and remounted
    read-only mid-run."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mnt = tempfile.mkdtemp(prefix="mfdisk.")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", cls.mnt],
                           capture_output=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("cannot mount a tmpfs for the disk-fault tests: %r" % p.stderr)

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["umount", "-l", cls.mnt], capture_output=True, timeout=30)
        os.rmdir(cls.mnt)
        super().tearDownClass()

    def fresh(self):
        subprocess.run(["mount", "-o", "remount,rw", self.mnt], check=True, capture_output=True, timeout=30)
        for name in os.listdir(self.mnt):
            shutil.rmtree(os.path.join(self.mnt, name), True)
        for d in ("tmp", "new"):
            os.makedirs(os.path.join(self.mnt, d))

    def test_full_disk(self):
        self.fresh()
        msgs = [message(i, 30000) for i in range(14)]       # ~430 KiB > 256 KiB
        p = self.run_front(session(msgs), base_env(QUEUEDIR=self.mnt, TMPDIR=self.tmp))
        acked = acknowledged(p.stdout)
        self.assertGreater(acked, 2)
        self.assertLess(acked, len(msgs), "the disk filled up")
        self.assertIn(b"451 4.3.0 Error writing queue file", p.stdout)
        self.assertIn(b"451", p.stderr, "each failure is logged")
        self.check_queuedir(self.mnt, msgs, acked)
        self.assertEqual(len(os.listdir(os.path.join(self.mnt, "tmp"))), 0, "failed files are removed")

    def test_read_only_mid_run(self):
        self.fresh()
        first = [message(0, 100)]
        p = self.run_front(session(first), base_env(QUEUEDIR=self.mnt))
        self.assertEqual(acknowledged(p.stdout), 1)
        subprocess.run(["mount", "-o", "remount,ro", self.mnt], check=True, capture_output=True, timeout=30)
        try:
            p = self.run_front(session([message(1, 100)]), base_env(QUEUEDIR=self.mnt))
        finally:
            subprocess.run(["mount", "-o", "remount,rw", self.mnt], check=True, capture_output=True, timeout=30)
        self.assertEqual(acknowledged(p.stdout), 0)
        self.assertIn(b"\r\n451 4.3.0 Error creating queue file", p.stdout)
        self.assertEqual(len(os.listdir(os.path.join(self.mnt, "new"))), 1)


if __name__ == "__main__":
    unittest.main()
