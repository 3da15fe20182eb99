"""The run scripts of examples/run/, each started by its real supervisor.

daemontools (svscan + multilog), s6 (s6-svscan + s6-log) and runit (runsvdir +
svlogd): the example service directory is copied as it is, configured through its
env/ directory (port, program, module path), started by the supervisor, serves an
SMTP session on loopback, and its logger writes the session's log line; then the
supervisor stops everything it started.  journald: in a private mount namespace a
journald of the test's own (with the example drop-in) receives a session's log
through examples/run/journald/log-run.
"""
import os
import shutil
import signal
import socket
import subprocess
import time

import harness
from harness import TempDirTest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples", "run")
SESSION = b"HELO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nQUIT\r\n"


def wait_for(pred, timeout=30.0, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class SupervisedTest(TempDirTest):
    def service(self, kind, port):
        scan = os.path.join(self.tmp, "scan")
        svc = os.path.join(scan, "smtp")
        shutil.copytree(os.path.join(EXAMPLES, kind, "smtp"), svc, symlinks=True)
        env = os.path.join(svc, "env")
        os.makedirs(env)
        settings = {"IP": "127.0.0.1", "PORT": str(port), "MAILFRONT": harness.bin_path("smtpfront-echo"),
                    "MODULE_PATH": harness.LIB, "TCPLOCALHOST": "mx.example.com", "CONCURRENCY": "5", "PLUGINS": "accept",
                    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        if harness.SANITIZED:
            settings["ASAN_OPTIONS"] = "detect_leaks=0"
        for k, v in settings.items():
            with open(os.path.join(env, k), "w") as f:
                f.write(v + "\n")
        return scan, svc

    def session(self, port):
        self.assertTrue(harness.wait_port(port, 30), "the supervised tcpserver did not listen")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            got = harness.send_all_read_all(s, SESSION)
        lines = got.decode().split("\r\n")
        self.assertEqual(lines[0], "220 mx.example.com mailfront ESMTP")
        self.assertIn("250 Recipient='b@example.net'.", lines)
        self.assertEqual(lines[-2], "221 2.0.0 Good bye.")

    def log_has(self, path, text):
        def check():
            try:
                with open(path, "rb") as f:
                    return text in f.read()
            except FileNotFoundError:
                return False
        return wait_for(check, 30)

    def run_supervisor(self, kind, start, stop, logfile_text=b"bytes in:"):
        port = harness.free_port()
        scan, svc = self.service(kind, port)
        proc = subprocess.Popen(start(scan), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

        def cleanup():
            try:
                stop(scan, svc, proc)
                proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
        self.addCleanup(cleanup)
        self.session(port)
        current = os.path.join(svc, "log", "main", "current")
        self.assertTrue(self.log_has(current, logfile_text), "no log line in " + current)
        self.assertTrue(self.log_has(current, b"tcpserver: status"), "tcpserver's log missing")
        return scan, svc, proc

    def test_daemontools(self):
        def stop(scan, svc, proc):
            subprocess.run(["svc", "-dx", svc, os.path.join(svc, "log")], timeout=30)
            wait_for(lambda: not os.path.exists(os.path.join(svc, "supervise", "lock")) or
                     subprocess.run(["svok", svc], timeout=10).returncode != 0, 15)
            os.killpg(proc.pid, signal.SIGTERM)
        self.run_supervisor("daemontools", lambda scan: ["svscan", scan], stop)

    def test_s6(self):
        def stop(scan, svc, proc):
            subprocess.run(["s6-svscanctl", "-t", scan], timeout=30)
        self.run_supervisor("s6", lambda scan: ["s6-svscan", scan], stop)

    def test_runit(self):
        def stop(scan, svc, proc):
            os.kill(proc.pid, signal.SIGHUP)       # runsvdir: TERM to each runsv, which stops its services
        scan, svc, proc = self.run_supervisor("runit", lambda scan: ["runsvdir", "-P", scan], stop)
        with open(os.path.join(svc, "log", "main", "config")) as f:
            self.assertIn("n20", f.read())


JOURNALD_SCRIPT = r"""
set -e
for d in /run/systemd /run/log /var/log/journal /etc/systemd/journald.conf.d; do
  mkdir -p "$d"; mount -t tmpfs tmpfs "$d"
done
cp "$EXAMPLE/journald.conf.d/mailfront.conf" /etc/systemd/journald.conf.d/
/lib/systemd/systemd-journald &
jd=$!
i=0; while [ ! -S /run/systemd/journal/stdout ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
journalctl --flush   # what systemd-journal-flush.service does at boot: Storage=persistent takes effect
printf 'HELO x\r\nQUIT\r\n' | "$SMTPFRONT" 2>&1 >/dev/null | "$EXAMPLE/log-run"
i=0; until journalctl --no-pager -t mailfront | grep -q 'bytes in:'; do
  [ $i -lt 100 ] || break; sleep 0.1; i=$((i+1)); done
journalctl --no-pager -t mailfront -o cat
echo ==header
journalctl --no-pager --header | grep -i 'file path' || true
journalctl --no-pager -t systemd-journald -o cat || true
kill $jd; wait $jd || true
"""


class JournaldTest(TempDirTest):
    def test_journald_setup(self):
        env = harness.base_env(EXAMPLE=os.path.join(EXAMPLES, "journald"),
                               SMTPFRONT=harness.bin_path("smtpfront-echo"),
                               PATH="/usr/sbin:/usr/bin:/sbin:/bin")
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", JOURNALD_SCRIPT],
                           env=env, capture_output=True, timeout=120)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode(errors="replace"))
        logs = out.split("==header")[0]
        self.assertIn("bytes in:", logs)                      # mailfront's log line, tagged mailfront
        self.assertIn("/var/log/journal/", out)               # Storage=persistent of the drop-in
        self.assertRegex(out, r"max 200\.0M")                  # SystemMaxUse of the drop-in


if __name__ == "__main__":
    import unittest
    unittest.main()
