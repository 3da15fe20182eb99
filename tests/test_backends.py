"""Back ends: qmail (through a qmail-queue stand-in), queuedir, echo."""
import os
import signal
import subprocess
import time
import unittest

import harness
from harness import TempDirTest, mailfront, assert_no_sanitizer_report

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "qmail_queue_standin.py")

SESSION = (b"HELO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
           b"RCPT TO:<e@f.example>\r\nDATA\r\nSubject: t\r\n\r\nline one\r\n..dotted\r\n.\r\nQUIT\r\n")
BODY = b"Subject: t\n\nline one\n.dotted\n"

QQ_TABLE = {
    11: "554 5.1.3 Address too long.",
    31: "554 5.3.0 Message refused.",
    51: "451 4.3.0 Out of memory.",
    52: "451 4.3.0 Timeout.",
    53: "451 4.3.0 Write error (queue full?).",
    54: "451 4.3.0 Unable to read the message or envelope.",
    55: "451 4.3.0 Unable to read a configuration file.",
    56: "451 4.3.0 Network problem.",
    61: "451 4.3.0 Problem with the qmail home directory.",
    62: "451 4.3.0 Problem with the qmail queue directory.",
    63: "451 4.3.0 Problem with queue/pid.",
    64: "451 4.3.0 Problem with queue/mess.",
    65: "451 4.3.0 Problem with queue/intd.",
    66: "451 4.3.0 Problem with queue/todo.",
    71: "451 4.3.0 Message refused by mail server.",
    72: "451 4.3.0 Connection to mail server timed out.",
    73: "451 4.3.0 Connection to mail server rejected.",
    74: "451 4.3.0 Communication with mail server failed.",
    81: "451 4.3.0 Internal qmail-queue bug.",
    91: "451 4.3.0 Envelope format error.",
    40: "554 5.3.0 Message rejected by qmail-queue.",
    12: "554 5.3.0 Message rejected by qmail-queue.",
    100: "451 4.3.0 Temporary qmail-queue failure.",
    1: "451 4.3.0 Temporary qmail-queue failure.",
}


def replies(out):
    return out.decode().split("\r\n")


class QmailBackendTest(TempDirTest):
    def qq(self, data=SESSION, plugins=("accept",), **env):
        out = os.path.join(self.tmp, "qq")
        settings = {"QMAILHOME": self.tmp, "QMAILQUEUE": STANDIN, "QQ_OUT": out}
        settings.update(env)
        p = mailfront(["smtp", "qmail"] + list(plugins), data, **settings)
        assert_no_sanitizer_report(self, p)
        return p, out

    def test_envelope_and_message_bytes(self):
        p, out = self.qq()
        self.assertEqual(p.returncode, 0, p.stderr)
        r = replies(p.stdout)
        self.assertRegex(r[6], r"^250 2\.6\.0 Accepted message qp \d+ bytes %d$" % len(BODY))
        with open(out + ".env", "rb") as f:
            self.assertEqual(f.read(), b"Fa@b.example\0Tc@d.example\0Te@f.example\0\0")
        with open(out + ".msg", "rb") as f:
            self.assertEqual(f.read(), BODY)

    def test_with_temp_file(self):
        p, out = self.qq(plugins=("accept", "force-file"))
        self.assertIn(b"250 2.6.0 Accepted message qp", p.stdout)
        with open(out + ".msg", "rb") as f:
            self.assertEqual(f.read(), BODY)
        with open(out + ".env", "rb") as f:
            self.assertEqual(f.read(), b"Fa@b.example\0Tc@d.example\0Te@f.example\0\0")

    def test_relayclient_suffix_in_envelope(self):
        p, out = self.qq(plugins=("accept-sender", "relayclient"), RELAYCLIENT="@relay")
        with open(out + ".env", "rb") as f:
            self.assertEqual(f.read(), b"Fa@b.example\0Tc@d.example@relay\0Te@f.example@relay\0\0")

    def test_every_exit_code(self):
        for status, text in QQ_TABLE.items():
            with self.subTest(status=status):
                p, _ = self.qq(QQ_EXIT=status)
                self.assertEqual(replies(p.stdout)[6], text)

    def test_qqerrmsg_override(self):
        p, _ = self.qq(QQ_EXIT=31, QQERRMSG_31="5.7.1 Go away")
        self.assertEqual(replies(p.stdout)[6], "554 5.7.1 Go away")

    def test_missing_program(self):
        p, _ = self.qq(QMAILQUEUE=os.path.join(self.tmp, "nonexistent"))
        self.assertEqual(replies(p.stdout)[6], "451 4.3.0 Temporary qmail-queue failure.")

    def test_bad_qmailhome(self):
        p = mailfront(["smtp", "qmail", "accept"], SESSION, QMAILHOME=os.path.join(self.tmp, "nope"),
                      QMAILQUEUE=STANDIN)
        self.assertIn(b"451 4.3.0 Could not change to the qmail directory.", p.stdout)

    def test_crash(self):
        crash = os.path.join(self.tmp, "crash.sh")
        with open(crash, "w") as f:
            f.write("#!/bin/sh\nkill -9 $$\n")
        os.chmod(crash, 0o755)
        p, _ = self.qq(QMAILQUEUE=crash)
        self.assertEqual(replies(p.stdout)[6], "451 4.3.0 qmail-queue crashed.")

    def test_deadline_on_qmail_queue(self):
        """A qmail-queue that never finishes is killed at $QMAILQUEUE_TIMEOUT:
        the message gets a temporary failure and the session goes on."""
        hang = os.path.join(self.tmp, "hang.sh")
        with open(hang, "w") as f:
            f.write("#!/bin/sh\nexec sleep 60\n")
        os.chmod(hang, 0o755)
        for plugins in (("accept",), ("accept", "force-file")):
            with self.subTest(plugins=plugins):
                p, _ = self.qq(plugins=plugins, QMAILQUEUE=hang, QMAILQUEUE_TIMEOUT="1")
                r = replies(p.stdout)
                self.assertEqual(r[6], "451 4.3.0 qmail-queue timed out.")
                self.assertEqual(r[7], "221 2.0.0 Good bye.")
                self.assertEqual(p.returncode, 0)

    def test_session_env_reaches_queue(self):
        dump = os.path.join(self.tmp, "env")
        p, _ = self.qq(QQ_ENVDUMP=dump, HELLO_VAR="x1")
        with open(dump) as f:
            self.assertIn("HELLO_VAR=x1\n", f.read())

    def test_two_messages_one_session(self):
        two = SESSION.replace(b"QUIT\r\n", b"") + SESSION[len(b"HELO client.example\r\n"):]
        p, out = self.qq(data=two)
        self.assertEqual(p.stdout.count(b"250 2.6.0 Accepted message qp"), 2)


class QueuedirTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.q = os.path.join(self.tmp, "q")
        for d in ("tmp", "new"):
            os.makedirs(os.path.join(self.q, d))

    def files(self, d="new"):
        return sorted(os.listdir(os.path.join(self.q, d)))

    def test_format_and_durable_accept(self):
        p = mailfront(["smtp", "queuedir", "accept"], SESSION, QUEUEDIR=self.q)
        assert_no_sanitizer_report(self, p)
        self.assertIn(b"250 2.6.0 Message accepted.", p.stdout)
        names = self.files()
        self.assertEqual(len(names), 1)
        self.assertRegex(names[0], r"^\d+\.\d{6}\.\d+$")
        self.assertEqual(self.files("tmp"), [])
        with open(os.path.join(self.q, "new", names[0]), "rb") as f:
            self.assertEqual(f.read(), b"a@b.example\0c@d.example\0e@f.example\0\0" + BODY)

    def test_missing_config(self):
        p = mailfront(["smtp", "queuedir", "accept"], SESSION)
        self.assertIn(b"451 4.3.0 Missing backend configuration parameter", p.stdout)

    def test_unwritable_dir(self):
        p = mailfront(["smtp", "queuedir", "accept"], SESSION, QUEUEDIR=os.path.join(self.tmp, "none"))
        self.assertIn(b"451 4.3.0 Error creating queue file", p.stdout)

    def test_custom_subdirs_and_nosync(self):
        os.makedirs(os.path.join(self.q, "work"))
        os.makedirs(os.path.join(self.q, "done"))
        p = mailfront(["smtp", "queuedir", "accept"], SESSION, QUEUEDIR=self.q, QUEUEDIR_TMP="work",
                      QUEUEDIR_DEST="done", QUEUEDIR_NOSYNC="1")
        self.assertIn(b"250 2.6.0 Message accepted.", p.stdout)
        self.assertEqual(len(self.files("done")), 1)
        self.assertEqual(self.files("work"), [])

    def test_rset_and_refused_message_leave_nothing(self):
        data = (b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
                b"DATA\r\nbare\nlf\r\n.\r\nQUIT\r\n")
        p = mailfront(["smtp", "queuedir", "accept"], data, QUEUEDIR=self.q)
        self.assertIn(b"550 5.6.0", p.stdout)
        self.assertEqual(self.files(), [])
        self.assertEqual(self.files("tmp"), [])

    def test_eof_mid_data_leaves_nothing(self):
        data = b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhalf a message\r\n"
        p = mailfront(["smtp", "queuedir", "accept"], data, QUEUEDIR=self.q)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"Connection dropped", p.stderr)
        self.assertEqual(self.files(), [])
        self.assertEqual(self.files("tmp"), [])

    def test_killed_mid_data_leaves_nothing_in_new(self):
        env = harness.base_env(QUEUEDIR=self.q)
        p = subprocess.Popen([harness.bin_path("mailfront"), "smtp", "queuedir", "accept"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        p.stdin.write(b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n" + b"x" * 100000 + b"\r\n")
        p.stdin.flush()
        deadline = time.time() + 10
        while time.time() < deadline and not self.files("tmp"):
            time.sleep(0.02)
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdin.close()
        p.stdout.close()
        self.assertEqual(self.files(), [])


class EchoBackendTest(unittest.TestCase):
    def test_params_and_count(self):
        data = b"MAIL FROM:<a@b> X=1  Y\nRCPT TO:<c@d> Z\nDATA\nabc\n.\n"
        p = mailfront(["smtp", "echo", "accept"], data)
        r = p.stdout.decode().split("\r\n")
        self.assertEqual(r[1], "250 Sender='a@b'. [X=1] [] [Y]")
        self.assertEqual(r[2], "250 Recipient='c@d'. [Z]")
        self.assertEqual(r[4], "250 Received 4 bytes.")

    def test_first_block_without_lf(self):
        data = b"MAIL FROM:<a@b>\nRCPT TO:<c@d>\nDATA\n" + b"x" * 10000 + b"\n.\n"
        p = mailfront(["smtp", "echo", "accept"], data)
        assert_no_sanitizer_report(self, p)
        self.assertIn(b"250 Received 10001 bytes.", p.stdout)


if __name__ == "__main__":
    unittest.main()
