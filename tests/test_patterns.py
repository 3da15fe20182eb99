"""End-to-end tests of plugin-patterns (spec: plugins.md "patterns",
compat-checklist.md G 53).

SMTP sessions through build/bin/mailfront with the echo back end, replies
asserted line by line; a differential class compares stdout and the log
lines with Debian's 2.12 /usr/sbin/mailfront (skipped when absent).
"""
import os
import subprocess
import unittest

import harness

GREETING = "220 mx.example mailfront ESMTP"
ENV_LINES = "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
PROHIBITED = "554 This message contains prohibited content"

PATTERNS = ("# comment line\n"
            "xexact line\n"
            ":Subject: bad*\n"
            "\\TVqQ*\n"
            "=Custom reply (#5.3.4)\n"
            "x*virus*   \n"
            "\n"
            "=\n"
            "x*empty-text*\n")


def msg(*body):
    return ENV_LINES + "".join(l + "\r\n" for l in body) + ".\r\n"


class PatternsBase(harness.TempDirTest):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def session(self, script, plugins=("accept", "patterns"), **env):
        env.setdefault("PATTERNS", self.write("patterns", PATTERNS))
        env.setdefault("TCPLOCALHOST", "mx.example")
        p = harness.mailfront(["smtp", "echo"] + list(plugins), script.encode("latin-1"), cwd=self.tmp, **env)
        harness.assert_no_sanitizer_report(self, p)
        return p

    def verdicts(self, script, **env):
        """The reply to each DATA end (lines after a 354)."""
        out = self.session(script, **env).stdout.decode("latin-1").split("\r\n")
        self.assertEqual(out[0], GREETING)
        return [out[i + 1] for i, l in enumerate(out) if l.startswith("354 ")]


class PatternsTest(PatternsBase):
    def test_patterns_forms(self):
        v = self.verdicts(
            msg("Subject: bad stuff", "", "ok")            # header-only pattern in the header
            + msg("X: 1", "", "Subject: bad x")            # ... not in the body
            + msg("X: 1", "", "TVqQAAMAA")                 # first line after a blank
            + msg("X: 1", "", "a", "TVqQAAMAA")            # not a later line
            + msg("X: 1", "", "a", "", "TVqQAAMAA")        # after another blank line
            + msg("X: a virus", "", "")                    # any line, custom reply
            + msg("X: 1", "", "has empty-text here")       # '=' with empty text
            + msg("X: 1", "", "exact line")                # first char is a control char
            + msg("X: 1", "", "xexact line")
            + msg("X: 1", "", "A VIRUS"))                  # case-sensitive
        self.assertEqual(v, [PROHIBITED, "250 Received 21 bytes.", PROHIBITED, "250 Received 18 bytes.",
                             PROHIBITED, "554 Custom reply (#5.3.4)", "554 ", PROHIBITED,
                             "250 Received 18 bytes.", "250 Received 14 bytes."])

    def test_patterns_linemax(self):
        self.write("p2", "xabcd\n")
        script = msg("abcdef") + msg("abcd") + msg("abcde")
        self.assertEqual(self.verdicts(script, PATTERNS=os.path.join(self.tmp, "p2"), PATTERNS_LINEMAX="5"),
                         ["250 Received 7 bytes.", PROHIBITED, "250 Received 6 bytes."])
        self.assertEqual(self.verdicts(script, PATTERNS=os.path.join(self.tmp, "p2"), PATTERNS_LINEMAX="4"),
                         [PROHIBITED, PROHIBITED, PROHIBITED])

    def test_patterns_long_line_is_truncated_not_stored(self):
        # a 4 MB line: only the first 256 bytes are examined
        self.write("p3", "xAAAA*\nx*tail\n")
        long_line = "A" * (4 << 20) + "tail"
        self.assertEqual(self.verdicts(msg("X: 1", "", "B" + long_line) + msg("X: 1", "", long_line),
                                       PATTERNS=os.path.join(self.tmp, "p3")),
                         ["250 Received %d bytes." % (len(long_line) + 8), PROHIBITED])

    def test_patterns_unreadable_file_keeps_previous(self):
        # mailrules sets $PATTERNS for the second message to a missing file:
        # the warning is logged and the first message's patterns stay.
        rules = self.write("rules", ":s\nn*@missing.example:::::PATTERNS=/nonexistent/patterns\nk*\n:r\nk*:*\n")
        script = (msg("X: 1", "", "exact line").replace("a@b", "a@ok.example")
                  + msg("X: 1", "", "exact line").replace("a@b", "a@missing.example"))
        p = self.session(script, plugins=("mailrules", "patterns"), MAILRULES=rules)
        out = p.stdout.decode().split("\r\n")
        self.assertEqual([out[i + 1] for i, l in enumerate(out) if l.startswith("354 ")], [PROHIBITED, PROHIBITED])
        self.assertIn("Warning: Could not read patterns file '/nonexistent/patterns': No such file or directory",
                      p.stderr.decode())

    def test_patterns_missing_first_message_passes(self):
        p = self.session(msg("exact line"), PATTERNS=os.path.join(self.tmp, "none"))
        self.assertIn("250 Received 11 bytes.", p.stdout.decode())
        self.assertIn("Could not read patterns file", p.stderr.decode())

    def test_patterns_unset_or_empty(self):
        self.assertEqual(self.verdicts(msg("exact line"), PATTERNS=None), ["250 Received 11 bytes."])
        self.assertEqual(self.verdicts(msg("exact line"), PATTERNS=""), ["250 Received 11 bytes."])

    def test_patterns_final_line_without_lf_not_checked(self):
        # QMTP carries the body as is: a last line without LF is not examined
        self.write("p4", "xbad\n")
        for body, expect in ((b"X: 1\n\nbad", b"K"), (b"X: 1\n\nbad\n", b"D")):
            body = b"\n" + body      # QMTP: LF line-end mode byte first
            wire = b"%d:%s," % (len(body), body) + b"3:a@b," + b"6:3:c@d,,"
            p = harness.mailfront(["qmtp", "echo", "accept", "patterns"], wire,
                                  **{"PATTERNS": os.path.join(self.tmp, "p4")})
            harness.assert_no_sanitizer_report(self, p)
            self.assertIn(expect, p.stdout[:10], p.stdout)


