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
import os
import re
import shlex
import shutil
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


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mfpkg.")
        cls.src = os.path.join(cls.tmp, "mailfront")
        copy_tree(cls.src)
        env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck")   # the unit tests run in this suite already
        cls.build = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b", "-j2"], cwd=cls.src, env=env,
                                   capture_output=True, timeout=1200)
        cls.deb = os.path.join(cls.tmp, "mailfront_%s_%s.deb" % (VERSION, cls.arch()))
        cls.dev = os.path.join(cls.tmp, "mailfront-dev_%s_all.deb" % VERSION)
        cls.root = os.path.join(cls.tmp, "root")
        if cls.build.returncode == 0:
            for d in (cls.deb, cls.dev):
                subprocess.run(["dpkg-deb", "-x", d, cls.root], check=True, timeout=120)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    @staticmethod
    def arch():
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()

    def setUp(self):
        self.assertEqual(self.build.returncode, 0,
                         "dpkg-buildpackage failed:\n" + self.build.stdout.decode()[-3000:] + self.build.stderr.decode()[-3000:])

    def test_lintian_has_no_errors(self):
        changes = os.path.join(self.tmp, "mailfront_%s_%s.changes" % (VERSION, self.arch()))
        p = subprocess.run(["lintian", "--tag-display-limit", "0", changes], capture_output=True, text=True, timeout=600)
        errors = [l for l in p.stdout.splitlines() if l.startswith("E:")]
        self.assertEqual(errors, [], p.stdout)
        self.assertNotIn("error", p.stderr.lower().replace("running with root privileges is not recommended", ""))

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
        unit = os.path.join(self.root, "lib/systemd/system/mailfront@.service")
        env, cmd = {}, None
        with open(unit) as f:
            for line in f:
                line = line.strip()
                if line.startswith("Environment="):
                    k, v = line[len("Environment="):].split("=", 1)
                    env[k] = v
                elif line.startswith("ExecStart="):
                    cmd = shlex.split(line[len("ExecStart="):])
                elif line.startswith("StandardInput="):
                    self.assertEqual(line, "StandardInput=socket")
        self.assertIsNotNone(cmd)
        # The installed tree is not at /: point absolute /usr/sbin paths into it.
        cmd = [c.replace("/usr/sbin/", os.path.join(self.root, "usr/sbin") + "/") for c in cmd]
        qhome = os.path.join(self.tmp, "qmail")
        os.makedirs(os.path.join(qhome, "control"), exist_ok=True)
        out = os.path.join(self.tmp, "qq")
        env = harness.base_env(MODULE_PATH=os.path.join(self.root, "usr/lib/mailfront"), QMAILHOME=qhome,
                               QMAILQUEUE=STANDIN, QQ_OUT=out, RELAYCLIENT="", REMOTE_ADDR="192.0.2.7",
                               REMOTE_PORT="40000", **env)
        a, b = socket.socketpair()
        with a, b:
            proc = subprocess.Popen(cmd, stdin=b, stdout=b, stderr=subprocess.PIPE, env=env)
            b.close()
            a.settimeout(30)
            got = harness.send_all_read_all(a, SESSION)
            _, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        lines = got.decode().split("\r\n")
        self.assertEqual(lines[0], "220 localhost mailfront ESMTP")
        self.assertTrue(any(l.startswith("250 2.6.0 Accepted message") for l in lines), lines)
        with open(out + ".env", "rb") as f:
            self.assertEqual(f.read(), b"Fa@example.com\0Tb@example.net\0\0")
        with open(out + ".msg", "rb") as f:
            msg = f.read()
        self.assertIn(b"[192.0.2.7]", msg)          # add-received saw $REMOTE_ADDR as TCPREMOTEIP
        self.assertTrue(msg.endswith(b"Subject: s\n\nbody\n"))


if __name__ == "__main__":
    unittest.main()
