"""End-to-end tests of plugin-mailrules (spec: mailrules.md, plugins.md
"mailrules", compat-checklist.md H 59-64).

Every test runs real SMTP sessions through build/bin/mailfront with the echo
back end and asserts the replies line by line.  The differential class runs
the same rule files through Debian's 2.12 /usr/sbin/mailfront (skipped when
absent) and compares stdout byte for byte, after the documented, commented
substitutions for 2.22 differences and fixed quirks.
"""
import os
import shutil
import subprocess
import unittest

import harness

H = "HELO x\r\n"
GREETING = "220 mx.example mailfront ESMTP"


def lines(proc):
    return proc.stdout.decode("latin-1").split("\r\n")[:-1]


class MailrulesBase(harness.TempDirTest):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="latin-1") as f:
            f.write(text)
        return path

    def session(self, rules, script, plugins=("mailrules",), check=True, **env):
        """Run ours; rules is the file text (or None: $MAILRULES unset)."""
        if rules is not None and "MAILRULES" not in env:
            env["MAILRULES"] = self.write("rules", rules)
        env.setdefault("TCPLOCALHOST", "mx.example")
        p = harness.mailfront(["smtp", "echo"] + list(plugins), script.encode("latin-1"), cwd=self.tmp, **env)
        harness.assert_no_sanitizer_report(self, p)
        return p

    def replies(self, rules, script, plugins=("mailrules",), **env):
        out = lines(self.session(rules, script, plugins, **env))
        self.assertEqual(out[0], GREETING)
        return out[1:]


