#!/usr/bin/python3
"""A milter for the tests, written with Debian's python3-milter (libmilter).

Usage: milter_test_milter.py SOCKET LOG [MODE]

SOCKET is a libmilter socket spec (inet:PORT@127.0.0.1, unix:PATH).  Every
end of data appends one JSON line to LOG with what the milter saw (macros,
envelope, headers, body size and digest).  The milter does what the message
asks, so one process serves a whole test class:
  sender local part   mail-reject, mail-tempfail, mail-reply, mail-discard,
                      mail-accept  (answer at MAIL)
  recipient local part rcpt-reject, rcpt-tempfail, rcpt-reply, rcpt-accept
  X-Test header        space-separated actions at the named step:
                       header-reject, body-reject, body-skip,
                       addheader, insheader, chgheader, delheader, replbody,
                       chgfrom, addrcpt, delrcpt, quarantine, progress,
                       reject, tempfail, discard, reply, sleep, crash
MODE (optional): connect-reject, connect-tempfail, helo-reject, noreply
(negotiates no-reply for every step it can), leadspc (header values with
their leading space)."""
import hashlib
import json
import os
import sys
import threading
import time

import Milter

SOCK, LOG = sys.argv[1], sys.argv[2]
MODE = sys.argv[3] if len(sys.argv) > 3 else ""
lock = threading.Lock()


def log(rec):
    with lock:
        with open(LOG, "a") as f:
            f.write(json.dumps(rec) + "\n")


class TestMilter(Milter.Base):
    def __init__(self):
        self.reset()

    def reset(self):
        self.sender = None
        self.rcpts = []
        self.headers = []
        self.actions = []
        self.digest = hashlib.sha256()
        self.bodylen = 0
        self.macros = {}
        self.chunks = 0

    def negotiate(self, opts):
        r = Milter.Base.negotiate(self, opts)
        if MODE == "noreply":
            opts[1] |= (Milter.P_NR_CONN | Milter.P_NR_HELO | Milter.P_NR_MAIL | Milter.P_NR_RCPT
                        | Milter.P_NR_DATA | Milter.P_NR_HDR | Milter.P_NR_EOH | Milter.P_NR_BODY)
        if MODE == "leadspc":
            opts[1] |= Milter.P_HDR_LEADSPC
        return r

    def grab(self, *names):
        for n in names:
            v = self.getsymval(n)
            if v is not None:
                self.macros[n] = v

    def connect(self, hostname, family, hostaddr):
        self.conn = {"hostname": hostname, "family": family, "addr": list(hostaddr) if isinstance(hostaddr, tuple) else hostaddr}
        self.connmacros = {}
        for n in ("j", "_", "{daemon_name}", "{client_addr}", "{client_port}", "{client_name}", "v"):
            v = self.getsymval(n)
            if v is not None:
                self.connmacros[n] = v
        if MODE == "connect-reject":
            return Milter.REJECT
        if MODE == "connect-tempfail":
            return Milter.TEMPFAIL
        return Milter.CONTINUE

    def hello(self, host):
        self.helo = host
        if MODE == "helo-reject":
            self.setreply("554", "5.7.0", "helo refused by milter")
            return Milter.REJECT
        return Milter.CONTINUE

    def envfrom(self, f, *params):
        self.reset()
        self.sender = f
        self.params = list(params)
        self.grab("i", "{mail_addr}", "{auth_authen}", "{auth_type}")
        local = f.strip("<>").split("@")[0]
        if local == "mail-reject":
            return Milter.REJECT
        if local == "mail-tempfail":
            return Milter.TEMPFAIL
        if local == "mail-reply":
            self.setreply("553", "5.1.8", "first line", "second line")
            return Milter.REJECT
        if local == "mail-discard":
            return Milter.DISCARD
        if local == "mail-accept":
            return Milter.ACCEPT
        return Milter.CONTINUE

    def envrcpt(self, to, *params):
        self.grab("{rcpt_addr}")
        local = to.strip("<>").split("@")[0]
        if local == "rcpt-reject":
            return Milter.REJECT
        if local == "rcpt-tempfail":
            return Milter.TEMPFAIL
        if local == "rcpt-reply":
            self.setreply("550", "5.1.1", "no such user here")
            return Milter.REJECT
        self.rcpts.append(to)
        if local == "rcpt-accept":
            return Milter.ACCEPT
        return Milter.CONTINUE

    @Milter.decode("bytes")
    def header(self, name, value):
        value = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
        self.headers.append([name, value])
        if name.lower() == "x-test":
            self.actions = value.split()
        if "header-reject" in self.actions:
            return Milter.REJECT
        return Milter.CONTINUE

    def eoh(self):
        return Milter.CONTINUE

    def body(self, chunk):
        self.digest.update(chunk)
        self.bodylen += len(chunk)
        self.chunks += 1
        if "body-reject" in self.actions:
            return Milter.REJECT
        if "body-skip" in self.actions:
            return Milter.SKIP
        return Milter.CONTINUE

    def eom(self):
        self.grab("i")
        a = self.actions
        log({"conn": self.conn, "connmacros": self.connmacros, "helo": getattr(self, "helo", None),
             "sender": self.sender, "params": getattr(self, "params", []), "rcpts": self.rcpts,
             "headers": self.headers, "bodylen": self.bodylen, "body": self.digest.hexdigest(),
             "chunks": self.chunks, "macros": self.macros, "actions": a})
        if "sleep" in a:
            time.sleep(8)
        if "crash" in a:
            os._exit(3)
        if "progress" in a:
            for _ in range(3):
                self.progress()
                time.sleep(0.6)
        if "addheader" in a:
            self.addheader("X-Added", "added by the milter")
            self.addheader("X-Folded", "first\n\tsecond")
        if "insheader" in a:
            self.addheader("X-Inserted", "at the top", 0)
        if "chgheader" in a:
            self.chgheader("Subject", 1, "changed subject")
        if "delheader" in a:
            self.chgheader("X-Remove", 1, "")
        if "replbody" in a:
            self.replacebody(b"replaced body line 1\r\n")
            self.replacebody(b"replaced body line 2\r\n")
        if "chgfrom" in a:
            self.chgfrom("<new-sender@example.org>")
        if "addrcpt" in a:
            self.addrcpt("<added@example.org>")
        if "delrcpt" in a:
            self.delrcpt("<c@d.example>")
        if "quarantine" in a:
            self.quarantine("held for review")
        if "reject" in a:
            return Milter.REJECT
        if "tempfail" in a:
            return Milter.TEMPFAIL
        if "discard" in a:
            return Milter.DISCARD
        if "reply" in a:
            self.setreply("554", "5.7.9", "line one", "line two", "line three")
            return Milter.REJECT
        return Milter.CONTINUE

    def abort(self):
        return Milter.CONTINUE

    def close(self):
        return Milter.CONTINUE


if __name__ == "__main__":
    Milter.factory = TestMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY | Milter.ADDRCPT | Milter.DELRCPT
                     | Milter.CHGFROM | Milter.QUARANTINE)
    sys.stdout.flush()
    Milter.runmilter("mftest", SOCK, 60)
