"""qmail-validate plugin (plugins.md "qmail-validate", compat-checklist 54):
control files in a temporary $QMAILHOME, every reply asserted line by line,
malformed/unreadable files failing safely with file and line logged, and
differential runs against Debian's 2.12 oracle on the same files (skipped
when absent).

Deliberate differences from 2.12 (README): an unreadable control file
(e.g. a directory), a line holding a NUL byte, a file over
$QMAILVALIDATE_MAXBYTES or a morercpthosts.cdb that is not a cdb make
start-up fail with 451 (2.12 silently treats such files as empty, i.e.
fails open for badmailfrom/badrcptto)."""
import os
import struct
import unittest

import harness
import test_counters
from test_counters import session
from test_smtp_session import log_lines

BADMAILFROM = "553 5.1.0 Sorry, your envelope sender is in my badmailfrom list."
BADRCPTTO = "553 5.1.1 Sorry, that address is in my badrcptto list."
NOT_CONF = "550 5.1.0 Mail system is not configured to accept that recipient"
CTL_ERROR = "451 4.3.0 Could not read the qmail control files."


def cdb_write(path, keys):
    """Write a standard cdb (D. J. Bernstein's format) with empty values."""
    def h(b):
        v = 5381
        for c in b:
            v = ((v << 5) + v ^ c) & 0xffffffff
        return v
    recs, pos = [], 2048
    body = b""
    for k in keys:
        k = k.encode()
        recs.append((h(k), pos))
        rec = struct.pack("<II", len(k), 0) + k
        body += rec
        pos += len(rec)
    tables, header = b"", b""
    for t in range(256):
        ents = [r for r in recs if r[0] & 255 == t]
        n = 2 * len(ents)
        slots = [(0, 0)] * n
        for hv, p in ents:
            i = (hv >> 8) % n
            while slots[i][1]:
                i = (i + 1) % n
            slots[i] = (hv, p)
        header += struct.pack("<II", pos + len(tables), n)
        tables += b"".join(struct.pack("<II", a, b) for a, b in slots)
    with open(path, "wb") as f:
        f.write(header + body + tables)


class QmailValidateBase(harness.TempDirTest):
    def setUp(self):
        super().setUp()
        self.ctl = os.path.join(self.tmp, "control")
        os.mkdir(self.ctl)
        self.write("rcpthosts", b"  Lead.example\ncr.example\r\nUP.EXAMPLE  \n#comment.example\n #also.example\n"
                   b"tab.example\t\n\n.sub.example\nlast.example")
        self.write("badmailfrom", b"bad@x.example\n@evil.example\n")
        self.write("badrcptto", b"no@x.example\n@bad.example\n# nothing\n")
        cdb_write(os.path.join(self.ctl, "morercpthosts.cdb"), ["more.example", ".dot.example"])

    def write(self, name, data):
        with open(os.path.join(self.ctl, name), "wb") as f:
            f.write(data)

    def run_session(self, lines, plugins=("qmail-validate",), **env):
        env.setdefault("QMAILHOME", self.tmp)
        return session(self, lines, plugins, **env)


