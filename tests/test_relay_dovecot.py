"""backend-lmtp in front of Dovecot's LMTP server (docs/relay.md).

A private Dovecot instance (Debian's dovecot-core + dovecot-lmtpd) runs from
a configuration in a temporary directory: LMTP only, on a UNIX socket
($RELAY_SOCKET), users from a passwd-file, Maildirs under the test
directory, the quota plugin with lmtp_rcpt_check_quota so that an
over-quota user is refused at RCPT.  As root Dovecot delivers as `nobody`;
otherwise everything runs as the current user.
"""
import glob
import os
import pwd
import grp
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import mailfront, assert_no_sanitizer_report
from test_relay import stop_process

DOVECOT = "/usr/sbin/dovecot"

CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = lmtp
ssl = no
default_internal_user = {internal}
default_login_user = {login}
mail_location = maildir:~/Maildir
mail_plugins = quota
lmtp_rcpt_check_quota = yes
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
  default_fields = uid={uid} gid={gid} home={d}/home/%u
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage=100M
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
"""

USERS = """\
alice:{PLAIN}x::::::
bob:{PLAIN}x::::::
full:{PLAIN}x::::::userdb_quota_rule=*:storage=1k
"""


class DovecotLmtpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(DOVECOT) or not os.path.exists("/usr/lib/dovecot/lmtp"):
            raise AssertionError("dovecot-core and dovecot-lmtpd are needed (.ci/packages-relay.txt)")
        cls.dir = d = tempfile.mkdtemp(prefix="mftest.dovecot.")
        os.chmod(d, 0o755)
        if os.geteuid() == 0:
            internal, login, user, group = "dovecot", "dovenull", "nobody", "nogroup"
        else:
            user = internal = login = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            f.write(CONF.format(d=d, internal=internal, login=login, uid=user, gid=group))
        with open(os.path.join(d, "users"), "w") as f:
            f.write(USERS)
        # `full` is over its 1 KiB quota already.
        md = os.path.join(d, "home", "full", "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub))
        with open(os.path.join(md, "cur", "1.old.host,S=5000:2,"), "wb") as f:
            f.write(b"Subject: old\n\n" + b"x" * 4986)
        for root, dirs, files in os.walk(os.path.join(d, "home")):
            for n in dirs + files + [""]:
                shutil.chown(os.path.join(root, n), user, group)
        cls.socket = os.path.join(d, "run", "lmtp")
        cls.errlog = open(os.path.join(d, "stderr.log"), "wb")
        cls.master = subprocess.Popen([DOVECOT, "-F", "-c", os.path.join(d, "dovecot.conf")],
                                      stdout=subprocess.DEVNULL, stderr=cls.errlog, start_new_session=True)
        end = time.time() + 20
        while not os.path.exists(cls.socket) and time.time() < end and cls.master.poll() is None:
            time.sleep(0.05)
        if not os.path.exists(cls.socket):
            cls.tearDownClass()
            raise AssertionError("no LMTP socket at %s (dovecot did not start)" % cls.socket)

    @classmethod
    def tearDownClass(cls):
        stop_process(cls.master)
        cls.errlog.close()
        shutil.rmtree(cls.dir, True)

    def relay(self, data, **env):
        settings = {"RELAY_SOCKET": self.socket, "RELAY_TIMEOUT": 30, "RELAY_HELO": "front.test"}
        settings.update(env)
        p = mailfront(["smtp", "lmtp", "accept"], data, timeout=120, **settings)
        assert_no_sanitizer_report(self, p)
        return p

    def mailbox(self, user):
        return sorted(glob.glob(os.path.join(self.dir, "home", user, "Maildir", "new", "*")))

    def deliver(self, body_wire, rcpts=(b"alice",), **env):
        data = (b"EHLO client.example\r\nMAIL FROM:<a@b.example>\r\n"
                + b"".join(b"RCPT TO:<%s>\r\n" % r for r in rcpts)
                + b"DATA\r\n" + body_wire + b".\r\nQUIT\r\n")
        return self.relay(data, **env)

    def check_lands(self, body_wire, body_plain, **env):
        before = {u: self.mailbox(u) for u in ("alice", "bob")}
        p = self.deliver(body_wire, rcpts=(b"alice", b"bob"), **env)
        out = p.stdout.decode()
        self.assertRegex(out, r"\r\n250 2\.0\.0 <alice> \S+ Saved\r\n221 ", out)
        for u in ("alice", "bob"):
            new = [f for f in self.mailbox(u) if f not in before[u]]
            self.assertEqual(len(new), 1, u)
            with open(new[0], "rb") as f:
                stored = f.read()
            # Dovecot stores LF line ends; its trace headers, then our bytes exactly.
            plain = body_plain.replace(b"\r\n", b"\n")
            self.assertTrue(stored.endswith(plain), stored[-300:])
            self.assertRegex(stored[:len(stored) - len(plain)],
                             rb"\AReturn-Path: <a@b\.example>\n(Delivered-To: \S+\n)?Received: from front\.test\n(\t.*\n)+\Z")

    def test_message_lands_byte_exact_with_bdat(self):
        body = b"Subject: lmtp\r\nX-Test: 1\r\n\r\n..dotted\r\nplain \xc3\xa9 8bit\r\n\r\nlast\r\n"
        self.check_lands(body, b"Subject: lmtp\r\nX-Test: 1\r\n\r\n.dotted\r\nplain \xc3\xa9 8bit\r\n\r\nlast\r\n")

    def test_message_lands_byte_exact_with_data(self):
        body = b"Subject: lmtp data\r\n\r\n..\r\n...x\r\n"
        self.check_lands(body, b"Subject: lmtp data\r\n\r\n.\r\n..x\r\n", RELAY_CHUNKING=0)

    def test_large_message(self):
        line = b"%07d abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
        body = b"Subject: big\r\n\r\n" + b"".join(line % i for i in range(60000))
        self.check_lands(body, body)

    def test_unknown_user_refused_at_rcpt(self):
        p = self.deliver(b"Subject: x\r\n\r\nx\r\n", rcpts=(b"nosuchuser", b"alice"))
        out = p.stdout.decode()
        self.assertIn("\r\n550 5.1.1 <nosuchuser> User doesn't exist: nosuchuser\r\n", out)
        self.assertRegex(out, r"\r\n250 2\.0\.0 <alice> \S+ Saved\r\n")

    def test_over_quota_refused_at_rcpt(self):
        before = self.mailbox("full")
        p = self.deliver(b"Subject: x\r\n\r\nx\r\n", rcpts=(b"full",))
        out = p.stdout.decode()
        self.assertIn("\r\n552 5.2.2 <full> Quota exceeded (mailbox for user is full)\r\n", out)
        self.assertIn("\r\n503 ", out)          # DATA without any recipient
        self.assertEqual(self.mailbox("full"), before)


if __name__ == "__main__":
    unittest.main()
