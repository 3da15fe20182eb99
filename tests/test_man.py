"""Manual pages (man/*.scd, built into $MF_BUILD/man by mk/man.mk).

- every page renders without a warning (groff -ww, man -l) and mandoc finds no error;
- every page has the sections NAME, SYNOPSIS, DESCRIPTION, ENVIRONMENT, REPLIES,
  EXAMPLES, SEE ALSO, and each ENVIRONMENT item names its default;
- coverage: every environment variable the C code reads (src/**/*.c|h, found
  statically, see env_reads()) is an ENVIRONMENT item of some page.  Pages and code
  added later by others are picked up automatically;
- every page a SEE ALSO names exists.

How the code's reads are found (env_reads): a string literal that looks like a
variable name (upper case, digits, _) counts when it is an argument of
  1. a call whose function name contains "env" (getenv, session_getenv*,
     getprotoenv, mf_env_number, env_ulong ...; not setenv/unsetenv/putenv), or whose
     arguments pass a getenv-like function (tls_prepare(getenv_fn) style);
  2. a call of a function defined in src/ that itself reads the environment with
     a non-literal name (a helper such as counters' limit(num, "MAXRCPTS"));
  3. names built from parts: a literal starting with "_" passed to such a
     helper is a suffix (queuedir's var("_TMP")), covered by any item ending
     with it; a literal with a printf conversion in a function that reads the
     environment ("QQERRMSG_%d") is a prefix, covered by any item starting
     with it.
Names read through getprotoenv("X") are ${PROTO}X: covered by an item
"${PROTO}X" (or "TCPX").
"""
import glob
import os
import re
import subprocess
import unittest

import harness

# Tests the source tree and builds its own binaries: run once, in the
# normal build's pass (tests/run.py).
BUILD_INDEPENDENT = True

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAN_BUILD = os.path.join(harness.BUILD, "man")
SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "REPLIES", "EXAMPLES", "SEE ALSO")
VARNAME = re.compile(r'^_?[A-Z][A-Z0-9_]*(%[0-9]*[a-z]+)?$')
NOT_READERS = {"setenv", "unsetenv", "putenv", "clearenv"}

# ---------- reading the C sources ----------

