"""check-fqdn plugin (plugins.md "check-fqdn", compat-checklist 47):
every option and all five 554 texts asserted line by line, plus
differential runs against Debian's 2.12 oracle (skipped when absent)."""
import unittest

import harness
import test_counters
from test_counters import session

NO_DOMAIN = "554 5.1.2 Address is missing a domain name"
NO_FQDN = "554 5.1.2 Address does not contain a fully qualified domain name"
EMPTY_SENDER = "554 5.1.2 Empty sender address prohibited"
BAD_DOMAIN = "554 5.1.2 Sender contains a disallowed domain"
EMPTY_RCPT = "554 5.1.2 Recipient address may not be empty"
PLUGINS = ("check-fqdn", "accept")


def run(tc, lines, **env):
    out, _ = session(tc, lines, PLUGINS, **env)
    return out[1:]


class CheckFqdnSessionTest(unittest.TestCase):
    def test_fqdn_no_defaults(self):
        self.assertEqual(run(self, ["MAIL FROM:<a>", "MAIL FROM:<a@b>", "MAIL FROM:<@b.c>", "MAIL FROM:<>",
                                    "RCPT TO:<x@y.z>", "RCPT TO:<>", "RCPT TO:<x>", "RCPT TO:<x@y>"]),
                         [NO_DOMAIN, NO_FQDN, NO_DOMAIN, "250 Sender=''.", "250 Recipient='x@y.z'.",
                          EMPTY_RCPT, NO_DOMAIN, NO_FQDN])

    def test_fqdn_defaulthost_and_domain(self):
        self.assertEqual(run(self, ["MAIL FROM:<a>", "RCPT TO:<b@c>", "RCPT TO:<d@e.f>", "RCPT TO:<@g>"],
                             DEFAULTHOST="host", DEFAULTDOMAIN="example.org"),
                         ["250 Sender='a@host.example.org'.", "250 Recipient='b@c.example.org'.",
                          "250 Recipient='d@e.f'.", "250 Recipient='@g@host.example.org'."])

    def test_fqdn_defaulthost_only(self):
        self.assertEqual(run(self, ["MAIL FROM:<a>", "MAIL FROM:<a@h.x>", "RCPT TO:<b>"], DEFAULTHOST="h"),
                         [NO_FQDN, "250 Sender='a@h.x'.", NO_FQDN])

    def test_fqdn_defaulthost_with_dot(self):
        self.assertEqual(run(self, ["MAIL FROM:<a>"], DEFAULTHOST="h.example"), ["250 Sender='a@h.example'."])

    def test_fqdn_sender_domains(self):
        self.assertEqual(run(self, ["MAIL FROM:<>", "MAIL FROM:<a@b.example>", "MAIL FROM:<a@B.Example>",
                                    "MAIL FROM:<a@sub.b.example>", "MAIL FROM:<a@c.example>"],
                             SENDER_DOMAINS=":b.example::c.example:"),
                         [EMPTY_SENDER, "250 Sender='a@b.example'.", "250 Sender='a@B.Example'.", BAD_DOMAIN,
                          "250 Sender='a@c.example'."])

    def test_fqdn_sender_domains_empty(self):
        self.assertEqual(run(self, ["MAIL FROM:<a@b.example>", "MAIL FROM:<>"], SENDER_DOMAINS=""),
                         [BAD_DOMAIN, EMPTY_SENDER])

    def test_fqdn_sender_domains_after_completion(self):
        self.assertEqual(run(self, ["MAIL FROM:<a>"], SENDER_DOMAINS="h.d", DEFAULTHOST="h", DEFAULTDOMAIN="d"),
                         ["250 Sender='a@h.d'."])

    def test_fqdn_rewrite_reaches_backend(self):
        out, p = session(self, ["MAIL FROM:<a>", "RCPT TO:<b@c>", "DATA", "x", "."], PLUGINS,
                         DEFAULTHOST="h", DEFAULTDOMAIN="d")
        self.assertEqual(out[-1], "250 Received 2 bytes.")


_I = ["MAIL FROM:<>", "MAIL FROM:<a>", "MAIL FROM:<a@b>", "MAIL FROM:<@b>", "MAIL FROM:<a@b.C>",
      "MAIL FROM:<a@x.y>", "RCPT TO:<>", "RCPT TO:<a>", "RCPT TO:<a@b>", "RCPT TO:<a@b.c>", "RCPT TO:<a@>",
      "DATA", "x", ".", "QUIT"]
CASES = [
    ("none", {}),
    ("defaulthost", {"DEFAULTHOST": "dh"}),
    ("defaultdomain", {"DEFAULTDOMAIN": "dd"}),
    ("both defaults", {"DEFAULTHOST": "dh", "DEFAULTDOMAIN": "dd"}),
    ("empty defaults", {"DEFAULTHOST": "", "DEFAULTDOMAIN": ""}),
    ("sender domains", {"SENDER_DOMAINS": "b.c::x.y"}),
    ("sender domains empty", {"SENDER_DOMAINS": ""}),
    ("sender domains with default", {"DEFAULTHOST": "b.c", "SENDER_DOMAINS": "B.C"}),
]


class CheckFqdnDifferentialTest(unittest.TestCase):
    check = test_counters.CountersDifferentialTest.check


def _make(env):
    return lambda self: self.check(_I, PLUGINS, env, None)


for _name, _env in CASES:
    setattr(CheckFqdnDifferentialTest, "test_fqdn_diff_" + _name.replace(" ", "_"), _make(_env))

if __name__ == "__main__":
    unittest.main()
