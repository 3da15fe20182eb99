"""plugin-spf (docs/spf.md) against a real DNS server on loopback: dnsmasq
(Debian dnsmasq-base) started by this module with the test zone spf.test
on a free port ($DNSCACHEPORT).  Every result word (pass, fail,
softfail, neutral, none, temperror with the server down, permerror with
two records), the include, redirect, a and mx mechanisms, an IPv6 client,
the HELO check for the null sender, the policy variables and the two
header fields added to the message."""
import os
import re
import shutil
import socket
import time
import unittest

import harness
import servers
from harness import assert_no_sanitizer_report
from test_qmqp_qmtp import qmqp_message
from test_ratelimit import auth_env, auth_plain
from test_smtp_session import crlf, log_lines

TXT = [
    ("pass.spf.test", "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all"),
    ("fail.spf.test", "v=spf1 ip4:192.0.2.99 -all"),
    ("softfail.spf.test", "v=spf1 ip4:192.0.2.99 ~all"),
    ("neutral.spf.test", "v=spf1 ?all"),
    ("none.spf.test", "just some text"),
    ("perm.spf.test", "v=spf1 ip4:192.0.2.1 -all"),
    ("perm.spf.test", "v=spf1 +all"),
    ("include.spf.test", "v=spf1 include:inc.spf.test -all"),
    ("inc.spf.test", "v=spf1 ip4:192.0.2.2 -all"),
    ("redirect.spf.test", "v=spf1 redirect=pass.spf.test"),
    ("amx.spf.test", "v=spf1 a:host.spf.test mx -all"),
    ("helo.spf.test", "v=spf1 ip4:192.0.2.1 -all"),
    ("badmech.spf.test", "v=spf1 foo:bar -all"),
]
DNS = {}


def setUpModule():
    if not servers.Dnsmasq.EXE:
        raise RuntimeError("dnsmasq (dnsmasq-base) is not installed")
    options = ["--local=/spf.test/", "--host-record=host.spf.test,192.0.2.5", "--host-record=mail.spf.test,192.0.2.6",
               "--mx-host=amx.spf.test,mail.spf.test,10"] + [f"--txt-record={n},{t}" for n, t in TXT]
    # three tries: a port taken between our probe and dnsmasq's bind
    server = servers.Dnsmasq(options, "pass.spf.test", [("127.0.0.1", None)] * 3, timeout=15)
    # A server that never answers: a bound UDP socket nobody reads.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    DNS.update(server=server, port=server.port, silent=silent)


def tearDownModule():
    if "server" in DNS:
        DNS["server"].stop()
        DNS["silent"].close()


MESSAGE = ["DATA", "Subject: spf", "", "body", "."]


