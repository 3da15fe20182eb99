"""Symbol hygiene and header compatibility (issue 10 items 1-3).

- The mailfront driver exports exactly the plugin ABI: every function and
  object declared in include/mailfront/*.h, listed in src/core/exports.map,
  and nothing else; no exported name is also a function of Debian's
  libbg.so.2 unless it is one of the str_* functions whose behaviour is
  bglibs' (tests/unit/str_bglibs.c).
- Every module exports only its entry structure (plugin, protocol or
  backend).
- A plugin that includes a bglibs header next to <mailfront/mailfront.h>
  compiles, in either order (no "redefinition of struct str"), and
  upstream's check-fqdn idiom (str_findlast < 0 when absent) works.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = os.path.join(ROOT, "include")
LIBBG = "/usr/lib/libbg.so.2"
# The str_* functions the driver shares with bglibs, with bglibs' behaviour.
SHARED_WITH_BGLIBS = {"str_alloc", "str_free", "str_truncate", "str_copy", "str_copys", "str_copyb", "str_cat",
                      "str_cats", "str_catc", "str_catb", "str_catu", "str_cat2s", "str_cat3s", "str_lower",
                      "str_diffs", "str_findnext", "str_findprev"}


def dynsyms(path, defined=True):
    out = subprocess.run(["nm", "-D", "--defined-only" if defined else "--undefined-only", path],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-2] not in ("w", "v"):
            names.add(parts[-1].split("@")[0])
    return names


def header_abi():
    """Names declared in the public headers (as the preprocessor sees them:
    the I/O functions under their exported mf_ names)."""
    src = "".join(f"#include <mailfront/{h}>\n" for h in sorted(os.listdir(os.path.join(INCLUDE, "mailfront"))))
    pp = subprocess.run(["cc", "-E", "-P", "-DMAILFRONT_OWN_STR", "-I", INCLUDE, "-x", "c", "-"], input=src,
                        capture_output=True, text=True, timeout=60, check=True).stdout
    names = set()
    for line in pp.splitlines():
        if line.startswith(("typedef", " ", "\t", "struct", "}")) or not line.strip():
            continue
        m = re.search(r"\b([A-Za-z_]\w*)\s*(\(|\[\]\s*;|;)", line)
        if m:
            names.add(m.group(1))
    names.discard("max_align_t")
    return names


def exports_map():
    text = open(os.path.join(ROOT, "src", "core", "exports.map")).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    glob = text.split("global:")[1].split("local:")[0]
    return {n.strip() for n in glob.split(";") if n.strip()}


class Exports(unittest.TestCase):
    def test_driver_exports_exactly_the_abi(self):
        exported = dynsyms(harness.bin_path("mailfront"))
        exported = {n for n in exported if not n.startswith("_") and n not in ("__bss_start", "_edata", "_end")}
        abi = header_abi()
        self.assertEqual(exports_map(), abi, "src/core/exports.map lists the public headers' names")
        self.assertEqual(exported, abi)
        self.assertLess(len(exported), 110)

    def test_no_collision_with_libbg(self):
        if not os.path.exists(LIBBG):
            self.fail("Debian's libbg2 is a test dependency")
        libbg = dynsyms(LIBBG)
        clash = dynsyms(harness.bin_path("mailfront")) & libbg
        self.assertEqual(clash - SHARED_WITH_BGLIBS, set())
        for name in ("ibuf_read", "obuf_write", "ibuf_getc", "obuf_flush", "iobuf_timeout"):
            self.assertNotIn(name, dynsyms(harness.bin_path("mailfront")))

    def test_modules_export_only_their_entry(self):
        for name in sorted(os.listdir(harness.LIB)):
            if not name.endswith(".so") or name == "mailfront-tls.so":
                continue
            kind = name.split("-", 1)[0]
            with self.subTest(module=name):
                got = {n for n in dynsyms(os.path.join(harness.LIB, name)) if not n.startswith("_")}
                # and at most the optional configuration check hook (mailfront --check)
                self.assertEqual(got - {"mailfront_check"}, {kind})

    def test_modules_resolve_every_symbol(self):
        """A module needs only the ABI, its libraries and libc: a symbol of
        src/lib that it calls must be linked into it (a shared source listed
        after libmf.a would leave it undefined and fail at dlopen).  And no
        module needs the C start files (linked without them: mk/exports.mk)."""
        abi = exports_map()
        for name in sorted(os.listdir(harness.LIB)):
            if not name.endswith(".so") or name == "mailfront-tls.so":
                continue
            path = os.path.join(harness.LIB, name)
            with self.subTest(module=name):
                out = subprocess.run(["nm", "-D", "--undefined-only", path], capture_output=True, text=True,
                                     timeout=60, check=True).stdout
                unversioned = {l.split()[-1] for l in out.splitlines() if l.split() and "@" not in l.split()[-1]}
                self.assertNotIn("__dso_handle", unversioned)
                libs = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=60).stdout
                provided = set()
                for line in libs.splitlines():
                    m = re.search(r"=> (/\S+)", line)
                    if m and "libc.so" not in m.group(1):
                        provided |= dynsyms(m.group(1))
                missing = {n for n in unversioned - abi - provided if not n.startswith("_")} - {"mf_log_state"}
                self.assertEqual(missing, set())


PLUGIN = r"""
%(first)s
%(second)s
#include <string.h>
/* upstream check-fqdn's idiom: str_findlast returns -1 when absent */
static const response* sender(str* s, str* p)
{
  static RESPONSE(bad, 554, "5.1.2 no domain");
  (void)p;
  int at = str_findlast(s, '@');
  if (at < 0) return &resp_bad;
  return 0;
}
struct plugin plugin = { .version = PLUGIN_VERSION, .sender = sender };
"""


class BglibsHeaders(harness.TempDirTest):
    def compile(self, first, second):
        src = os.path.join(self.tmp, "p.c")
        with open(src, "w") as f:
            f.write(PLUGIN % {"first": first, "second": second})
        so = os.path.join(self.tmp, "plugin-p.so")
        p = subprocess.run(["cc", "-std=gnu11", "-Wall", "-Werror", "-fPIC", "-shared", "-I", INCLUDE,
                            "-o", so, src], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return so

    def test_bglibs_header_next_to_ours_either_order(self):
        if not os.path.exists("/usr/include/bglibs/str.h"):
            self.fail("bglibs headers (Debian package libbg-dev) are a test dependency")
        ours = "#include <mailfront/mailfront.h>"
        for theirs in ("#include <bglibs/str.h>", "#include <bglibs/msg.h>", "#include <bglibs/cdb.h>"):
            for first, second in ((theirs, ours), (ours, theirs)):
                with self.subTest(first=first, second=second):
                    self.compile(first, second)

    def test_findlast_idiom_at_run_time(self):
        so = self.compile("#include <bglibs/str.h>", "#include <mailfront/mailfront.h>")
        mods = os.path.join(self.tmp, "mods")
        os.mkdir(mods)
        for name in os.listdir(harness.LIB):
            os.symlink(os.path.join(harness.LIB, name), os.path.join(mods, name))
        os.symlink(so, os.path.join(mods, "plugin-p.so"))
        p = harness.run([harness.bin_path("mailfront"), "smtp", "echo", "p", "accept"],
                        b"MAIL FROM:<u>\r\nMAIL FROM:<u@h>\r\nQUIT\r\n",
                        harness.base_env(MODULE_PATH=mods, TCPLOCALHOST="mx"), timeout=30)
        harness.assert_no_sanitizer_report(self, p)
        lines = p.stdout.decode().split("\r\n")
        self.assertEqual(lines[1], "554 5.1.2 no domain")
        self.assertEqual(lines[2], "250 Sender='u@h'.")


if __name__ == "__main__":
    unittest.main()
