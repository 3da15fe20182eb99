"""backend-smtp in front of a real Postfix (docs/relay.md).

Postfix is not installed (the package would replace nullmailer, which the
QMQP tests need): the test unpacks `apt-get download postfix` with dpkg -x
into a cache directory ($MF_CACHE, default /tmp/mailfront-cache) and runs a
throwaway instance from a temporary directory: its own main.cf/master.cf,
queue and log file, daemon_directory in the unpacked tree, LD_LIBRARY_PATH
for its private libraries.  Its smtpd listens on a loopback port and trusts
us for XFORWARD; it relays everything to the scripted downstream of
test_relay.py, which records the envelope and bytes Postfix delivered.
Running Postfix needs root (its master drops privileges to mail_owner).
"""
import fcntl
import glob
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
from test_relay import Downstream, stop_process

CACHE = os.path.join(os.environ.get("MF_CACHE", "/tmp/mailfront-cache"), "postfix")


def postfix_tree():
    """The unpacked postfix package (downloaded once, under a lock)."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        root = os.path.join(CACHE, "root")
        if os.path.exists(os.path.join(root, "usr/lib/postfix/sbin/master")):
            return root
        debs = glob.glob(os.path.join(CACHE, "postfix_*.deb"))
        if not debs:
            subprocess.run(["apt-get", "download", "postfix"], cwd=CACHE, check=True,
                           capture_output=True, timeout=300)
            debs = glob.glob(os.path.join(CACHE, "postfix_*.deb"))
        tmp = root + ".tmp"
        shutil.rmtree(tmp, True)
        subprocess.run(["dpkg", "-x", debs[0], tmp], check=True, capture_output=True, timeout=300)
        os.rename(tmp, root)
        return root


MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
daemon_directory = {root}/usr/lib/postfix/sbin
command_directory = {root}/usr/sbin
meta_directory = {root}/etc/postfix
shlib_directory = {root}/usr/lib/postfix
mail_owner = nobody
default_privs = daemon
setgid_group = mail
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH
maillog_file = /dev/stdout
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink}
smtpd_authorized_xforward_hosts = 127.0.0.0/8
smtpd_recipient_restrictions = check_recipient_access inline:{{ {{unknown@d.example = 550 5.1.1 User unknown}} }}, permit_mynetworks, reject_unauth_destination
message_size_limit = 10240000
alias_maps =
alias_database =
biff = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
"""

QUEUE_DIRS = ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming",
              "maildrop", "private", "public", "saved", "trace")


class PostfixRelayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = Downstream()
        cls.root = postfix_tree()
        cls.dir = tempfile.mkdtemp(prefix="mftest.postfix.")
        os.chmod(cls.dir, 0o755)
        d = cls.dir
        cls.port = harness.free_port()
        for sub in ("conf", "data", "queue", "queue/pid"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for q in QUEUE_DIRS:
            os.makedirs(os.path.join(d, "queue", q), mode=0o700)
            shutil.chown(os.path.join(d, "queue", q), "nobody", "nogroup")
        os.chmod(os.path.join(d, "queue", "public"), 0o755)
        shutil.chown(os.path.join(d, "data"), "nobody", "nogroup")
        with open(os.path.join(d, "conf", "main.cf"), "w") as f:
            f.write(MAIN_CF.format(d=d, root=cls.root, sink=cls.sink.port))
        with open(os.path.join(d, "conf", "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port=cls.port))
        env = dict(PATH="/usr/bin:/bin", LD_LIBRARY_PATH=os.path.join(cls.root, "usr/lib/postfix"))
        cls.master = subprocess.Popen([os.path.join(cls.root, "usr/sbin/postfix"), "-c", os.path.join(d, "conf"),
                                       "start-fg"], env=env, stdout=open(os.path.join(d, "start.log"), "wb"),
                                      stderr=subprocess.STDOUT, start_new_session=True)
        harness.wait_port(cls.port, timeout=30)

    @classmethod
    def tearDownClass(cls):
        # master makes itself a session leader: stop it through its pid file.
        try:
            with open(os.path.join(cls.dir, "queue", "pid", "master.pid")) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, signal.SIGTERM)
            end = time.time() + 20
            while time.time() < end:
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
        stop_process(cls.master)
        cls.sink.close()
        if not os.environ.get("MF_KEEP"):
            shutil.rmtree(cls.dir, True)

    def relay(self, data, **env):
        settings = {"RELAY_HOST": "127.0.0.1:%d" % self.port, "RELAY_TIMEOUT": 30, "RELAY_HELO": "front.test",
                    "TCPREMOTEIP": "192.0.2.7", "TCPREMOTEHOST": "client.example", "TCPREMOTEPORT": "54321"}
        settings.update(env)
        p = mailfront(["smtp", "smtp", "accept"], data, timeout=120, **settings)
        assert_no_sanitizer_report(self, p)
        return p

    def delivered(self, queue_id, timeout=30):
        """The message Postfix relayed to the sink for our queue id."""
        end = time.time() + timeout
        tag = ("id %s" % queue_id).encode()
        while time.time() < end:
            with self.sink.lock:
                for m in self.sink.stored:
                    if tag in m[2][:2000]:
                        return m
            time.sleep(0.1)
        self.fail("Postfix did not deliver %s; log:\n%s" % (queue_id, self.log()[-3000:]))

    def queue_id(self, p):
        out = p.stdout.decode()
        m = re.search(r"\r\n250 2\.0\.0 Ok: (?:\d+ bytes )?queued as (\w+)\r\n", out)
        self.assertTrue(m, out)
        return m.group(1)

    def log(self):
        try:
            with open(os.path.join(self.dir, "start.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def session(self, body, mail=b"MAIL FROM:<a@b.example>", rcpts=(b"c@d.example",)):
        return (b"EHLO client.example\r\n" + mail + b"\r\n" + b"".join(b"RCPT TO:<%s>\r\n" % r for r in rcpts)
                + b"DATA\r\n" + body + b".\r\nQUIT\r\n")

    def check_delivery(self, body_wire, body_plain, **env):
        p = self.relay(self.session(body_wire, rcpts=(b"c@d.example", b"e@f.example")), **env)
        queue_id = self.queue_id(p)
        mail, rcpts, data = self.delivered(queue_id)
        self.assertEqual(mail.split(" ")[1], "FROM:<a@b.example>")
        self.assertEqual(sorted(rcpts), ["c@d.example", "e@f.example"])
        self.assertTrue(data.endswith(body_plain), data[-200:])
        # XFORWARD: Postfix logs the real client (as orig_client) and its HELO.
        self.assertIn("%s: client=localhost[127.0.0.1], orig_client=client.example[192.0.2.7]" % queue_id, self.log())
        return data

    def test_bytes_envelope_and_xforward_with_bdat(self):
        body = b"Subject: via postfix\r\n\r\nline one\r\n..dotted\r\n\r\nend\r\n"
        self.check_delivery(body, b"Subject: via postfix\r\n\r\nline one\r\n.dotted\r\n\r\nend\r\n")
        self.assertRegex(self.log(), r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 xforward=1 mail=1 rcpt=2 bdat=1 quit=1")

    def test_bytes_with_data_and_dot_stuffing(self):
        body = b"Subject: dots\r\n\r\n..\r\n...two\r\n. space\r\n"
        self.check_delivery(body, b"Subject: dots\r\n\r\n.\r\n..two\r\n space\r\n", RELAY_CHUNKING=0)
        self.assertRegex(self.log(), r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 xforward=1 mail=1 rcpt=2 data=1 quit=1")

    def test_recipient_refusal_and_size_limit(self):
        self.sink.reset()
        p = self.relay(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<unknown@d.example>\r\n"
                       b"MAIL FROM:<a@b.example> SIZE=20000000\r\nQUIT\r\n")
        out = p.stdout.decode()
        self.assertIn("550 5.1.1 <unknown@d.example>: Recipient address rejected: User unknown", out)
        self.assertIn("552 5.3.4 Message size exceeds fixed limit", out)

    def test_large_message(self):
        line = b"%07d abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
        body = b"Subject: big\r\n\r\n" + b"".join(line % i for i in range(100000))
        for chunking in (1, 0):
            with self.subTest(chunking=chunking):
                p = self.relay(self.session(body), RELAY_CHUNKING=chunking)
                self.assertTrue(self.delivered(self.queue_id(p))[2].endswith(body))


if __name__ == "__main__":
    unittest.main()
