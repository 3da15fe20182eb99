"""The mailfront driver (driver.md, plugin-api.md, plugins.md built-ins):
command line, plugin list forms ($PLUGINS, +name, -name, -*, moves),
$MODULE_PATH, load and ABI errors (exact 451 texts and exit codes), the
built-in plugins, $MSG_DEBUG tracing, the exit handler's byte report, and
how SMTP uses plugin hooks and commands.

Test modules (wrong ABI version, missing symbol, FINAL responses, init
failure, commands, helo/data hooks) are compiled from the C source below
into a private module directory next to links to the real modules.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import TempDirTest, assert_no_sanitizer_report
from test_smtp_session import (GREET, MAIL_FIRST, NO_RCPT, NO_SENDER, NOTIMPL, QUIT, crlf, lf,
                               log_lines, smtp, wire)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MISSING = "cannot open shared object file: No such file or directory"

TEST_MODULE_C = r"""
#include <mailfront/mailfront.h>
#include <string.h>
#ifndef VERSION
#define VERSION 3
#endif
static response ok_final = { 250 | RESPONSE_FINAL, "2.1.0 final sender" };
static response ok_plain = { 250, "2.1.5 plain recipient" };
static response r_init = { 421, "4.3.0 test init failed" };
static response r_helo_ok = { 250, "2.0.0 backend helo text" };
static response r_helo_plugin = { 250, "plugin helo text is discarded" };
static response r_helo_bad = { 554, "5.7.1 no HELO for you" };
static response r_virus = { 554, "5.7.0 virus found" };
static response r_dstart = { 451, "4.3.0 data start refused" };
static response r_mend = { 250, "2.6.0 plugin message_end text" };

static const response* final_sender(str* a, str* p) { (void)a; (void)p; return &ok_final; }
static const response* plain_recipient(str* a, str* p) { (void)a; (void)p; return &ok_plain; }
static const response* init_fail(void) { return &r_init; }
static const response* helo_backend(str* h, str* c) { (void)c; return h->len && h->s[0] == '!' ? &r_helo_bad : &r_helo_ok; }
static const response* helo_caps(str* h, str* c) { (void)h; str_cats(c, "XCAP one\nXCAP two\n"); return &r_helo_plugin; }
static const response* data_block(const char* b, unsigned long n) { return memmem(b, n, "VIRUS", 5) ? &r_virus : 0; }
static const response* data_start(int fd) { (void)fd; return session_getenv("TEST_DATA_START") ? &r_dstart : 0; }
static const response* message_end(int fd) { (void)fd; return &r_mend; }

static str reply;
static int say(const char* a, const char* b)
{
  response r = { 250, 0 };
  reply.len = 0;
  str_cats(&reply, a);
  if (b) { str_cats(&reply, " ["); str_cats(&reply, b); str_cats(&reply, "]"); }
  r.message = reply.s;
  return respond(&r);
}
static int xone(void) { return say("xone", 0); }
static int xtwo(str* p) { return say("xtwo", p->s); }
static int off(void) { return 0; }
static int xoff(void) { return say("xoff", 0); }
static int noop0(void) { return say("plugin noop", 0); }
static int noop1(str* p) { return say("plugin noop", p->s); }
static int xend(void) { return 0; }
static int bone(void) { return say("backend xone", 0); }

#if defined(KIND_PROTOCOL)
static int line(unsigned n, int f, const char* m, unsigned long l) { (void)n; (void)f; (void)m; (void)l; return 1; }
static int loop(const struct command* c) { (void)c; return 0; }
struct protocol protocol = { VERSION, "TEST", line, 0, loop };
#elif defined(KIND_BACKEND)
static const struct command bcmds[] = { { "XONE", 0, bone, 0 }, { 0, 0, 0, 0 } };
struct plugin backend = { .version = VERSION, .helo = helo_backend, .commands = bcmds };
#elif defined(NOSYM)
int not_the_symbol = 1;
#elif defined(CMDS)
static const struct command cmds[] = {
  { "XONE", 0, xone, 0 }, { "XTWO", 0, 0, xtwo }, { "XOFF", off, xoff, 0 },
  { "NOOP", 0, noop0, noop1 }, { "XEND", 0, xend, 0 }, { 0, 0, 0, 0 } };