def strip_comments(text):
    """C text with comments blanked, string and char literals kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching(text, i, open_c="(", close_c=")"):
    """Index just after the bracket matching text[i] (skipping literals)."""
    depth, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


CALL = re.compile(r'\b([A-Za-z_]\w*)\s*\(')
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')
KEYWORDS = {"if", "while", "for", "switch", "return", "sizeof", "defined"}


def calls(text):
    """(callee, argument text) for every call in text, nested ones included."""
    for m in CALL.finditer(text):
        if m.group(1) in KEYWORDS:
            continue
        start = m.end() - 1
        yield m.group(1), text[start + 1:matching(text, start) - 1]


def is_env_call(callee, args):
    if callee in NOT_READERS:
        return False
    return "env" in callee.lower() or re.search(r'\bgetenv\w*\b', args) is not None


def names_in(args):
    return [s for s in LITERAL.findall(args) if VARNAME.match(s)]


FUNC_DEF = re.compile(r'\b([A-Za-z_]\w*)\s*\(([^;{}()]*)\)\s*\{')


def functions(text):
    """(name, body) of each function definition."""
    for m in FUNC_DEF.finditer(text):
        if m.group(1) in KEYWORDS:
            continue
        start = m.end() - 1
        yield m.group(1), text[start:matching(text, start, "{", "}")]


def reader_functions(text):
    """(name, body) of the functions that read the environment with a computed name."""
    for name, body in functions(text):
        if any(is_env_call(c, a) and re.search(r'\b[a-z_]\w*\b', LITERAL.sub("", a)) for c, a in calls(body)):
            yield name, body


def env_reads():
    """{name: set of files} read by the C code; name kinds: plain, _suffix, prefix%d, @proto."""
    texts = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "src", "**", "*.[ch]"), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as f:
            texts[os.path.relpath(path, ROOT)] = strip_comments(f.read())
    readers, found = set(), {}
    for path, text in texts.items():
        for name, body in reader_functions(text):
            readers.add(name)
            # names built with a printf format in the reader ("QQERRMSG_%d")
            for lit in names_in(body):
                if "%" in lit:
                    found.setdefault(lit, set()).add(path)
    for path, text in texts.items():
        for callee, args in calls(text):
            if callee in NOT_READERS or not (is_env_call(callee, args) or callee in readers):
                continue
            for name in names_in(args):
                key = "@" + name if callee == "getprotoenv" else name
                found.setdefault(key, set()).add(path)
    return found

# ---------- reading the pages ----------

def pages():
    return sorted(glob.glob(os.path.join(ROOT, "man", "*.scd")))


def sections(path):
    """{SECTION: text} of an scdoc page."""
    out, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'^# (.+?)\s*$', line)
            if m:
                cur = m.group(1)
                out[cur] = ""
            elif cur:
                out[cur] += line
    return out


ITEM = re.compile(r'^\*([^*\s]+)\*(?:,\s*\*([^*\s]+)\*)*')


def env_items(text):
    """[(names, description)] of the ENVIRONMENT section's items: a line of
    *NAME* terms followed by tab-indented description lines (scdoc's layout;
    a prose line that happens to start with *X* is not an item)."""
    lines = text.splitlines()
    items = []
    for i, line in enumerate(lines):
        if not line.startswith("*"):
            continue
        desc = []
        for nxt in lines[i + 1:]:
            if not nxt.startswith("\t"):
                break
            desc.append(nxt)
        if desc:
            items.append((re.findall(r'\*([^*\s]+)\*', line), "\n".join(desc)))
    return items


def documented():
    names = set()
    for p in pages():
        for ns, _ in env_items(sections(p).get("ENVIRONMENT", "")):
            names.update(ns)
    return names


def covered(key, docs):
    if key.startswith("@"):
        var = key[1:]
        return any(d.endswith("}" + var) or d in ("TCP" + var, "${PROTO}" + var) for d in docs)
    if "%" in key:
        prefix = key.split("%")[0]
        return any(d.startswith(prefix) for d in docs)
    if key.startswith("_"):
        return any(d.endswith(key) for d in docs)
    return key in docs


class ManTest(unittest.TestCase):
    def test_pages_exist_and_built(self):
        self.assertGreater(len(pages()), 20)
        for p in pages():
            built = os.path.join(MAN_BUILD, os.path.basename(p)[:-4])
            self.assertTrue(os.path.exists(built), built + " not built (make)")

    def test_sections_and_defaults(self):
        for p in pages():
            secs = sections(p)
            name = os.path.basename(p)
            for s in SECTIONS:
                self.assertIn(s, secs, "%s: section %s missing" % (name, s))
                self.assertTrue(secs[s].strip(), "%s: section %s empty" % (name, s))
            for names, desc in env_items(secs["ENVIRONMENT"]):
                # the default, or what happens when the variable is unset
                self.assertRegex(desc, r'(?i)default|unset', "%s: %s has no default" % (name, names))

    def test_render_without_warnings(self):
        for p in pages():
            built = os.path.join(MAN_BUILD, os.path.basename(p)[:-4])
            g = subprocess.run(["groff", "-ww", "-man", "-z", built], capture_output=True, timeout=60)
            self.assertEqual(g.stderr.decode(), "", built)
            self.assertEqual(g.returncode, 0, built)
            m = subprocess.run(["man", "--warnings", "-l", built], capture_output=True, timeout=60,
                               env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0", PAGER="cat"))
            self.assertEqual(m.stderr.decode(), "", built)
            self.assertTrue(b"NAME" in re.sub(rb'.\x08', b'', m.stdout), built)
            d = subprocess.run(["mandoc", "-T", "lint", "-W", "error", built], capture_output=True, timeout=60)
            self.assertEqual(d.stdout.decode() + d.stderr.decode(), "", built)

    def test_every_variable_documented(self):
        reads = env_reads()
        # the extractor itself must see the well-known reads
        for k in ("MODULE_PATH", "PLUGINS", "TIMEOUT", "MAILRULES", "MAXRCPTS", "CLAMAV_PORT",
                  "TLS_PRIORITY", "_TMP", "QQERRMSG_%d", "@LOCALHOST", "QMQP_MAXADDR"):
            self.assertIn(k, reads)
        docs = documented()
        missing = sorted("%s (%s)" % (k, ", ".join(sorted(v))) for k, v in reads.items() if not covered(k, docs))
        self.assertEqual(missing, [], "variables read by the code without an ENVIRONMENT entry in man/*.scd")

    def test_extractor_catches_a_new_read(self):
        """A variable added in a new helper style is found (the test can fail)."""
        text = strip_comments('static unsigned long lim(const char* v) { return session_getenvu(v); }\n'
                              'void f(void) { lim("NEW_LIMIT"); mf_env_number("OTHER_ONE", 3); /* "NOT_ME" */ }')
        readers = {n for n, _ in reader_functions(text)}
        self.assertEqual(readers, {"lim"})
        got = [n for c, a in calls(text) if is_env_call(c, a) or c in readers for n in names_in(a)]
        self.assertEqual(sorted(got), ["NEW_LIMIT", "OTHER_ONE"])
        self.assertFalse(covered("NEW_LIMIT", documented()))

    def test_see_also_targets_exist(self):
        have = {os.path.basename(p)[:-4] for p in pages()}
        for p in pages():
            for page, sec in re.findall(r'\*([a-z0-9][\w.-]*)\*\((\d)\)', sections(p).get("SEE ALSO", "")):
                if page.startswith("mailfront") or page in ("pop3front-auth", "pop3front-maildir", "imapfront-auth"):
                    self.assertIn("%s.%s" % (page, sec), have, os.path.basename(p))

    def test_repository_points_nowhere_outside(self):
        for path in [os.path.join(ROOT, "README.md")] + glob.glob(os.path.join(ROOT, "docs", "*.md")) + pages():
            with open(path, encoding="utf-8") as f:
                text = f.read()
            self.assertIsNone(re.search(r'\]\(\.\./', text), path + " links outside the repository")

    def test_no_tracked_file_names_paths_of_the_build_machine(self):
        """No tracked file (code, comments, docs, tests) names the development machine's
        working folders or the internal specification.  The needles are assembled here so
        that this file does not contain them."""
        needles = [b"/" + b"work/", b"shared" + b"/spec"]
        files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True, check=True,
                               timeout=60).stdout.split(b"\0")
        self.assertGreater(len(files), 100)
        bad = []
        for f in files:
            path = os.path.join(ROOT, os.fsdecode(f))
            if not f or not os.path.isfile(path) or os.path.islink(path):
                continue
            with open(path, "rb") as fh:
                data = fh.read()
            bad += ["%s: %s" % (os.fsdecode(f), n.decode()) for n in needles if n in data]
        self.assertEqual(bad, [])

if __name__ == "__main__":
    unittest.main()