class MailrulesSenderTest(MailrulesBase):
    RULES = (":sender\n"
             "d*@spam.example:*:5.7.1 Go away\n"
             "z*@slow.example\n"
             "d*@plain.example\n"
             "k*@ok.example:*:Fine\\nsecond line\n"
             "k*@quiet.example\n"
             "dx@oct.example::Go away\\101x\n"
             "p*@pass.example\n")

    def test_mailrules_sender_codes(self):
        r = self.replies(self.RULES,
                         "MAIL FROM:<a@spam.example>\r\nMAIL FROM:<a@slow.example>\r\n"
                         "MAIL FROM:<a@plain.example>\r\nMAIL FROM:<a@ok.example>\r\n"
                         "MAIL FROM:<a@quiet.example>\r\nMAIL FROM:<x@oct.example>\r\n"
                         "MAIL FROM:<a@pass.example>\r\nMAIL FROM:<A@SPAM.Example>\r\n")
        self.assertEqual(r, [
            "553 5.7.1 Go away",
            "451 Deferred",
            "553 Rejected",
            "250-Fine", "250 second line",
            # 2.22: k without text has no text of its own; the back end's shows
            "250 Sender='a@quiet.example'.",
            # quirk fixed: the octal escape yields its byte ("A")
            "553 Go awayAx",
            # p: no verdict, nothing else accepts
            "550 5.1.0 Mail system is not configured to accept that sender",
            "553 5.7.1 Go away",   # case-insensitive
        ])

    def test_mailrules_unset_does_nothing(self):
        r = self.replies(None, "MAIL FROM:<a@spam.example>\r\n")
        self.assertEqual(r, ["550 5.1.0 Mail system is not configured to accept that sender"])

    def test_mailrules_K_skips_later_plugins_k_does_not(self):
        rules = ":s\nK*@final.example\nk*@ok.example\n"
        r = self.replies(rules, "MAIL FROM:<a@final.example>\r\nMAIL FROM:<a@ok.example>\r\n",
                         plugins=("mailrules", "reject"), REJECT="-refused later")
        self.assertEqual(r, ["250 Sender='a@final.example'.", "553 refused later"])

    def test_mailrules_and_rules(self):
        rules = (":s\n"
                 "&*@a.example:*\n"
                 "&!bad@*:*\n"
                 "d*:*:AND fired\n"
                 "z*@b.example:*:second\n")
        r = self.replies(rules, "MAIL FROM:<x@a.example>\r\nMAIL FROM:<bad@a.example>\r\n"
                         "MAIL FROM:<x@b.example>\r\nMAIL FROM:<x@c.example>\r\n")
        self.assertEqual(r, [
            "553 AND fired",
            # the failed AND group resets the flag; z is evaluated on its own
            "550 5.1.0 Mail system is not configured to accept that sender",
            "451 second",
            "550 5.1.0 Mail system is not configured to accept that sender",
        ])

    def test_mailrules_negation_and_globs(self):
        rules = (":s\n"
                 "d!*@*:*:no at\n"
                 "d!!*@dbl.example:*:double\n"
                 "d*@[abc].example:*:set\n"
                 "d*@[a-c]x.example:*:norange\n"
                 "d*@[!q]y.example:*:negset\n"
                 "d?@q.example:*:one\n")
        r = self.replies(rules, "MAIL FROM:<noat>\r\nMAIL FROM:<a@dbl.example>\r\nMAIL FROM:<q@b.example>\r\n"
                         "MAIL FROM:<q@bx.example>\r\nMAIL FROM:<q@-x.example>\r\nMAIL FROM:<q@zy.example>\r\n"
                         "MAIL FROM:<q@qy.example>\r\nMAIL FROM:<a@q.example>\r\nMAIL FROM:<ab@q.example>\r\n")
        no = "550 5.1.0 Mail system is not configured to accept that sender"
        self.assertEqual(r, ["553 no at", "553 double", "553 set", no, "553 norange", "553 negset", no, "553 one", no])

    def test_mailrules_env_assignments_and_reset(self):
        # ENV entries are session variables for later plugins (reject reads
        # $REJECT by session lookup); reset clears them for the next MAIL.
        rules = ":s\nn*@env.example:::::REJECT=-from a rule\\, with comma: and colon,X=1\n"
        r = self.replies(rules, "MAIL FROM:<a@env.example>\r\nRSET\r\nMAIL FROM:<a@other.example>\r\n",
                         plugins=("mailrules", "reject", "accept"))
        self.assertEqual(r, ["553 from a rule, with comma: and colon", "250 2.3.0 OK",
                             "250 Sender='a@other.example'."])

    def test_mailrules_env_earliest_wins_n_continues(self):
        rules = ":s\nn*:::::REJECT=-first\nn*:::::REJECT=-second\nk*@ok.example:*:never\n"
        r = self.replies(rules, "MAIL FROM:<a@x.example>\r\n", plugins=("mailrules", "reject"))
        self.assertEqual(r, ["553 first"])

    def test_mailrules_selectors_and_implicit_classes(self):
        rules = ("# before any selector: recipient '*' means a sender rule\n"
                 "d*@s.example:*:sender rule\n"
                 "d*:*@r.example:recipient rule\n"
                 "junk lines and #comments are ignored\n"
                 ":recipient-anything\n"
                 "d*:*@r2.example:in recipient section\n"
                 ":sender-anything\n"
                 "d*@s2.example:*@nope:sender section ignores the recipient field\n")
        r = self.replies(rules, "MAIL FROM:<a@s.example>\r\nMAIL FROM:<a@s2.example>\r\nMAIL FROM:<a@x>\r\n"
                         "RCPT TO:<b@r.example>\r\nRCPT TO:<b@r2.example>\r\n",
                         plugins=("mailrules", "accept-sender"))
        self.assertEqual(r, ["553 sender rule", "553 sender section ignores the recipient field",
                             "250 Sender='a@x'.", "553 recipient rule", "553 in recipient section"])