struct plugin plugin = { .version = VERSION, .commands = cmds };
#else
struct plugin plugin = { .version = VERSION, .flags = FLAGS, .init = INIT, .helo = HELO,
  .sender = SENDER, .recipient = RECIPIENT, .data_start = DATA_START, .data_block = DATA_BLOCK,
  .message_end = MESSAGE_END };
#endif
"""

# name -> compiler defines
VARIANTS = {
    "plugin-tfinal": ["SENDER=final_sender", "RECIPIENT=plain_recipient"],
    "plugin-tinit": ["INIT=init_fail"],
    "plugin-tcaps": ["HELO=helo_caps"],
    "plugin-tdata": ["DATA_BLOCK=data_block", "DATA_START=data_start", "MESSAGE_END=message_end"],
    "plugin-tabi": ["VERSION=2"],
    "plugin-nosym": ["NOSYM"],
    "plugin-tcmds": ["CMDS"],
    "backend-thelo": ["KIND_BACKEND"],
    "backend-tabi": ["KIND_BACKEND", "VERSION=5"],
    "backend-nosym": ["NOSYM"],
    "protocol-tabi": ["KIND_PROTOCOL", "VERSION=2"],
    "protocol-nosym": ["NOSYM"],
    "plugin-accept": None,     # a broken file: built-ins must never consult it
}
DEFAULTS = ["FLAGS=0", "INIT=0", "HELO=0", "SENDER=0", "RECIPIENT=0", "DATA_START=0",
            "DATA_BLOCK=0", "MESSAGE_END=0"]

_moddir = None


def module_dir():
    """A module directory with the real modules and the test modules."""
    global _moddir
    if _moddir:
        return _moddir
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise unittest.SkipTest("no C compiler for the test modules")
    d = tempfile.mkdtemp(prefix="mftest.modules.")
    for name in os.listdir(harness.LIB):
        os.symlink(os.path.join(harness.LIB, name), os.path.join(d, name))
    src = os.path.join(d, "testmod.c")
    with open(src, "w") as f:
        f.write(TEST_MODULE_C)
    for name, defs in VARIANTS.items():
        out = os.path.join(d, name + ".so")
        if defs is None:
            with open(out, "w") as f:
                f.write("not an ELF file\n")
            continue
        args = [cc, "-std=gnu11", "-D_GNU_SOURCE", "-fPIC", "-shared", "-I", os.path.join(ROOT, "include"),
                "-o", out, src] + ["-D" + x for x in DEFAULTS + defs]
        subprocess.run(args, check=True, capture_output=True, timeout=60)
    _moddir = d
    return d


def tearDownModule():
    if _moddir:
        shutil.rmtree(_moddir, True)


def mf(args, data=b"", **env):
    env.setdefault("TCPLOCALHOST", "mx.test")
    p = harness.mailfront(args, data, timeout=30, **env)
    err = p.stderr.decode("latin-1")
    if "AddressSanitizer" in err or "runtime error:" in err or p.returncode in (98, 99):
        raise AssertionError("sanitizer report:\n" + err[-3000:])
    return p


class CommandLineTest(TempDirTest):
    def test_missing_arguments(self):
        for args in ([], ["smtp"]):
            p = mf(args, crlf("QUIT"))
            assert_no_sanitizer_report(self, p)
            self.assertEqual(p.returncode, 111)
            self.assertEqual(p.stdout, b"")
            self.assertEqual(log_lines(p), ["Fatal: Protocol or backend name are missing from the command line"])

    def test_missing_protocol(self):
        p = mf(["nosuch", "echo"], crlf("QUIT"))
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"")
        self.assertEqual(log_lines(p), ["Fatal: 4.3.0 Error loading protocol nosuch: %s/protocol-nosuch.so: %s"
                                        % (harness.LIB, MISSING)])

    def test_missing_backend_and_plugin(self):
        for args, kind, name in ((["smtp", "nosuch", "accept"], "backend", "nosuch"),
                                 (["smtp", "echo", "accept", "nosuch"], "plugin", "nosuch"),
                                 (["smtp", "echo", "accept:nosuch2"], "plugin", "nosuch2")):
            p = mf(args, crlf("QUIT"))
            assert_no_sanitizer_report(self, p)
            text = "451 4.3.0 Error loading %s %s: %s/%s-%s.so: %s" % (kind, name, harness.LIB, kind, name, MISSING)
            self.assertEqual(p.stdout, wire(text))     # no greeting
            self.assertEqual(p.returncode, 1)
            self.assertIn(text, log_lines(p))

    def test_missing_plugin_from_env(self):
        p = mf(["smtp", "echo"], crlf("QUIT"), PLUGINS="accept:bogus")
        self.assertEqual(p.stdout, wire("451 4.3.0 Error loading plugin bogus: %s/plugin-bogus.so: %s"
                                        % (harness.LIB, MISSING)))
        self.assertEqual(p.returncode, 1)

    def test_module_path(self):
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        p = mf(["smtp", "echo"], crlf("QUIT"), MODULE_PATH=empty)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(log_lines(p), ["Fatal: 4.3.0 Error loading protocol smtp: %s/protocol-smtp.so: %s"
                                        % (empty, MISSING)])
        links = os.path.join(self.tmp, "links")
        os.mkdir(links)
        for name in ("protocol-smtp.so", "backend-echo.so"):
            os.symlink(os.path.join(harness.LIB, name), os.path.join(links, name))
        p = mf(["smtp", "echo", "accept"], crlf("MAIL FROM:<a@b>", "QUIT"), MODULE_PATH=links)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout, wire(GREET, "250 Sender='a@b'.", QUIT))

    def test_exit_report(self):
        data = crlf("HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "hi", ".", "QUIT")
        p = mf(["smtp", "echo", "accept"], data)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(log_lines(p)[-1], "bytes in: %d bytes out: %d" % (len(data), len(p.stdout)))
        # also when the connection drops inside DATA (exit 1)
        data = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "partial")
        p = mf(["smtp", "echo", "accept"], data)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(log_lines(p)[-1], "bytes in: %d bytes out: %d" % (len(data), len(p.stdout)))
        # and after too many unknown commands
        data = lf("A", "B", "C")
        p = mf(["smtp", "echo"], data, MAXNOTIMPL=1)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(log_lines(p)[-1], "bytes in: %d bytes out: %d" % (len(data), len(p.stdout)))


class PluginListTest(TempDirTest):
    def order(self, args, **env):
        """The plugin order, as the $MSG_DEBUG trace of the sender step shows it."""
        p = mf(["smtp", "echo"] + list(args), crlf("MAIL FROM:<a@b>"), MSG_DEBUG=1, **env)
        assert_no_sanitizer_report(self, p)
        log = log_lines(p)
        i = log.index("Debug: Calling plugin hook: sender")
        names = []
        for line in log[i + 1:]:
            m = re.match(r"Debug: Calling plugin: (\S+)$", line)
            if m:
                names.append(m.group(1))
            elif not line.startswith("Debug: Plugin "):
                break
        return names, p

    def test_order_forms(self):
        cases = [
            (["accept", "reject"], {}, ["accept", "reject"]),
            (["accept:reject"], {}, ["accept", "reject"]),
            (["::accept::reject:"], {}, ["accept", "reject"]),
            (["accept", "+reject"], {}, ["reject", "accept"]),
            (["accept", "reject", "accept"], {}, ["reject", "accept"]),    # moved, not loaded twice
            (["accept", "reject", "+accept"], {}, ["accept", "reject"]),
            (["accept", "reject", "-accept"], {}, ["reject"]),
            (["accept", "-nothere"], {}, ["accept"]),
            (["accept", "reject", "-*", "require-auth"], {}, ["require-auth"]),
            (["accept"], {"PLUGINS": "reject"}, ["accept", "reject"]),
            (["accept"], {"PLUGINS": "+reject"}, ["reject", "accept"]),
            (["accept", "reject"], {"PLUGINS": "-accept"}, ["reject"]),
            (["accept:require-auth", "reject"], {"PLUGINS": ":accept:", "RELAYCLIENT": ""},
             ["require-auth", "reject", "accept"]),
        ]
        for args, env, expected in cases:
            with self.subTest(args=args, env=env):
                self.assertEqual(self.order(args, **env)[0], expected)

    def test_empty_list_refuses(self):
        p = mf(["smtp", "echo", "accept"], crlf("MAIL FROM:<a@b>"), PLUGINS="-*")
        self.assertEqual(p.stdout, wire(GREET, NO_SENDER))

    def test_names_are_case_sensitive(self):
        p = mf(["smtp", "echo", "Accept"], crlf("QUIT"))
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, wire("451 4.3.0 Error loading plugin Accept: %s/plugin-Accept.so: %s"
                                        % (harness.LIB, MISSING)))

    def test_builtins_resolved_before_files(self):
        d = module_dir()       # has a broken plugin-accept.so
        p = mf(["smtp", "echo", "accept"], crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>"), MODULE_PATH=d)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout, wire(GREET, "250 Sender='a@b'.", "250 Recipient='c@d'."))


class BuiltinPluginTest(TempDirTest):
    def expect(self, plugins, data, replies, rc=0, **env):
        p = smtp(data, plugins, **env)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.stdout.decode("latin-1").split("\r\n")[:-1], replies)
        self.assertEqual(p.returncode, rc)
        return p

    ENV = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>")

    def test_accept_variants(self):
        self.expect(("accept",), self.ENV, [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'."])
        self.expect(("accept-sender",), self.ENV, [GREET, "250 Sender='a@b'.", NO_RCPT])
        self.expect(("accept-recipient",), self.ENV, [GREET, NO_SENDER, MAIL_FIRST])
        self.expect(("accept-sender", "accept-recipient"), self.ENV,
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'."])
        self.expect((), self.ENV, [GREET, NO_SENDER, MAIL_FIRST])

    def test_reject(self):
        data = crlf("MAIL FROM:<a@b>")
        for env, reply in (({"REJECT": "-No way"}, "553 No way"),
                           ({"REJECT": "later"}, "451 later"),
                           ({"REJECT": ""}, "451 You are not allowed to use this mail server."),
                           ({"REJECT": "-"}, "553 You are not allowed to use this mail server."),
                           ({"SMTPREJECT": "first", "REJECT": "-second"}, "451 first"),
                           ({"SMTPREJECT": "", "REJECT": "-second"}, "451 You are not allowed to use this mail server."),
                           ({}, "250 Sender='a@b'.")):
            with self.subTest(env=env):
                p = self.expect(("accept", "reject"), data, [GREET, reply], **env)
                if reply.startswith("4") or reply.startswith("5"):
                    self.assertIn(reply, log_lines(p))

    def test_relayclient(self):
        self.expect(("accept-sender", "relayclient"), self.ENV,
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d.relay'."], RELAYCLIENT=".relay")
        self.expect(("accept-sender", "relayclient"), self.ENV,
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'."], RELAYCLIENT="")
        self.expect(("accept-sender", "relayclient"), self.ENV, [GREET, "250 Sender='a@b'.", NO_RCPT])
        # the suffix is appended before later plugins and the back end see it
        self.expect(("accept-sender", "relayclient", "relayclient"), self.ENV,
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d+x'."], RELAYCLIENT="+x")

    def test_require_auth(self):
        self.expect(("require-auth", "accept"), self.ENV,
                    [GREET, "530 5.7.1 You must authenticate first.", MAIL_FIRST])
        self.expect(("require-auth", "accept"), self.ENV,
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'."], RELAYCLIENT="")
        # require-auth never accepts by itself
        self.expect(("require-auth",), self.ENV, [GREET, NO_SENDER, MAIL_FIRST], RELAYCLIENT="")

    def test_force_file(self):
        data = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "abc", ".", "QUIT")
        tmpdir = os.path.join(self.tmp, "t")
        os.mkdir(tmpdir)
        self.expect(("accept", "force-file"), data,
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.",
                     "354 End your message with a period on a line by itself.", "250 Received 4 bytes.", QUIT],
                    TMPDIR=tmpdir)
        self.assertEqual(os.listdir(tmpdir), [])    # unlinked at once
        # the temp file is really created: an unusable $TMPDIR fails DATA
        p = self.expect(("accept", "force-file"), data,
                        [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "451 4.3.0 Internal error.",
                         NOTIMPL, NOTIMPL, QUIT], TMPDIR=os.path.join(self.tmp, "missing"))
        # removing the plugin later does not clear its flag (driver.md)
        self.expect(("accept", "force-file", "-force-file"), data,
                    [GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.", "451 4.3.0 Internal error.",
                     NOTIMPL, NOTIMPL, QUIT], TMPDIR=os.path.join(self.tmp, "missing"))


class CompiledModuleTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.mods = module_dir()

    def run_mf(self, args, data=b"", **env):
        p = mf(args, data, MODULE_PATH=self.mods, **env)
        assert_no_sanitizer_report(self, p)
        return p

    def test_abi_mismatch(self):
        p = self.run_mf(["tabi", "echo"], crlf("QUIT"))
        self.assertEqual((p.returncode, p.stdout), (1, b""))
        self.assertEqual(log_lines(p), ["Fatal: 4.3.0 Protocol ABI version mismatch"])
        for args, text in ((["smtp", "tabi"], "451 4.3.0 Backend ABI version mismatch"),
                           (["smtp", "echo", "accept", "tabi"], "451 4.3.0 Plugin ABI version mismatch")):
            p = self.run_mf(args, crlf("QUIT"))
            self.assertEqual((p.returncode, p.stdout), (1, wire(text)))
            self.assertIn(text, log_lines(p))

    def test_missing_symbol(self):
        p = self.run_mf(["nosym", "echo"], crlf("QUIT"))
        self.assertEqual((p.returncode, p.stdout), (1, b""))
        self.assertEqual(log_lines(p), ["Fatal: 4.3.0 Error loading protocol nosym: %s/protocol-nosym.so: "
                                        "undefined symbol: protocol" % self.mods])
        for kind, args in (("backend", ["smtp", "nosym"]), ("plugin", ["smtp", "echo", "nosym"])):
            p = self.run_mf(args, crlf("QUIT"))
            self.assertEqual((p.returncode, p.stdout),
                             (1, wire("451 4.3.0 Error loading %s nosym: %s/%s-nosym.so: undefined symbol: %s"
                                      % (kind, self.mods, kind, kind))))

    def test_not_a_shared_object(self):
        os.symlink(os.path.join(self.mods, "plugin-accept.so"), os.path.join(self.tmp, "plugin-junk.so"))
        for name in ("protocol-smtp.so", "backend-echo.so"):
            os.symlink(os.path.join(harness.LIB, name), os.path.join(self.tmp, name))
        p = mf(["smtp", "echo", "junk"], crlf("QUIT"), MODULE_PATH=self.tmp)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stdout, rb"^451 4\.3\.0 Error loading plugin junk: " + re.escape(self.tmp.encode())
                         + rb"/plugin-junk\.so: .+\r\n$")

    def test_init_failure(self):
        p = self.run_mf(["smtp", "echo", "accept", "tinit", "reject"], crlf("QUIT"), MSG_DEBUG=1)
        self.assertEqual((p.returncode, p.stdout), (1, wire("421 4.3.0 test init failed")))
        log = log_lines(p)
        self.assertEqual(log[:3], ["Debug: Calling plugin hook: init", "Debug: Calling plugin: tinit",
                                   "Debug: Plugin tinit returned 421:4.3.0 test init failed"])
        self.assertIn("421 4.3.0 test init failed", log)
        self.assertRegex(log[-1], r"^bytes in: \d+ bytes out: %d$" % len(p.stdout))

    def test_final_stops_the_chain_and_msg_debug(self):
        data = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "QUIT")
        p = self.run_mf(["smtp", "echo", "tfinal", "reject", "accept"], data, REJECT="-never", MSG_DEBUG=1)
        # FINAL acceptance: reject is never asked; the FINAL bit is masked on the wire
        self.assertEqual(p.stdout, wire(GREET, "250 2.1.0 final sender", "250 2.1.5 plain recipient", QUIT))
        log = log_lines(p)
        i = log.index("Debug: Calling plugin hook: sender")
        self.assertEqual(log[i:i + 3], ["Debug: Calling plugin hook: sender", "Debug: Calling plugin: tfinal",
                                        "Debug: Plugin tfinal returned 1274:2.1.0 final sender"])
        self.assertNotIn("Debug: Calling plugin: reject", log[i:log.index("RCPT TO:<c@d>")])
        # recipient: plain acceptance is remembered, walking goes on
        j = log.index("Debug: Calling plugin hook: recipient")
        self.assertEqual(log[j:j + 5], ["Debug: Calling plugin hook: recipient", "Debug: Calling plugin: tfinal",
                                        "Debug: Plugin tfinal returned 250:2.1.5 plain recipient",
                                        "Debug: Calling plugin: accept", "Debug: Plugin accept returned 250:(null)"])
        # never for data_block or back-end hooks; without MSG_DEBUG nothing
        self.assertFalse([l for l in log if "data_block" in l])
        p = self.run_mf(["smtp", "echo", "tfinal", "reject", "accept"], data, REJECT="-never")
        self.assertFalse([l for l in log_lines(p) if l.startswith("Debug:")])

    def test_msg_debug_full_session(self):
        data = crlf("EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "x", ".", "QUIT")
        p = self.run_mf(["smtp", "echo", "accept", "tdata"], data, MSG_DEBUG="1")
        hooks = [l[len("Debug: Calling plugin hook: "):] for l in log_lines(p)
                 if l.startswith("Debug: Calling plugin hook: ")]
        self.assertEqual(hooks, ["init", "reset", "helo", "reset", "sender", "recipient", "data_start",
                                 "message_end", "reset"])
        self.assertIn("Debug: Plugin tdata returned 250:2.6.0 plugin message_end text", log_lines(p))
        # the back end's message_end result wins over a plugin acceptance
        self.assertIn(b"250 Received 2 bytes.\r\n", p.stdout)
        p = self.run_mf(["smtp", "echo", "accept"], data, MSG_DEBUG="0")
        self.assertFalse([l for l in log_lines(p) if l.startswith("Debug:")])

    def test_helo_hooks(self):
        # protocols.md HELO: a response of the helo step (a back-end
        # acceptance) replaces `250 LOCALHOST`; EHLO sends its capabilities.
        p = self.run_mf(["smtp", "thelo"], crlf("HELO x", "EHLO x", "HELO !bad", "EHLO !bad", "QUIT"))
        self.assertEqual(p.stdout, wire(GREET, "250 2.0.0 backend helo text",
                                        "250-mx.test", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250 PIPELINING",
                                        "554 5.7.1 no HELO for you", "554 5.7.1 no HELO for you", QUIT))
        p = self.run_mf(["smtp", "echo", "tcaps"], crlf("HELO x", "EHLO x", "QUIT"))
        self.assertEqual(p.stdout, wire(GREET, "250 mx.test", "250-mx.test", "250-XCAP one", "250-XCAP two",
                                        "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250 PIPELINING", QUIT))

    def test_plugin_commands(self):
        data = crlf("XONE", "xone now", "XTWO", "XTWO  hi  there ", "XOFF", "noop", "NOOP arg", "XEND", "QUIT")
        p = self.run_mf(["smtp", "echo", "tcmds"], data)
        self.assertEqual(p.stdout, wire(GREET, "250 xone",
                                        # reference quirk: the two 501 texts are swapped (reproduced)
                                        "501 5.5.2 Syntax error, command requires a parameter.",
                                        "501 5.5.2 Syntax error, no parameters allowed.",
                                        "250 xtwo [hi  there ]", NOTIMPL, "250 plugin noop",
                                        "250 plugin noop [arg]"))
        self.assertEqual(p.returncode, 1)       # XEND returned 0
        # back-end commands come before plugin commands
        p = self.run_mf(["smtp", "thelo", "tcmds"], crlf("XONE", "QUIT"))
        self.assertEqual(p.stdout, wire(GREET, "250 backend xone", QUIT))

    def test_plugin_commands_reset_maxnotimpl(self):
        p = self.run_mf(["smtp", "echo", "tcmds"], lf("A", "XONE", "B", "XOFF", "C"), MAXNOTIMPL=2)
        self.assertEqual(p.stdout, wire(GREET, NOTIMPL, "250 xone", NOTIMPL, NOTIMPL,
                                        "503-5.5.0 Too many unimplemented commands.",
                                        "503 5.5.0 Closing connection."))
        self.assertEqual(p.returncode, 1)

    def test_data_errors(self):
        # a data-block error: the rest is read and discarded, the error is
        # the reply at the end, and the session goes on.
        data = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "clean", "VIRUS here", "more", ".",
                    "MAIL FROM:<e@f>", "RCPT TO:<g@h>", "DATA", "fine", ".", "QUIT")
        p = self.run_mf(["smtp", "echo", "accept", "tdata"], data)
        self.assertEqual(p.stdout, wire(GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.",
                                        "354 End your message with a period on a line by itself.",
                                        "554 5.7.0 virus found", "250 Sender='e@f'.", "250 Recipient='g@h'.",
                                        "354 End your message with a period on a line by itself.",
                                        "250 Received 5 bytes.", QUIT))
        # a data_start error: no data phase, so the body lines are commands
        data = crlf("MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "body", ".", "QUIT")
        p = self.run_mf(["smtp", "echo", "accept", "tdata"], data, TEST_DATA_START=1)
        self.assertEqual(p.stdout, wire(GREET, "250 Sender='a@b'.", "250 Recipient='c@d'.",
                                        "451 4.3.0 data start refused", NOTIMPL, NOTIMPL, QUIT))
