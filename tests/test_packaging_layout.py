"""Install layout and optional features.

LayoutTest: `make install DESTDIR=` against the layout of mk/install.mk (and
  docs/install.md), the original's conf-* files, the pkg-config file.
FeaturesOffTest: `make WITH_LUA=0 WITH_TLS=0 WITH_CDB=0` builds without those
  libraries and serves SMTP; the test modules that need none of them pass on it.
"""
import os
import subprocess
import sys
import unittest

import harness
from test_packaging import ROOT, VERSION, copy_tree

# Tests the source tree and builds its own binaries: run once, in the
# normal build's pass (tests/run.py).
BUILD_INDEPENDENT = True


class LayoutTest(harness.TempDirTest):
    def make(self, *args, cwd=ROOT):
        p = subprocess.run(["make", "-s", "-C", cwd, "BUILD=" + harness.BUILD] + list(args),
                           capture_output=True, text=True, timeout=900)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def tree(self, root):
        out = set()
        for d, dirs, files in os.walk(root):
            for f in files:
                out.add(os.path.relpath(os.path.join(d, f), root))
        return out

    def test_default_layout_with_destdir(self):
        dest = os.path.join(self.tmp, "stage")
        self.make("install", "DESTDIR=" + dest)
        got = self.tree(dest)
        for f in ("usr/local/bin/mailfront", "usr/local/bin/smtpfront-qmail", "usr/local/bin/pop3front-auth",
                  "usr/local/lib/mailfront/protocol-smtp.so", "usr/local/lib/mailfront/plugin-counters.so",
                  "usr/local/include/mailfront/mailfront.h", "usr/local/share/man/man8/mailfront.8",
                  "usr/local/share/man/man3/mailfront-plugin.3", "usr/local/share/man/man5/mailfront-rules.5",
                  "usr/local/lib/pkgconfig/mailfront.pc"):
            self.assertIn(f, got)
        # nothing outside the documented directories
        for f in got:
            self.assertRegex(f, r"^usr/local/(bin|lib/mailfront|include/mailfront|share/man/man[358]|lib/pkgconfig)/[^/]+$")
        with open(os.path.join(dest, "usr/local/lib/pkgconfig/mailfront.pc")) as f:
            pc = f.read()
        self.assertIn("moduledir=/usr/local/lib/mailfront", pc)
        self.assertIn("Version: " + VERSION, pc)

    def test_original_conf_files(self):
        """conf-bin / conf-modules / conf-include of the original are honoured; make variables win."""
        src = os.path.join(self.tmp, "src")
        copy_tree(src)
        p = subprocess.run(["make", "-s", "-C", src, "layout"], capture_output=True, text=True, timeout=120)
        self.assertIn("BINDIR=/usr/local/bin\nMODULEDIR=/usr/local/lib/mailfront\nINCDIR=/usr/local/include\n", p.stdout)
        for name, value in (("bin", "/opt/mf/bin"), ("modules", "/opt/mf/modules"), ("include", "/opt/mf/inc")):
            with open(os.path.join(src, "conf-" + name), "w") as f:
                f.write(value + "\n\nThe original's comment lines follow the path.\n")
        p = subprocess.run(["make", "-s", "-C", src, "layout", "INCDIR=/opt/mf/include-override"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("BINDIR=/opt/mf/bin\nMODULEDIR=/opt/mf/modules\nINCDIR=/opt/mf/include-override\n", p.stdout)
        p = subprocess.run(["make", "-s", "-C", src, "layout", "PREFIX=/usr"], capture_output=True, text=True, timeout=120)
        self.assertIn("MANDIR=/usr/share/man\nPKGCONFIGDIR=/usr/lib/pkgconfig\n", p.stdout)
        # MODULEDIR is what the program is built with: a real build from conf-modules
        build = os.path.join(self.tmp, "build")
        p = subprocess.run(["make", "-s", "-j2", "-C", src, "BUILD=" + build, build + "/bin/mailfront"],
                           capture_output=True, text=True, timeout=900)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        v = subprocess.run([os.path.join(build, "bin", "mailfront"), "--version"], capture_output=True, text=True,
                           timeout=30)
        self.assertIn("modules /opt/mf/modules", v.stdout)


class FeaturesOffTest(harness.TempDirTest):
    def test_build_without_lua_tls_cdb(self):
        src = os.path.join(self.tmp, "src")
        copy_tree(src)
        build = os.path.join(self.tmp, "build")
        p = subprocess.run(["make", "-s", "-j2", "-C", src, "BUILD=" + build, "WITH_LUA=0", "WITH_TLS=0", "WITH_CDB=0",
                            "all"], capture_output=True, text=True, timeout=900)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        libs = os.listdir(os.path.join(build, "lib"))
        for absent in ("plugin-lua.so", "mailfront-tls.so", "plugin-mailrules.so", "plugin-qmail-validate.so"):
            self.assertNotIn(absent, libs)
        self.assertIn("plugin-counters.so", libs)
        for f in [os.path.join(build, "bin", b) for b in os.listdir(os.path.join(build, "bin"))] + \
                 [os.path.join(build, "lib", l) for l in libs]:
            if open(f, "rb").read(4) != b"\x7fELF":
                continue
            needed = subprocess.run(["objdump", "-p", f], capture_output=True, text=True, timeout=60).stdout
            for lib in ("libgnutls", "liblua", "libcdb"):
                self.assertNotIn(lib, needed, f)
        # TLS configured but not built: the session works, STARTTLS is not offered
        env = harness.base_env(MODULE_PATH=os.path.join(build, "lib"), TLS_CERTFILE="/nonexistent.pem")
        s = harness.run([os.path.join(build, "bin", "mailfront"), "smtp", "echo", "accept"],
                        b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nQUIT\r\n", env)
        out = s.stdout.decode()
        self.assertIn("250 Recipient='c@d'.", out)
        self.assertNotIn("STARTTLS", out)
        # the test modules that need none of the three pass against this build
        env = dict(os.environ, MF_BUILD=build, MF_JOBS="2")
        env.pop("MF_SANITIZED", None)
        # (patterns end in "." so that they name modules, not test methods of other modules)
        t = subprocess.run([sys.executable, os.path.join(src, "tests", "run.py"), "test_smtp_session.",
                            "test_backends.", "test_smtp_hostile.", "test_check_fqdn.", "test_add_received."],
                           cwd=src, env=env, capture_output=True, text=True, timeout=1500)
        last = t.stdout.strip().splitlines()[-1] if t.stdout.strip() else ""
        self.assertEqual(t.returncode, 0, t.stdout[-4000:] + t.stderr[-2000:])
        self.assertRegex(last, r"^\d+ passed, 0 failed")
        self.assertNotRegex(last, r"^0 passed")


if __name__ == "__main__":
    unittest.main()