class MailrulesRecipientTest(MailrulesBase):
    def test_mailrules_recipient_codes_and_relay(self):
        rules = (":r\n"
                 "d*:*!*:5.1.3 Bad address syntax\n"
                 "d*:*@*@*\n"
                 "k*:*@local.example\n"
                 "k*:*@lists.example:::+lists\n"
                 "K*:*@final.example:Taken\n"
                 "z*:*@later.example\n"
                 "p*:*@pass.example\n"
                 "d*@bad.example:*:sender-specific\n")
        r = self.replies(rules, "MAIL FROM:<s@bad.example>\r\nRCPT TO:<a!b@local.example>\r\nRCPT TO:<a@b@c>\r\n"
                         "RCPT TO:<u@local.example>\r\nRCPT TO:<U@Lists.Example>\r\nRCPT TO:<u@final.example>\r\n"
                         "RCPT TO:<u@later.example>\r\nRCPT TO:<u@pass.example>\r\nRCPT TO:<u@other.example>\r\n",
                         plugins=("mailrules", "accept-sender"))
        self.assertEqual(r, [
            "250 Sender='s@bad.example'.",
            "553 5.1.3 Bad address syntax",
            "553 Rejected",
            "250 Recipient='u@local.example'.",
            "250 Recipient='U@Lists.Example+lists'.",   # RELAYCLIENT suffix, case kept
            "250 Taken",
            "451 Deferred",
            "550 5.1.0 Mail system is not configured to accept that recipient",
            "553 sender-specific",
        ])

    def test_mailrules_list_files(self):
        self.write("list", "Foo@Bar.COM\n  @dom.example \n# comment\n\nsub.example\n")
        self.write("hosts", "local.example\n")
        rules = (":r\n"
                 "d*:[[list]]:listed\n"
                 "k*:[[@hosts]]\n"
                 ":s\n"
                 "z[[list]]:*:bad sender\n"
                 "k*\n")
        r = self.replies(rules, "MAIL FROM:<x@dom.example>\r\nMAIL FROM:<ok@x>\r\nRCPT TO:<FOO@bar.com>\r\n"
                         "RCPT TO:<a@dom.example>\r\nRCPT TO:<a@local.example>\r\nRCPT TO:<a@sub.example>\r\n"
                         "RCPT TO:<local.example>\r\n")
        no = "550 5.1.0 Mail system is not configured to accept that recipient"
        self.assertEqual(r, ["451 bad sender", "250 Sender='ok@x'.", "553 listed", "553 listed",
                             "250 Recipient='a@local.example'.", no, no])

    def test_mailrules_cdb_lists(self):
        if not shutil.which("cdb"):
            self.skipTest("cdb (tinycdb) not installed")
        data = b"".join(b"+%d,0:%s->\n" % (len(k), k) for k in (b"user@cdb.example", b"@whole.example", b"host.example"))
        subprocess.run(["cdb", "-c", os.path.join(self.tmp, "l.cdb")], input=data + b"\n", check=True)
        rules = ":r\nd*:[[l.cdb]]:in cdb\nk*:[[@l.cdb]]\n"
        r = self.replies(rules, "MAIL FROM:<>\r\nRCPT TO:<User@CDB.example>\r\nRCPT TO:<x@whole.example>\r\n"
                         "RCPT TO:<x@host.example>\r\nRCPT TO:<x@other.example>\r\nRCPT TO:<host.example>\r\n",
                         plugins=("mailrules", "accept-sender"))
        no = "550 5.1.0 Mail system is not configured to accept that recipient"
        self.assertEqual(r, ["250 Sender=''.", "553 in cdb", "553 in cdb", "250 Recipient='x@host.example'.", no, "553 in cdb"])

    def test_mailrules_databytes_lowered(self):
        if not os.path.exists(os.path.join(harness.LIB, "plugin-counters.so")):
            self.skipTest("plugin-counters not built")
        rules = ":s\nn*@small.example:::10\nk*\n"
        body = "MAIL FROM:<a@small.example>\r\nRCPT TO:<b@c>\r\nDATA\r\n0123456789abc\r\n.\r\n"
        r = self.replies(rules, body + "MAIL FROM:<a@big.example>\r\nRCPT TO:<b@c>\r\nDATA\r\n0123456789abc\r\n.\r\n",
                         plugins=("counters", "mailrules", "accept-recipient"), DATABYTES="1000")
        self.assertEqual(r[3], "552 5.2.3 Sorry, that message exceeds the maximum message length.")
        self.assertTrue(r[7].startswith("250 "), r)


    def test_mailrules_header_add_and_maxhops_via_env(self):
        # ENV settings reach later plugins in the same transaction:
        # add-received reads $HEADER_ADD, counters $MAXHOPS (numeric-min).
        for mod in ("counters", "add-received"):
            if not os.path.exists(os.path.join(harness.LIB, "plugin-%s.so" % mod)):
                self.skipTest("plugin-%s not built" % mod)
        rules = (":s\nn*@hdr.example:::::HEADER_ADD=X-Rule: matched,MAXHOPS=1\nk*\n:r\nk*:*\n")
        msg = "RCPT TO:<b@c>\r\nDATA\r\nReceived: x\r\nReceived: y\r\n\r\nbody\r\n.\r\n"
        p = self.session(rules, "MAIL FROM:<a@hdr.example>\r\n" + msg + "MAIL FROM:<a@other.example>\r\n" + msg,
                         plugins=("counters", "mailrules", "add-received"), TCPLOCALIP="1.2.3.4", TCPREMOTEIP="5.6.7.8")
        out = lines(p)
        self.assertEqual(out[4], "554 5.6.0 This message is looping, too many hops.")
        self.assertEqual(out[8], "250 Received 141 bytes.")   # reset cleared MAXHOPS and HEADER_ADD
        err = p.stderr.decode()
        self.assertIn("X-Rule: matched", err)
        self.assertEqual(err.count("X-Rule"), 1)

    def test_mailrules_relative_paths(self):
        # $MAILRULES and list files relative to the start-up directory
        self.write("rules", "k*:[[@hosts]]\n")
        self.write("hosts", "local.example\n")
        r = self.replies(None, "MAIL FROM:<>\r\nRCPT TO:<a@local.example>\r\n",
                         plugins=("mailrules", "accept-sender"), MAILRULES="rules")
        self.assertEqual(r, ["250 Sender=''.", "250 Recipient='a@local.example'."])


