"""Debian packaging, install layout and optional features.

PackageTest (once per module, in a copy of the tracked tree):
  dpkg-buildpackage -us -uc -b; lintian (an error fails); the packages' contents
  against the documented layout; `apt-get -s install ./*.deb` (dependencies resolve, it
  would install over Debian's 2.12 as an upgrade, nothing is changed); then, from a
  `dpkg -x` tree (Debian's own mailfront stays installed: the other tests need it),
  an SMTP session through the installed smtpfront-echo, the installed units checked
  by systemd-analyze, and the command of the installed mailfront@.service run on a
  socket as systemd would run it.
The install layout and the optional features: tests/test_packaging_layout.py.
"""
import glob
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

import harness

# Tests the source tree and builds its own binaries: run once, in the
# normal build's pass (tests/run.py).
BUILD_INDEPENDENT = True

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "qmail_queue_standin.py")
with open(os.path.join(ROOT, "VERSION")) as _f:
    VERSION = _f.read().strip()
SESSION = (b"HELO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
           b"Subject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n")


def parse_unit(path):
    """A systemd unit's Environment= (dict), EnvironmentFile= (list), ExecStart=
    (argv, None when absent) and its other settings (dict, last one wins)."""
    env, files, cmd, other = {}, [], None, {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("Environment="):
                k, v = line[len("Environment="):].split("=", 1)
                env[k] = v
            elif line.startswith("EnvironmentFile="):
                files.append(line[len("EnvironmentFile="):])
            elif line.startswith("ExecStart="):
                cmd = shlex.split(line[len("ExecStart="):])
            elif "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                other[k] = v
    return env, files, cmd, other


def accepted_on_socketpair(test, argv, env, timeout, qq):
    """Runs argv as systemd's Accept=yes runs a unit's command (the connection
    on fds 0/1), sends SESSION with a deadline of timeout seconds, and checks
    the session accepted the message and the qmail-queue stand-in (files
    qq.env, qq.msg) queued it whole with add-received's client address."""
    a, b = socket.socketpair()
    with a, b:
        proc = subprocess.Popen(argv, stdin=b, stdout=b, stderr=subprocess.PIPE, env=env)
        b.close()
        a.settimeout(timeout)
        got = harness.send_all_read_all(a, SESSION)
        _, err = proc.communicate(timeout=60)
    test.assertEqual(proc.returncode, 0, err)
    lines = got.decode().split("\r\n")
    test.assertEqual(lines[0], "220 localhost mailfront ESMTP")
    test.assertTrue(any(l.startswith("250 2.6.0 Accepted message") for l in lines), lines)
    with open(qq + ".env", "rb") as f:
        test.assertEqual(f.read(), b"Fa@example.com\0Tb@example.net\0\0")
    with open(qq + ".msg", "rb") as f:
        msg = f.read()
    test.assertIn(b"[192.0.2.7]", msg)          # add-received saw $REMOTE_ADDR as TCPREMOTEIP
    test.assertTrue(msg.endswith(b"Subject: s\n\nbody\n"))


def copy_tree(dest):
    """The tracked files of the work tree (with uncommitted edits) into dest."""
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True,
                           check=True, timeout=60).stdout.split(b"\0")
    for f in files:
        if not f:
            continue
        src = os.path.join(ROOT, os.fsdecode(f))
        if not os.path.lexists(src):
            continue
        dst = os.path.join(dest, os.fsdecode(f))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)


def arch():
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


def apt_mirror():
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    paths = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) \
        + sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    for path in paths:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            m = re.search(r"(?m)^URIs:\s*(\S+)", stanza)
            if m and re.search(r"(?m)^Suites:.*\bbookworm\b", stanza) and "security" not in m.group(1):
                return m.group(1)
        m = re.search(r"(?m)^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", text)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


# The module's shared state: the package build (PackageTest, InstalledPackageTest)
# and a minimal Debian 12 made by debootstrap, in parallel with the build.
STATE = {}