class QmailValidateSessionTest(QmailValidateBase):
    def test_qmailval_sender(self):
        out, _ = self.run_session(["MAIL FROM:<Bad@X.example>", "MAIL FROM:<a@EVIL.example>", "MAIL FROM:<@evil.example>",
                                   "MAIL FROM:<bad@x.example.org>", "MAIL FROM:<>", "MAIL FROM:<x@sub.evil.example>"])
        self.assertEqual(out[1:], [BADMAILFROM, BADMAILFROM, BADMAILFROM, "250 Sender='bad@x.example.org'.",
                                   "250 Sender=''.", "250 Sender='x@sub.evil.example'."])

    def test_qmailval_rcpthosts(self):
        rc = ["x@lead.example", "x@cr.example", "x@up.example", "x@comment.example", "x@also.example",
              "x@tab.example", "x@a.sub.example", "x@sub.example", "x@LAST.example", "x@a.b.sub.example",
              "x@lead.example.org", "nodomain"]
        out, _ = self.run_session(["MAIL FROM:<a@b>"] + [f"RCPT TO:<{r}>" for r in rc])
        exp = {"x@comment.example", "x@also.example", "x@sub.example", "x@lead.example.org", "nodomain"}
        self.assertEqual(out[2:], [NOT_CONF if r in exp else f"250 Recipient='{r}'." for r in rc])

    def test_qmailval_morercpthosts_cdb(self):
        rc = ["x@more.example", "x@MORE.example", "x@a.dot.example", "x@dot.example", "x@a.more.example"]
        out, _ = self.run_session(["MAIL FROM:<a@b>"] + [f"RCPT TO:<{r}>" for r in rc])
        self.assertEqual(out[2:], ["250 Recipient='x@more.example'.", "250 Recipient='x@MORE.example'.",
                                   "250 Recipient='x@a.dot.example'.", NOT_CONF, NOT_CONF])

    def test_qmailval_badrcptto(self):
        out, _ = self.run_session(["MAIL FROM:<a@b>", "RCPT TO:<no@x.example>", "RCPT TO:<NO@X.EXAMPLE>",
                                   "RCPT TO:<a@bad.example>", "RCPT TO:<@bad.example>", "RCPT TO:<yes@x.example>"],
                                  ("qmail-validate", "accept"))
        self.assertEqual(out[2:], [BADRCPTTO, BADRCPTTO, BADRCPTTO, BADRCPTTO, "250 Recipient='yes@x.example'."])

    def test_qmailval_badrcptto_wins_over_later_accept(self):
        self.write("rcpthosts", b"bad.example\n")
        out, _ = self.run_session(["MAIL FROM:<a@b>", "RCPT TO:<a@bad.example>"], ("accept", "qmail-validate"))
        self.assertEqual(out[2:], [BADRCPTTO])

    def test_qmailval_missing_files_are_empty(self):
        for f in os.listdir(self.ctl):
            os.unlink(os.path.join(self.ctl, f))
        out, _ = self.run_session(["MAIL FROM:<bad@x.example>", "RCPT TO:<x@lead.example>"])
        self.assertEqual(out[1:], ["250 Sender='bad@x.example'.", NOT_CONF])

    def test_qmailval_no_qmailhome(self):
        out, p = self.run_session(["MAIL FROM:<a@b>"], QMAILHOME=os.path.join(self.tmp, "missing"))
        self.assertEqual(out, ["451 4.3.0 Could not change to the qmail directory."])
        self.assertEqual(p.returncode, 1)

    def test_qmailval_chdir_side_effect(self):
        # a relative QUEUEDIR is found under $QMAILHOME: the plugin changed there
        for d in ("q", "q/tmp", "q/new"):
            os.mkdir(os.path.join(self.tmp, d))
        env = harness.base_env(QMAILHOME=self.tmp, QUEUEDIR="q", TCPLOCALHOST="mx")
        p = harness.run([harness.bin_path("mailfront"), "smtp", "queuedir", "qmail-validate"],
                        b"MAIL FROM:<a@b>\r\nRCPT TO:<c@lead.example>\r\nDATA\r\nx\r\n.\r\n", env)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn(b"354 ", p.stdout)
        self.assertEqual(len(os.listdir(os.path.join(self.tmp, "q", "new"))), 1)

    def check_fails(self, logline, **env):
        out, p = self.run_session(["MAIL FROM:<a@b>"], **env)
        self.assertEqual(out, [CTL_ERROR if "cdb" not in logline else
                               "451 4.3.0 Could not read control/morercpthosts.cdb."])
        self.assertEqual(p.returncode, 1)
        self.assertIn("Warning: qmail-validate: " + logline, log_lines(p))

    def test_qmailval_nul_byte_fails_with_line(self):
        self.write("badrcptto", b"a@b\n\nc\0d\n")
        self.check_fails("control/badrcptto line 3: NUL byte in line")

    def test_qmailval_unreadable_file_fails(self):
        os.unlink(os.path.join(self.ctl, "rcpthosts"))
        os.mkdir(os.path.join(self.ctl, "rcpthosts"))
        self.check_fails("control/rcpthosts: is a directory")

    def test_qmailval_size_bound(self):
        self.check_fails("control/rcpthosts: file larger than $QMAILVALIDATE_MAXBYTES", QMAILVALIDATE_MAXBYTES=50)
        out, _ = self.run_session(["MAIL FROM:<a@b>"], QMAILVALIDATE_MAXBYTES=500)
        self.assertEqual(out[1:], ["250 Sender='a@b'."])

    def test_qmailval_bad_cdb(self):
        self.write("morercpthosts.cdb", b"\xff" * 100)
        self.check_fails("control/morercpthosts.cdb: not a valid cdb file")


# Differential: the same control files through ours and the oracle.
_LINES = ["MAIL FROM:<Bad@X.example>", "MAIL FROM:<a@evil.example>", "MAIL FROM:<@evil.example>", "MAIL FROM:<a@b>",
          "RCPT TO:<x@lead.example>", "RCPT TO:<x@  lead.example>", "RCPT TO:<x@cr.example>", "RCPT TO:<x@up.example>",
          "RCPT TO:<x@comment.example>", "RCPT TO:<x@tab.example>", "RCPT TO:<x@a.sub.example>",
          "RCPT TO:<x@sub.example>", "RCPT TO:<x@last.example>", "RCPT TO:<no@x.example>", "RCPT TO:<a@bad.example>",
          "RCPT TO:<@bad.example>", "RCPT TO:<nodomain>", "RCPT TO:<x@more.example>", "RCPT TO:<x@a.dot.example>",
          "RCPT TO:<x@dot.example>", "DATA", "x", ".", "QUIT"]


class QmailValidateDifferentialTest(QmailValidateBase):
    check = test_counters.CountersDifferentialTest.check

    def test_qmailval_diff_files(self):
        self.check(_LINES, ("qmail-validate",), {"QMAILHOME": self.tmp}, None)

    def test_qmailval_diff_with_accept(self):
        self.check(_LINES, ("qmail-validate", "accept"), {"QMAILHOME": self.tmp}, None)

    def test_qmailval_diff_no_files(self):
        for f in os.listdir(self.ctl):
            os.unlink(os.path.join(self.ctl, f))
        self.check(_LINES, ("qmail-validate",), {"QMAILHOME": self.tmp}, None)

    def test_qmailval_diff_no_qmailhome(self):
        self.check(_LINES, ("qmail-validate",), {"QMAILHOME": os.path.join(self.tmp, "nope")}, None)


if __name__ == "__main__":
    unittest.main()