class SpfTest(harness.TempDirTest):
    def session(self, sender, ip="192.0.2.1", helo="client.example", data=True, **env):
        env.setdefault("DNSCACHEIP", "127.0.0.1")
        env.setdefault("DNSCACHEPORT", str(DNS["port"]))
        env.setdefault("TCPLOCALHOST", "mx.example")
        env.setdefault("SPF_TIMEOUT", "5")
        lines = ([f"HELO {helo}"] if helo else []) + [f"MAIL FROM:<{sender}>", "RCPT TO:<r@d.example>"]
        lines += (MESSAGE if data else []) + ["QUIT"]
        q = os.path.join(self.tmp, "q")
        shutil.rmtree(q, True)
        for d in ("tmp", "new"):
            os.makedirs(os.path.join(q, d))
        p = harness.mailfront(["smtp", "queuedir", "spf", "accept"], crlf(*lines), timeout=60,
                              TCPREMOTEIP=ip, QUEUEDIR=q, **env)
        assert_no_sanitizer_report(self, p)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode("latin-1").split("\r\n")[:-1]
        self.queued = []
        for name in os.listdir(os.path.join(q, "new")):
            with open(os.path.join(q, "new", name), "rb") as f:
                self.queued.append(f.read().decode("latin-1"))
        return out, log_lines(p)

    def headers(self):
        """The header fields of the one queued message, unfolded."""
        self.assertEqual(len(self.queued), 1)
        envelope, _, message = self.queued[0].partition("\0\0")
        head = message.split("\n\n")[0]
        return re.sub(r"\n[ \t]", " ", head).split("\n")

    def field(self, name):
        found = [h for h in self.headers() if h.startswith(name + ": ")]
        self.assertEqual(len(found), 1, self.headers())
        return found[0][len(name) + 2:]

    def accepted(self, sender, result, ip="192.0.2.1", **env):
        out, log = self.session(sender, ip=ip, **env)
        self.assertEqual(out[2][:3], "250", out)
        self.assertEqual(out[5][:3], "250", out)
        self.assertTrue(self.field("Received-SPF").startswith(result + " ("), self.headers())
        self.assertEqual(self.field("Authentication-Results").split(";")[1].split()[0], "spf=" + result)
        return log

    def test_spf_pass_headers(self):
        log = self.accepted("a@pass.spf.test", "pass")
        self.assertEqual(self.field("Received-SPF"),
                         "pass (mx.example: domain of pass.spf.test designates 192.0.2.1 as permitted sender) "
                         "client-ip=192.0.2.1; envelope-from=\"a@pass.spf.test\"; helo=client.example; "
                         "receiver=mx.example; identity=mailfrom;")
        self.assertEqual(self.field("Authentication-Results"),
                         "mx.example; spf=pass smtp.mailfrom=a@pass.spf.test")
        self.assertIn("spf: result=pass identity=mailfrom domain=pass.spf.test", log)

    def test_spf_fail_rejected(self):
        out, _ = self.session("a@fail.spf.test")
        self.assertEqual(out[2], "550 5.7.23 SPF check failed for fail.spf.test: fail")

    def test_spf_fail_accepted_when_not_listed(self):
        log = self.accepted("a@fail.spf.test", "fail", SPF_REJECT="")
        self.assertIn("does not designate 192.0.2.1 as permitted sender", self.field("Received-SPF"))

    def test_spf_softfail(self):
        log = self.accepted("a@softfail.spf.test", "softfail")
        self.assertIn("domain of transitioning softfail.spf.test does not designate 192.0.2.1",
                      self.field("Received-SPF"))
        out, _ = self.session("a@softfail.spf.test", SPF_REJECT="fail, softfail")
        self.assertEqual(out[2], "550 5.7.23 SPF check failed for softfail.spf.test: softfail")

    def test_spf_neutral(self):
        log = self.accepted("a@neutral.spf.test", "neutral")
        self.assertIn("192.0.2.1 is neither permitted nor denied by domain of neutral.spf.test",
                      self.field("Received-SPF"))

    def test_spf_none(self):
        self.accepted("a@none.spf.test", "none")
        self.accepted("a@nxdomain.spf.test", "none")

    def test_spf_permerror_two_records(self):
        log = self.accepted("a@perm.spf.test", "permerror")
        self.assertIn("permanent error", self.field("Received-SPF"))
        out, _ = self.session("a@perm.spf.test", SPF_REJECT="fail permerror")
        self.assertEqual(out[2], "550 5.7.23 SPF check failed for perm.spf.test: permerror")

    def test_spf_permerror_unknown_mechanism(self):
        self.accepted("a@badmech.spf.test", "permerror")

    def test_spf_temperror_server_down(self):
        silent = DNS["silent"].getsockname()[1]
        start = time.monotonic()
        out, log = self.session("a@pass.spf.test", DNSCACHEPORT=str(silent), SPF_TIMEOUT="2")
        self.assertLess(time.monotonic() - start, 30)
        self.assertEqual(out[2], "451 4.7.24 SPF check could not be completed for pass.spf.test: temperror")
        log = self.accepted("a@pass.spf.test", "temperror", DNSCACHEPORT=str(silent), SPF_TIMEOUT="1",
                            SPF_TEMPFAIL="")
        self.assertIn("temporary error", self.field("Received-SPF"))

    def test_spf_temperror_refused_port(self):
        out, _ = self.session("a@pass.spf.test", DNSCACHEPORT=str(harness.free_port()), SPF_TIMEOUT="2")
        self.assertEqual(out[2], "451 4.7.24 SPF check could not be completed for pass.spf.test: temperror")

    def test_spf_include(self):
        self.accepted("a@include.spf.test", "pass", ip="192.0.2.2")
        out, _ = self.session("a@include.spf.test", ip="192.0.2.3")
        self.assertEqual(out[2], "550 5.7.23 SPF check failed for include.spf.test: fail")

    def test_spf_redirect(self):
        self.accepted("a@redirect.spf.test", "pass")
        out, _ = self.session("a@redirect.spf.test", ip="192.0.2.7")
        self.assertEqual(out[2], "550 5.7.23 SPF check failed for redirect.spf.test: fail")

    def test_spf_a_and_mx_mechanisms(self):
        self.accepted("a@amx.spf.test", "pass", ip="192.0.2.5")
        self.accepted("a@amx.spf.test", "pass", ip="192.0.2.6")
        out, _ = self.session("a@amx.spf.test", ip="192.0.2.7")
        self.assertEqual(out[2][:3], "550")

    def test_spf_ipv6_client(self):
        log = self.accepted("a@pass.spf.test", "pass", ip="2001:db8::1")
        self.assertIn("client-ip=2001:db8::1;", self.field("Received-SPF"))
        out, _ = self.session("a@pass.spf.test", ip="2001:db8::2")
        self.assertEqual(out[2], "550 5.7.23 SPF check failed for pass.spf.test: fail")

    def test_spf_null_sender_checks_helo(self):
        log = self.accepted("", "pass", helo="helo.spf.test")
        self.assertIn("identity=helo;", self.field("Received-SPF"))
        self.assertIn("envelope-from=\"\";", self.field("Received-SPF"))
        self.assertEqual(self.field("Authentication-Results"), "mx.example; spf=pass smtp.helo=helo.spf.test")
        out, _ = self.session("", ip="192.0.2.7", helo="helo.spf.test")
        self.assertEqual(out[2], "550 5.7.23 SPF check failed for helo.spf.test: fail")

    def test_spf_skipped_for_relay_clients(self):
        out, log = self.session("a@fail.spf.test", RELAYCLIENT="")
        self.assertEqual(out[2][:3], "250")
        self.assertFalse([h for h in self.headers() if h.startswith(("Received-SPF", "Authentication-Results"))])
        out, _ = self.session("a@fail.spf.test", SPF_DISABLE="1")
        self.assertEqual(out[2][:3], "250")

    def test_spf_skipped_for_authenticated_users(self):
        lines = ["EHLO client.example", auth_plain(b"alice", b"secret"), "MAIL FROM:<a@fail.spf.test>",
                 "RCPT TO:<r@d.example>", "QUIT"]
        p = harness.mailfront(["smtp", "echo", "cvm-authenticate", "spf", "accept"], crlf(*lines), timeout=60,
                              TCPREMOTEIP="192.0.2.1", DNSCACHEIP="127.0.0.1", DNSCACHEPORT=str(DNS["port"]),
                              **auth_env(self.tmp))
        assert_no_sanitizer_report(self, p)
        out = p.stdout.decode("latin-1").split("\r\n")
        self.assertIn("235 2.7.0 Authentication succeeded.", out)
        self.assertIn("250 Sender='a@fail.spf.test'.", out)
        self.assertFalse([l for l in log_lines(p) if l.startswith("spf: result=")])

    def test_spf_not_for_qmqp(self):
        """QMQP hands the envelope over after the message: no check, no field,
        and nothing left over for the next message."""
        q = os.path.join(self.tmp, "q")
        for d in ("tmp", "new"):
            os.makedirs(os.path.join(q, d))
        data = qmqp_message(b"Subject: one\n\nbody\n", b"a@fail.spf.test", [b"r@d.example"])
        p = harness.mailfront(["qmqp", "queuedir", "spf", "accept"], data, timeout=60, TCPREMOTEIP="192.0.2.1",
                              QUEUEDIR=q, DNSCACHEIP="127.0.0.1", DNSCACHEPORT=str(DNS["port"]))
        assert_no_sanitizer_report(self, p)
        self.assertRegex(p.stdout, rb"^\d+:K")        # accepted
        names = os.listdir(os.path.join(q, "new"))
        self.assertEqual(len(names), 1)
        with open(os.path.join(q, "new", names[0]), "rb") as f:
            self.assertNotIn(b"SPF", f.read())

    def test_spf_authserv_id(self):
        log = self.accepted("a@pass.spf.test", "pass", SPF_AUTHSERV_ID="auth.example")
        self.assertTrue(self.field("Authentication-Results").startswith("auth.example; spf=pass"))

    def test_spf_hostile_values_quoted(self):
        log = self.accepted('"we\\"ird"@none.spf.test', "none", helo="bad\"helo(x)")
        rs = self.field("Received-SPF")
        # The SMTP parser unquotes the local part: we"ird@none.spf.test.
        self.assertIn('envelope-from="we\\"ird@none.spf.test";', rs)
        self.assertIn('helo="bad\\"helo(x)";', rs)
        self.assertEqual(self.field("Authentication-Results"), "mx.example; spf=none smtp.mailfrom=none.spf.test")

    def test_spf_headers_first_and_once_per_message(self):
        lines = ["HELO client.example", "MAIL FROM:<a@pass.spf.test>", "RCPT TO:<r@d.example>"] + MESSAGE
        lines += ["MAIL FROM:<a@neutral.spf.test>", "RCPT TO:<r@d.example>"] + MESSAGE + ["QUIT"]
        q = os.path.join(self.tmp, "q")
        for d in ("tmp", "new"):
            os.makedirs(os.path.join(q, d))
        p = harness.mailfront(["smtp", "queuedir", "spf", "accept"], crlf(*lines), timeout=60,
                              TCPREMOTEIP="192.0.2.1", QUEUEDIR=q, DNSCACHEIP="127.0.0.1",
                              DNSCACHEPORT=str(DNS["port"]), TCPLOCALHOST="mx.example")
        assert_no_sanitizer_report(self, p)
        msgs = []
        for name in os.listdir(os.path.join(q, "new")):
            with open(os.path.join(q, "new", name), "rb") as f:
                msgs.append(f.read().decode("latin-1").partition("\0\0")[2])
        self.assertEqual(len(msgs), 2)
        results = sorted(m.split("\n")[0] for m in msgs)
        self.assertTrue(results[0].startswith("Received-SPF: neutral ("), msgs)
        self.assertTrue(results[1].startswith("Received-SPF: pass ("), msgs)
        for m in msgs:
            head = m.split("\n\n")[0]
            self.assertEqual(head.count("Received-SPF:"), 1, m)
            self.assertEqual(head.count("Authentication-Results:"), 1, m)
            self.assertTrue(head.endswith("Subject: spf"), m)


if __name__ == "__main__":
    unittest.main()