def setUpModule():
    tmp = tempfile.mkdtemp(prefix="mfpkg.", dir=os.environ.get("MF_PKG_TMPDIR") or harness.BUILD)
    STATE["tmp"] = tmp
    # Module cleanups run even when setUpModule fails half-way.
    unittest.addModuleCleanup(cleanup_module)
    src = os.path.join(tmp, "mailfront")
    copy_tree(src)
    root = os.path.join(tmp, "chroot")
    STATE["chroot"] = root
    STATE["dbs_log"] = open(os.path.join(tmp, "debootstrap.log"), "w+b")
    # One debootstrap per module run, while the packages build.
    try:
        STATE["dbs"] = subprocess.Popen(["debootstrap", "--variant=minbase", "bookworm", root, apt_mirror()],
                                        stdin=subprocess.DEVNULL, stdout=STATE["dbs_log"], stderr=subprocess.STDOUT,
                                        start_new_session=True)   # its own process group: stopped as a whole
    except OSError as e:
        STATE["dbs_error"] = "debootstrap cannot run: %s" % e
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck")   # the unit tests run in this suite already
    try:
        STATE["build"] = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b", "-j2"], cwd=src, env=env,
                                        capture_output=True, timeout=1200)
    except subprocess.TimeoutExpired as e:
        STATE["build"] = subprocess.CompletedProcess(e.cmd, -1, e.stdout or b"",
                                                     (e.stderr or b"") + b"\ndpkg-buildpackage: timed out")
    STATE["deb"] = os.path.join(tmp, "mailfront_%s_%s.deb" % (VERSION, arch()))
    STATE["dev"] = os.path.join(tmp, "mailfront-dev_%s_all.deb" % VERSION)
    STATE["root"] = os.path.join(tmp, "root")
    if STATE["build"].returncode == 0:
        for d in (STATE["deb"], STATE["dev"]):
            subprocess.run(["dpkg-deb", "-x", d, STATE["root"]], check=True, timeout=120)
    if "dbs" in STATE:
        try:
            STATE["dbs"].wait(timeout=1500)
        except subprocess.TimeoutExpired:
            stop_group(STATE["dbs"])
            STATE["dbs_error"] = "debootstrap did not finish within 1500 s"