class MailrulesFailureTest(MailrulesBase):
    """Broken configurations fail closed: 421 at start-up, exit 1, a log
    line naming file and line, never an acceptance."""

    def fails(self, rules, reply, where=None, **env):
        p = self.session(rules, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", plugins=("mailrules", "accept"), **env)
        self.assertEqual(lines(p), [reply])
        self.assertEqual(p.returncode, 1)
        if where:
            self.assertIn(where, p.stderr.decode("latin-1"))
        return p

    def test_mailrules_missing_rules_file(self):
        self.fails(None, "421 4.3.0 Could not open $MAILRULES file", MAILRULES=os.path.join(self.tmp, "none"))

    def test_mailrules_bad_selector(self):
        self.fails("k*:*\n\n:x\n", "421 4.3.0 Syntax error in $MAILRULES", "rules:3:")

    def test_mailrules_bad_databytes(self):
        self.fails("k*:*:ok:12a\n", "421 4.3.0 Syntax error in $MAILRULES", "rules:1: DATABYTES")

    def test_mailrules_missing_list(self):
        self.fails("d*:[[nolist]]\n", "421 4.3.0 Error opening file referenced from $MAILRULES", "nolist")

    def test_mailrules_missing_cdb_fails_closed(self):
        # quirk fixed: 2.12 matched every address for a missing cdb
        self.fails("k*:[[@missing.cdb]]\n", "421 4.3.0 Error opening file referenced from $MAILRULES", "missing.cdb")

    def test_mailrules_binary_garbage_is_harmless(self):
        rules = "\x00\xff\\\n\\\\\\\nk\\\nd\x01:\x02\n[[\n:s\n" + "k" + ":" * 50 + "\n"
        p = self.session(rules, "MAIL FROM:<a@b>\r\nQUIT\r\n")
        self.assertEqual(p.returncode, 0)


@unittest.skipUnless(harness.reference_available(), "reference mailfront not installed")
class MailrulesDifferentialTest(MailrulesBase):
    """Same rule files, same sessions: ours vs 2.12, stdout byte for byte."""

    RULES = ("# differential rule set (no 2.22-only codes, no octal escapes)\n"
             "d*@spam.example:*:5.7.1 Go away\n"
             "z*@slow.example\n"
             "d*:*!*: Sorry, we don't allow that here\n"
             "d*:*@*@*: Sorry, we don't allow that here\n"
             "d*:*%*: Sorry, percent hack not accepted here\n"
             ":sender\n"
             "d[[badmailfrom]]:*:sorry, your envelope sender is in my badmailfrom list (#5.7.1)\n"
             "k*@multi.example:*:line one\\nline two\\nline three\n"
             "n*@env.example:::::REJECT=-env\\, rule:x\n"
             "d!*@*:*:bare\n"
             "dx[b:*:unclosed\n"
             "d*@[]q]*:*:emptyset\n"
             "d*@[\\\\]q].y:*:escset\n"
             "k*@ok.example:*:sender ok\n"
             ":recipient\n"
             "k*:[[@rcpthosts]]:local\n"
             "k*:[[@more.cdb]]:cdb local\n"
             "k*:*@relay.example:relayed:2000:+ext\n"
             "d[[badmailfrom]]:*@strict.example:strict\n"
             "z*:[[badrcptto]]:bad rcpt\n"
             "p*:*@pass.example\n")

    def setUp(self):
        super().setUp()
        self.write("badmailfrom", "spammer@bad.example\n@evil.example\n")
        self.write("rcpthosts", "local.example\n")
        self.write("badrcptto", "@blocked.example\nnobody@local.example\n")
        if shutil.which("cdb"):
            subprocess.run(["cdb", "-c", os.path.join(self.tmp, "more.cdb")],
                           input=b"+11,0:cdb.example->\n\n", check=True)
        else:
            self.write("more.cdb", "")   # both then see an unusable cdb
        self.write("rules", self.RULES)

    def both(self, script, plugins=("mailrules",)):
        env = {"MAILRULES": os.path.join(self.tmp, "rules"), "TCPLOCALHOST": "mx.example"}
        ours = self.session(None, script, plugins, **env)
        ref_env = {"PATH": "/usr/bin:/bin"}
        ref_env.update(env)
        ref = subprocess.run([harness.REFERENCE, "smtp", "echo"] + list(plugins), input=script.encode(),
                             env=ref_env, capture_output=True, timeout=60, cwd=self.tmp)
        return ours.stdout, ref.stdout

    def test_mailrules_differential_senders(self):
        script = "".join("MAIL FROM:<%s>\r\n" % a for a in (
            "a@spam.example", "a@slow.example", "spammer@bad.example", "x@evil.example", "Spammer@BAD.example",
            "a@multi.example", "bare", "xq", "xqq", "x", "a@]q", "a@q", "a@].y", "a@ok.example", "", "a@env.example"))
        ours, ref = self.both(script, ("mailrules", "reject"))
        self.assertEqual(ours, ref)

    def test_mailrules_differential_recipients(self):
        script = ("HELO x\r\nMAIL FROM:<s@ok.example>\r\n" + "".join("RCPT TO:<%s>\r\n" % a for a in (
            "a!b@local.example", "a@b@local.example", "a%b@local.example", "u@local.example", "U@LOCAL.EXAMPLE",
            "nobody@local.example", "x@blocked.example", "x@cdb.example", "x@relay.example", "x@pass.example",
            "x@strict.example", "x@other.example")) + "RSET\r\nMAIL FROM:<spammer@bad.example>\r\n"
            "MAIL FROM:<y@evil.example>\r\nQUIT\r\n")
        ours, ref = self.both(script, ("mailrules", "accept-sender"))
        self.assertEqual(ours, ref)

    def test_mailrules_differential_qmqp(self):
        # QMQP order: data, then sender and recipients; one reply per message
        def ns(b):
            return b"%d:%s," % (len(b), b)
        self.write("rq", ":s\nd*@spam.example:*:5.7.1 Go away\\nline2\nk*\n:r\nz*:*@later.example\nk*:*:::+x\n")
        for snd, rcpts in ((b"a@spam.example", [b"b@c"]), (b"a@ok", [b"b@c", b"x@later.example", b"d@e"]),
                           (b"a@ok", [b"b@c"])):
            wire = ns(ns(b"Subject: x\n\nbody\n") + ns(snd) + b"".join(ns(r) for r in rcpts))
            env = {"MAILRULES": os.path.join(self.tmp, "rq")}
            ours = harness.mailfront(["qmqp", "echo", "mailrules"], wire, **env)
            harness.assert_no_sanitizer_report(self, ours)
            ref = subprocess.run([harness.REFERENCE, "qmqp", "echo", "mailrules"], input=wire,
                                 env=dict(env, PATH="/usr/bin:/bin"), capture_output=True, timeout=60)
            self.assertEqual(ours.stdout, ref.stdout)
            self.assertIn(ours.stdout[:5], (b"20:D5", b"9:ZDe", b"19:KR"))


if __name__ == "__main__":
    unittest.main()