@unittest.skipUnless(harness.reference_available(), "reference mailfront not installed")
class PatternsDifferentialTest(PatternsBase):
    def both(self, script, **env):
        env.setdefault("PATTERNS", self.write("patterns", PATTERNS))
        env["TCPLOCALHOST"] = "mx.example"
        ours = self.session(script, **env)
        ref_env = {"PATH": "/usr/bin:/bin"}
        ref_env.update(env)
        ref = subprocess.run([harness.REFERENCE, "smtp", "echo", "accept", "patterns"], input=script.encode(),
                             env=ref_env, capture_output=True, timeout=60, cwd=self.tmp)
        # log lines compared: replies and warnings (the echo back end's own
        # diagnostic lines are not this plugin's and differ by a 2.12 bug)
        def strip(err):
            out = [l.split(b": ", 1)[1] for l in err.splitlines() if b": " in l]
            return [l for l in out if l[:1].isdigit() or l.startswith(b"Warning:")]
        return (ours.stdout, strip(ours.stderr)), (ref.stdout, strip(ref.stderr))

    def test_patterns_differential(self):
        script = (msg("Subject: bad stuff", "", "ok") + msg("X: 1", "", "Subject: bad x")
                  + msg("X: 1", "", "TVqQAAMAA") + msg("X: 1", "", "a", "TVqQxx") + msg("X: 1", "", "a", "", "TVqQ")
                  + msg("X: a virus", "") + msg("X: 1", "", "empty-text") + msg("exact line") + msg("xexact line")
                  + "QUIT\r\n")
        ours, ref = self.both(script)
        self.assertEqual(ours, ref)

    def test_patterns_differential_linemax_and_missing(self):
        script = msg("abcdef") + msg("exact lin") + msg("exact line") + "QUIT\r\n"
        self.assertEqual(*self.both(script, PATTERNS_LINEMAX="9"))
        self.assertEqual(*self.both(script, PATTERNS="/nonexistent"))


if __name__ == "__main__":
    unittest.main()