def mounts_below(path):
    """Mount points at or below path (from /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == path or point.startswith(path + "/"):
                found.append(point)
    return found


def stop_group(proc):
    """Stop debootstrap and everything it started (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def cleanup_module():
    tmp = STATE.get("tmp")
    dbs = STATE.get("dbs")
    if dbs and dbs.poll() is None:
        stop_group(dbs)
    if STATE.get("dbs_log"):
        STATE["dbs_log"].close()
    # A debootstrap stopped half-way may leave its /proc and /sys mounted in the
    # chroot: unmount them (deepest first).  Never delete through a mount point:
    # if anything is still mounted, fail loudly instead.
    for point in sorted(mounts_below(tmp), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True, timeout=60).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=60)
    left = mounts_below(tmp)
    if left:
        raise RuntimeError("mounts left below %s: %s" % (tmp, left))
    shutil.rmtree(tmp, True)


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = STATE["tmp"]
        cls.build = STATE["build"]
        cls.deb, cls.dev, cls.root = STATE["deb"], STATE["dev"], STATE["root"]

    @staticmethod
    def arch():
        return arch()

    def setUp(self):
        self.assertEqual(self.build.returncode, 0,
                         "dpkg-buildpackage failed:\n" + self.build.stdout.decode()[-3000:] + self.build.stderr.decode()[-3000:])

    def test_lintian_has_no_errors_or_warnings(self):
        changes = os.path.join(self.tmp, "mailfront_%s_%s.changes" % (VERSION, self.arch()))
        p = subprocess.run(["lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", changes],
                           capture_output=True, text=True, timeout=900)
        found = [l for l in p.stdout.splitlines() if l.startswith(("E:", "W:"))]
        self.assertEqual(found, [], p.stdout)
        self.assertNotIn("error", p.stderr.lower().replace("running with root privileges is not recommended", ""))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_contents(self):
        r = self.root
        for f in ("usr/sbin/mailfront", "usr/sbin/smtpfront-qmail", "usr/sbin/smtpfront-echo",
                  "usr/sbin/pop3front-auth", "usr/sbin/pop3front-maildir", "usr/sbin/imapfront-auth",
                  "usr/lib/mailfront/protocol-smtp.so", "usr/lib/mailfront/backend-qmail.so",
                  "usr/lib/mailfront/plugin-mailrules.so", "usr/lib/mailfront/mailfront-tls.so",
                  "usr/share/man/man8/mailfront.8.gz", "usr/share/man/man5/mailfront-rules.5.gz",
                  "usr/share/man/man3/mailfront-plugin.3.gz", "usr/include/mailfront/mailfront.h",
                  "usr/share/pkgconfig/mailfront.pc", "lib/systemd/system/mailfront.socket",
                  "lib/systemd/system/mailfront@.service"):
            self.assertTrue(os.path.exists(os.path.join(r, f)), f)
        # every program and module the package's build made (listed from the build
        # tree, not by hand) is in the package
        built = os.path.join(self.tmp, "mailfront", "debian", "build")
        programs = sorted(os.listdir(os.path.join(built, "bin")))
        modules = sorted(m for m in os.listdir(os.path.join(built, "lib")) if m.endswith(".so"))
        self.assertIn("mailfrontd", programs)
        self.assertGreater(len(modules), 20)
        for prog in programs:
            self.assertTrue(os.access(os.path.join(r, "usr/sbin", prog), os.X_OK), prog)
        for mod in modules:
            self.assertTrue(os.path.isfile(os.path.join(r, "usr/lib/mailfront", mod)), mod)
        # sources linked into several modules (the Makefile's SHARED_SRCS) are no module
        with open(os.path.join(ROOT, "Makefile")) as mk:
            shared = set(re.search(r"^SHARED_SRCS\s*:=(.*)$", mk.read(), re.M).group(1).split())
        self.assertTrue(shared)
        for pattern in ("src/protocols/*", "src/backends/*", "src/plugins/*"):
            kind = pattern.split("/")[1][:-1]
            for s in glob.glob(os.path.join(ROOT, pattern)):
                name = os.path.basename(s)[:-2] if s.endswith(".c") else os.path.basename(s)
                if (s.endswith(".h") or name in ("relay", "redis") or os.path.relpath(s, ROOT) in shared
                        or (not s.endswith(".c") and not os.path.isdir(s))):
                    continue
                self.assertIn("%s-%s.so" % (kind, name), modules, s)
        # every manual page source is in the package
        for scd in os.listdir(os.path.join(ROOT, "man")):
            page = scd[:-4]
            self.assertTrue(os.path.exists(os.path.join(r, "usr/share/man/man" + page[-1], page + ".gz")), page)
        self.assertTrue(os.path.islink(os.path.join(r, "usr/share/man/man8/smtpfront-qmail.8.gz")))
        # the system user is made by the maintainer script
        ctl = os.path.join(self.tmp, "ctl")
        subprocess.run(["dpkg-deb", "-e", self.deb, ctl], check=True, timeout=60)
        with open(os.path.join(ctl, "postinst")) as f:
            self.assertRegex(f.read(), r"adduser --system .*mailfront")
        info = subprocess.run(["dpkg-deb", "-f", self.deb, "Depends"], capture_output=True, text=True, timeout=60).stdout
        self.assertIn("adduser", info)
        self.assertIn("libgnutls30", info)

    def test_would_install(self):
        # what `apt install ./mailfront_*.deb ./mailfront-dev_*.deb` would do, simulated (nothing changes):
        # the dependencies resolve and Debian's 2.12 (if installed) is upgraded, not conflicting
        p = subprocess.run(["apt-get", "-s", "-o", "Debug::NoLocking=1", "install", self.deb, self.dev],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^Inst mailfront \(?.*3\.0\.0")
        self.assertRegex(p.stdout, r"(?m)^Inst mailfront-dev .*3\.0\.0")
        self.assertNotRegex(p.stdout, r"(?m)^Remv ")

    def test_version_and_pkg_config(self):
        p = subprocess.run([os.path.join(self.root, "usr/sbin/mailfront"), "--version"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertIn("mailfront %s (plugin ABI 3" % VERSION, p.stdout)
        self.assertIn("modules /usr/lib/mailfront", p.stdout)
        pcenv = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.root, "usr/share/pkgconfig"),
                     PKG_CONFIG_ALLOW_SYSTEM_CFLAGS="1")
        def pc(*args):
            return subprocess.run(["pkg-config"] + list(args) + ["mailfront"], capture_output=True, text=True,
                                  env=pcenv, timeout=30).stdout.strip()
        self.assertEqual(pc("--modversion"), VERSION)
        self.assertEqual(pc("--cflags"), "-I/usr/include")
        self.assertEqual(pc("--variable=moduledir"), "/usr/lib/mailfront")

    def test_installed_smtpfront_echo_serves(self):
        env = harness.base_env(MODULE_PATH=os.path.join(self.root, "usr/lib/mailfront"))
        p = harness.run([os.path.join(self.root, "usr/sbin/smtpfront-echo"), "accept"], SESSION, env)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().split("\r\n")
        self.assertTrue(lines[0].startswith("220 "), lines)
        self.assertIn("250 Sender='a@example.com'.", lines)
        self.assertIn("250 Recipient='b@example.net'.", lines)
        self.assertTrue(any(re.match(r"250 Received \d+ bytes\.", l) for l in lines), lines)
        self.assertEqual(lines[-2], "221 2.0.0 Good bye.")

    def test_systemd_units_verify(self):
        unitdir = os.path.join(self.root, "lib/systemd/system")
        units = sorted(os.path.join(unitdir, u) for u in os.listdir(unitdir))   # every unit of etc/systemd/
        self.assertEqual(sorted(os.listdir(unitdir)),
                         sorted(u for u in os.listdir(os.path.join(ROOT, "etc", "systemd"))
                                if u.endswith((".socket", ".service"))))
        # The package is unpacked, not installed: the units are verified with
        # their programs' paths pointing into the unpacked tree.
        vdir = tempfile.mkdtemp(prefix="mfunits.")
        self.addCleanup(shutil.rmtree, vdir, True)
        copies = []
        for u in units:
            with open(u) as f:
                text = f.read()
            text = re.sub(r"(?m)^(Exec\w*=[-@+!]*)(/usr/)", lambda m: m.group(1) + self.root + m.group(2), text)
            copies.append(os.path.join(vdir, os.path.basename(u)))
            with open(copies[-1], "w") as f:
                f.write(text)
        p = subprocess.run(["systemd-analyze", "verify", "--man=no"] + copies, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        noise = [l for l in (p.stdout + p.stderr).splitlines()
                 if l.strip() and "Failed to" not in l and "sd-bus" not in l.lower()]
        self.assertEqual(noise, [])

    def test_installed_service_command_serves_a_connection(self):
        """Run ExecStart of the installed mailfront@.service as systemd would with Accept=yes:
        the connection on fds 0/1, $REMOTE_ADDR set, Environment= applied."""
        env, files, cmd, other = parse_unit(os.path.join(self.root, "lib/systemd/system/mailfront@.service"))
        self.assertEqual(other.get("StandardInput"), "socket")
        self.assertIsNotNone(cmd)
        # The installed tree is not at /: point absolute /usr/sbin paths into it.
        cmd = [c.replace("/usr/sbin/", os.path.join(self.root, "usr/sbin") + "/") for c in cmd]
        qhome = os.path.join(self.tmp, "qmail")
        os.makedirs(os.path.join(qhome, "control"), exist_ok=True)
        out = os.path.join(self.tmp, "qq")
        env = harness.base_env(MODULE_PATH=os.path.join(self.root, "usr/lib/mailfront"), QMAILHOME=qhome,
                               QMAILQUEUE=STANDIN, QQ_OUT=out, RELAYCLIENT="", REMOTE_ADDR="192.0.2.7",
                               REMOTE_PORT="40000", **env)
        accepted_on_socketpair(self, cmd, env, 30, out)


QQ_STANDIN = """#!/bin/sh
# qmail-queue stand-in inside the chroot: the message from fd 0, the envelope from fd 1.
cat > /tmp/qq.msg || exit 53
cat <&1 > /tmp/qq.env || exit 54
exit 0
"""


class InstalledPackageTest(unittest.TestCase):
    """The packages really installed, with apt-get, into a minimal Debian 12 made by
    debootstrap (Debian's mailfront 2.12 stays installed on the machine itself):
    maintainer scripts, the system user, the installed programs and unit commands
    run inside the chroot, then remove and purge.  Nothing here talks to the host's
    systemd: the chroot has no /run/systemd/system, so the maintainer scripts'
    deb-systemd-invoke does nothing, and policy-rc.d refuses service starts.

    The tests run in name order (unittest sorts them): test_1_* install,
    test_2_* use the installed system, test_9_* remove and purge."""

    @classmethod
    def setUpClass(cls):
        cls.root = STATE["chroot"]
        cls.proc = os.path.join(cls.root, "proc")
        cls.failure = None
        if STATE["build"].returncode != 0:
            cls.failure = "the packages did not build"
            return
        if STATE.get("dbs_error") or STATE["dbs"].returncode != 0:
            STATE["dbs_log"].seek(0)
            cls.failure = (STATE.get("dbs_error") or "debootstrap failed") + ":\n" \
                + STATE["dbs_log"].read().decode(errors="replace")[-3000:]
            return
        # Class cleanups run even when setUpClass fails half-way: /proc never stays mounted.
        cls.addClassCleanup(cls.unmount_proc)
        subprocess.run(["mount", "-t", "proc", "proc", cls.proc], check=True, timeout=60)
        policy = os.path.join(cls.root, "usr/sbin/policy-rc.d")
        with open(policy, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
        for d in (STATE["deb"], STATE["dev"]):
            shutil.copy(d, os.path.join(cls.root, "tmp"))
        cls.update = cls.chroot(["apt-get", "update", "-q"], timeout=900)
        cls.install = None
        if cls.update.returncode == 0:
            cls.files_before = set(cls.all_files())
            cls.install = cls.chroot(["sh", "-c", "cd /tmp && apt-get install -y -q ./%s ./%s"
                                      % (os.path.basename(STATE["deb"]), os.path.basename(STATE["dev"]))],
                                     timeout=900)

    @classmethod
    def unmount_proc(cls):
        if os.path.ismount(cls.proc):
            r = subprocess.run(["umount", cls.proc], capture_output=True, timeout=60)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", cls.proc], capture_output=True, timeout=60)
        left = mounts_below(cls.root)
        if left:
            raise RuntimeError("mounts left in the chroot: %s" % left)

    @classmethod
    def chroot(cls, argv, data=None, timeout=120, user=None, env=None, **kw):
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LANG": "C"}
        e.update(env or {})
        cmd = ["chroot"] + (["--userspec=%s:%s" % (user, user)] if user else []) + [cls.root] + argv
        return subprocess.run(cmd, input=data, capture_output=True, env=e, timeout=timeout, **kw)

    @classmethod
    def all_files(cls):
        skip = {os.path.join(cls.root, d) for d in ("proc", "tmp", "var/cache", "var/lib/apt", "var/log", "dev")}
        for top, dirs, files in os.walk(cls.root):
            dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip]
            for f in files:
                yield os.path.relpath(os.path.join(top, f), cls.root)

    def setUp(self):
        if self.failure:
            self.fail(self.failure)
        self.assertEqual(self.update.returncode, 0, self.update.stdout.decode()[-2000:] + self.update.stderr.decode()[-2000:])
        self.assertEqual(self.install.returncode, 0,
                         self.install.stdout.decode()[-4000:] + self.install.stderr.decode()[-3000:])

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def dpkg_status(self, pkg):
        """dpkg's status words, or "not-installed" also when dpkg no longer knows the package."""
        p = self.chroot(["dpkg-query", "-W", "-f=${Status}", pkg])
        status = p.stdout.decode() if p.returncode == 0 else ""
        return "not-installed" if status in ("", "unknown ok not-installed") else status

    def test_1_installed_cleanly(self):
        # apt's only complaint inside a chroot without /dev/pts is about its terminal log
        errors = [l for l in (self.install.stdout + self.install.stderr).decode().splitlines()
                  if l.startswith("E: ") and "/dev/pts mounted" not in l]
        self.assertEqual(errors, [])
        self.assertRegex(self.install.stdout.decode(), r"Setting up mailfront \(%s\)" % re.escape(VERSION))
        self.assertEqual(self.dpkg_status("mailfront"), "install ok installed")
        self.assertEqual(self.dpkg_status("mailfront-dev"), "install ok installed")
        audit = self.chroot(["dpkg", "--audit"])
        self.assertEqual((audit.returncode, audit.stdout), (0, b""), audit.stdout)
        # the system user and group made by the postinst
        pw = self.chroot(["getent", "passwd", "mailfront"])
        self.assertEqual(pw.returncode, 0, pw.stderr)
        fields = pw.stdout.decode().strip().split(":")
        self.assertLess(int(fields[2]), 1000)                       # a system uid
        self.assertEqual(fields[5:], ["/nonexistent", "/usr/sbin/nologin"])
        self.assertEqual(self.chroot(["getent", "group", "mailfront"]).returncode, 0)
        # files in place, per dpkg -L
        listed = self.chroot(["dpkg", "-L", "mailfront", "mailfront-dev"]).stdout.decode().split("\n")
        for f in ("/usr/sbin/mailfront", "/usr/sbin/mailfrontd", "/usr/sbin/smtpfront-echo",
                  "/usr/lib/mailfront/protocol-smtp.so", "/usr/lib/mailfront/mailfront-tls.so",
                  "/lib/systemd/system/mailfrontd.service", "/usr/include/mailfront/mailfront.h",
                  "/usr/share/man/man8/mailfront.8.gz"):
            self.assertIn(f, listed)
            self.assertTrue(os.path.lexists(self.path(f)), f)
        for f in listed:
            if f.strip() and f != "/.":
                self.assertTrue(os.path.lexists(self.path(f)), f)
        # the dynamic linker finds every library of every program and module in the chroot
        for f in listed:
            if f.startswith(("/usr/sbin/", "/usr/lib/mailfront/")):
                ldd = self.chroot(["ldd", f])
                if ldd.returncode == 0:
                    self.assertNotIn(b"not found", ldd.stdout, f)
        # the maintainer scripts enabled and started nothing
        self.assertFalse(os.path.exists(self.path("run/systemd/system")))
        self.assertFalse(os.path.exists(self.path("etc/systemd/system/sockets.target.wants/mailfront.socket")))
        # the installed mailfront --version and pkg-config file
        v = self.chroot(["mailfront", "--version"])
        self.assertIn(("mailfront %s (plugin ABI 3" % VERSION).encode(), v.stdout)
        pc = self.chroot(["pkg-config", "--modversion", "mailfront"])
        self.assertEqual(pc.stdout.decode().strip(), VERSION, pc.stderr)

    def test_2_installed_smtpfront_echo(self):
        p = self.chroot(["/usr/sbin/smtpfront-echo", "accept"], data=SESSION, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().split("\r\n")
        self.assertTrue(lines[0].startswith("220 "), lines)
        self.assertIn("250 Sender='a@example.com'.", lines)
        self.assertIn("250 Recipient='b@example.net'.", lines)
        self.assertIn("250 Received 17 bytes.", lines)
        self.assertEqual(lines[-2], "221 2.0.0 Good bye.")
        # the echo back end writes the envelope and the message to stderr
        err = p.stderr.decode()
        for text in ("MAIL FROM:<a@example.com>", "RCPT TO:<b@example.net>", "Subject: s", "bytes in: "):
            self.assertIn(text, err)

    def unit(self, name):
        """Environment=, EnvironmentFile= and ExecStart= of an installed unit."""
        env, files, cmd, other = parse_unit(self.path("lib/systemd/system/" + name))
        self.assertIsNotNone(cmd, name)
        for ef in files:          # "-path": optional, as systemd reads it
            path = self.path(ef.lstrip("-"))
            if not os.path.exists(path):
                self.assertTrue(ef.startswith("-"), ef)
                continue
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith("#") and "=" in line:
                        k, v = line.split("=", 1)
                        env[k] = v.strip('"')
        return env, cmd, other

    def test_2_installed_service_per_connection(self):
        """ExecStart of the installed mailfront@.service run as systemd runs it (Accept=yes):
        as its User=, the connection on fds 0/1, $REMOTE_ADDR/$REMOTE_PORT set,
        Environment= and EnvironmentFile= applied (the site's settings in
        /etc/default/mailfront: a qmail-queue stand-in)."""
        qq = self.path("usr/local/bin/qq-standin")
        with open(qq, "w") as f:
            f.write(QQ_STANDIN)
        os.chmod(qq, 0o755)
        os.makedirs(self.path("var/lib/qmail"), exist_ok=True)
        with open(self.path("etc/default/mailfront"), "w") as f:
            f.write("# site settings\nQMAILQUEUE=/usr/local/bin/qq-standin\nRELAYCLIENT=\n")
        self.addCleanup(os.unlink, self.path("etc/default/mailfront"))
        for f in ("tmp/qq.msg", "tmp/qq.env"):
            if os.path.exists(self.path(f)):
                os.unlink(self.path(f))
        env, cmd, other = self.unit("mailfront@.service")
        self.assertEqual(other.get("StandardInput"), "socket")
        self.assertEqual(other.get("StandardOutput"), "socket")
        user = other.get("User")
        self.assertEqual(user, "mailfront")
        env.update(REMOTE_ADDR="192.0.2.7", REMOTE_PORT="40000")
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        e.update(env)
        accepted_on_socketpair(self, ["chroot", "--userspec=%s:%s" % (user, other.get("Group", user)), self.root] + cmd,
                               e, 60, self.path("tmp/qq"))
        st = os.stat(self.path("tmp/qq.msg"))
        uid = int(self.chroot(["id", "-u", user]).stdout)
        self.assertEqual(st.st_uid, uid)                      # it ran as the unit's User=

    def test_2_installed_listener_socket_activated(self):
        """ExecStart of the installed mailfrontd.service with the listening socket passed
        as systemd does (LISTEN_FDS=1, LISTEN_PID, fd 3), Type=notify through
        $NOTIFY_SOCKET, then a real SMTP client session over TCP, a message in the
        queue directory, and SIGTERM as `systemctl stop` sends it."""
        env, cmd, other = self.unit("mailfrontd.service")
        self.assertEqual(other.get("Type"), "notify")
        # The unit runs as the package's system user, in the queue directory the
        # package made for it; the tcprules file (optional: -X) is what the
        # administrator adds to let a network relay.
        user, group = other["User"], other["Group"]
        uid = int(self.chroot(["id", "-u", user]).stdout)
        gid = int(self.chroot(["getent", "group", group]).stdout.split(b":")[2])
        self.assertIn("-X", cmd)
        rules = cmd[cmd.index("-x") + 1]
        src = os.path.join(STATE["tmp"], "tcp.smtp")
        with open(src, "w") as f:
            f.write("127.:allow,RELAYCLIENT=\"\"\n:allow\n")
        with open(src) as rin:
            r = subprocess.run(["tcprules", self.path(rules), self.path(rules) + ".tmp"], stdin=rin,
                               capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        qdir = self.path(env["QUEUEDIR"])
        for d in ("", "tmp", "new"):
            st = os.stat(os.path.join(qdir, d))
            self.assertEqual((st.st_uid, st.st_gid), (uid, gid), d)
        chk = self.chroot(["mailfront", "--check", "smtp", "queuedir"], env=env, user=None)
        self.assertEqual(chk.returncode, 0, chk.stderr)
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        port = lsock.getsockname()[1]
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify_path = self.path("run/mf-notify.sock")
        notify.bind(notify_path)
        os.chmod(notify_path, 0o777)          # mailfrontd may notify after dropping privileges
        self.addCleanup(os.unlink, notify_path)
        notify.settimeout(120)
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LISTEN_FDS": "1", "NOTIFY_SOCKET": "/run/mf-notify.sock"}
        e.update(env)
        with lsock, notify:
            fd = lsock.fileno()

            def as_fd3():
                os.dup2(fd, 3)
                os.set_inheritable(3, True)
            # LISTEN_PID is the pid of the final program: sh and chroot exec into it.
            proc = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec chroot --userspec="$0" "$@"',
                                     "%s:%s" % (user, group), self.root] + cmd,
                                    env=e, preexec_fn=as_fd3, pass_fds=(fd, 3), stdin=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            try:
                got = b""
                while b"READY=1" not in got:
                    got += notify.recv(4096) + b"\n"
                lsock.close()    # mailfrontd holds its own copy
                with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
                    f = c.makefile("rb")
                    greeting = f.readline()
                    self.assertTrue(greeting.startswith(b"220 mx.example.com "), greeting)
                    c.sendall(SESSION)
                    replies = f.read()
                self.assertIn(b"\r\n250 ", replies)
                self.assertTrue(replies.endswith(b"221 2.0.0 Good bye.\r\n"), replies)
            finally:
                proc.terminate()                   # what systemctl stop sends (KillMode=mixed: to mailfrontd)
                try:
                    _, err = proc.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    _, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        queued = os.listdir(os.path.join(qdir, "new"))
        self.assertEqual(len(queued), 1, queued)
        with open(os.path.join(qdir, "new", queued[0]), "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"a@example.com\0b@example.net\0\0"), data[:80])
        self.assertIn(b"Subject: s", data)
        self.assertEqual(os.stat(os.path.join(qdir, "new", queued[0])).st_uid, uid)

    def test_2_installed_manual_pages_render(self):
        pages = glob.glob(self.path("usr/share/man/man*/*.gz"))
        self.assertGreater(len(pages), 30)
        for page in (self.path("usr/share/man/man8/mailfront.8.gz"), self.path("usr/share/man/man8/mailfrontd.8.gz"),
                     self.path("usr/share/man/man3/mailfront-plugin.3.gz")):
            p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, timeout=120,
                               env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0", LANG="C.UTF-8"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr, b"", page)
            text = re.sub(rb".\x08", b"", p.stdout)           # overstrike bold and underline
            self.assertIn(b"\nNAME\n", text)
            self.assertIn(b"\nENVIRONMENT\n", text)

    def test_9_remove_and_purge(self):
        installed = [l for l in self.chroot(["dpkg", "-L", "mailfront", "mailfront-dev"]).stdout.decode().split("\n")
                     if l.strip() and l != "/."]
        r = self.chroot(["apt-get", "remove", "-y", "-q", "mailfront", "mailfront-dev"], timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.dpkg_status("mailfront-dev"), "not-installed")
        # no conffiles; the postrm (the units' enablement state) waits for the purge
        self.assertIn(self.dpkg_status("mailfront"), ("not-installed", "deinstall ok config-files"))
        for f in installed:
            p = self.path(f)
            if not os.path.isdir(p):
                self.assertFalse(os.path.lexists(p), f)
        r = self.chroot(["apt-get", "purge", "-y", "-q", "mailfront"], timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.dpkg_status("mailfront"), "not-installed")
        self.assertFalse(os.path.exists(self.path("usr/lib/mailfront")))
        self.assertFalse(os.path.exists(self.path("var/lib/systemd/deb-systemd-helper-enabled/mailfront.socket.dsh-also")))
        # every file the packages brought is gone (compared with the tree before the
        # install; what the dependencies brought, apt's state and the test's own files aside)
        test_files = ("usr/local/bin/qq-standin", "usr/sbin/policy-rc.d", "var/spool/mailfront/", "etc/tcp.smtp")
        left = sorted(f for f in set(self.all_files()) - self.files_before
                      if "mailfront" in f and not f.startswith(test_files))
        self.assertEqual(left, [])
        # the system user stays after purge (Debian's practice for system users:
        # files it owned may still exist; docs/install.md)
        self.assertEqual(self.chroot(["getent", "passwd", "mailfront"]).returncode, 0)


if __name__ == "__main__":
    unittest.main()
