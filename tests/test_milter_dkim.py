"""plugin-milter with OpenDKIM (Debian's opendkim) in signing mode.

The test makes a key with opendkim-genkey, starts opendkim on a free
loopback port with a configuration of its own, sends messages through
mailfront (submission-like: the client is 127.0.0.1, an internal host for
OpenDKIM) and verifies the DKIM-Signature of the queued message with
Debian's python3-dkim against the generated public key (no DNS).
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import mailfront, assert_no_sanitizer_report

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "qmail_queue_standin.py")
OPENDKIM = shutil.which("opendkim", path="/usr/sbin:/usr/bin")
GENKEY = shutil.which("opendkim-genkey", path="/usr/sbin:/usr/bin")


# python3-dkim: prints True or False for the message file argv[2] (LF lines
# made CRLF as on the wire) against the key record in argv[1].
VERIFY = ("import sys,dkim\nrec=open(sys.argv[1],'rb').read()\nm=open(sys.argv[2],'rb').read()"
          ".replace(b'\\n',b'\\r\\n')\nprint(dkim.verify(m,dnsfunc=lambda n,timeout=5: rec))\n")


@unittest.skipUnless(OPENDKIM and GENKEY, "opendkim / opendkim-tools not installed")
class OpenDKIMTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mfdkim.")
        subprocess.run([GENKEY, "-D", cls.dir, "-d", "example.com", "-s", "test"], check=True, timeout=60,
                       capture_output=True)
        with open(os.path.join(cls.dir, "test.txt")) as f:
            cls.record = "".join(re.findall(r'"([^"]*)"', f.read())).encode()
        cls.recfile = os.path.join(cls.dir, "record")
        with open(cls.recfile, "wb") as f:
            f.write(cls.record)
        cls.procs = []
        cls.ports = {}
        for canon in ("relaxed/simple", "simple/simple"):
            cls.ports[canon] = cls.start(canon)

    @classmethod
    def start(cls, canon):
        port = harness.free_port()
        conf = os.path.join(cls.dir, "opendkim-%d.conf" % port)
        with open(conf, "w") as f:
            f.write("Mode s\nDomain example.com\nSelector test\nKeyFile %s/test.private\n"
                    "Socket inet:%d@127.0.0.1\nCanonicalization %s\nBackground no\nSyslog no\n"
                    "RequireSafeKeys false\nPidFile %s/pid-%d\nInternalHosts 127.0.0.1\n"
                    % (cls.dir, port, canon, cls.dir, port))
        log = open(os.path.join(cls.dir, "opendkim-%d.log" % port), "wb")
        p = subprocess.Popen([OPENDKIM, "-x", conf, "-f"], stdout=log, stderr=log, start_new_session=True)
        cls.procs.append((p, log))
        harness.wait_port(port, timeout=20)
        return port

    @classmethod
    def tearDownClass(cls):
        for p, log in cls.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(10)
            log.close()
        shutil.rmtree(cls.dir, True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mftest.")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def send(self, port, headers, body):
        out = os.path.join(self.tmp, "qq")
        data = (b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
                + headers + b"\r\n" + body + b".\r\nQUIT\r\n")
        p = mailfront(["smtp", "qmail", "accept", "milter"], data, timeout=120, QMAILHOME=self.tmp,
                      QMAILQUEUE=STANDIN, QQ_OUT=out, MILTERS="inet:127.0.0.1:%d" % port,
                      TCPREMOTEIP="127.0.0.1", TCPLOCALHOST="mx.test")
        assert_no_sanitizer_report(self, p)
        self.assertIn(b"250 2.6.0 Accepted message", p.stdout, p.stderr)
        with open(out + ".msg", "rb") as f:
            return f.read(), out + ".msg"

    def check(self, path):
        r = subprocess.run(["/usr/bin/python3", "-c", VERIFY, self.recfile, path],
                           capture_output=True, timeout=60)
        return r.stdout.strip()

    HEAD = (b"From: Alice <a@example.com>\r\nTo: c@d.example,\r\n  e@f.example\r\nSubject:  signed\r\n"
            b"Date: Mon, 30 Nov 2026 16:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n")

    def test_dkim_signature_verifies(self):
        for canon, port in self.ports.items():
            msg, path = self.send(port, self.HEAD, b"hello\r\n\r\nsecond paragraph\r\n")
            self.assertTrue(msg.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=" + canon.encode()), msg[:200])
            self.assertIn(b"d=example.com; s=test;", msg)
            self.assertEqual(self.check(path), b"True", (canon, msg))

    def test_dkim_tampered_message_fails(self):
        msg, path = self.send(self.ports["simple/simple"], self.HEAD, b"original text\r\n")
        with open(path, "wb") as f:
            f.write(msg.replace(b"original text", b"changed text"))
        self.assertEqual(self.check(path), b"False")

    def test_dkim_large_body(self):
        body = b"".join(b"line %06d of a long message body\r\n" % i for i in range(40000))
        msg, path = self.send(self.ports["relaxed/simple"], self.HEAD, body)
        self.assertEqual(self.check(path), b"True")


if __name__ == "__main__":
    unittest.main()
