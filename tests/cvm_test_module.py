#!/usr/bin/env python3
"""A small CVM (Credential Validation Module), protocol version 2, for the
tests of mailfront's CVM client (src/auth/cvm.c) and SASL engine.

Unlike Debian's cvm-pwfile it supports the CRAM-MD5 challenge/response
credentials, lookup mode (no password: ACCOUNT+DOMAIN[+SECRET]) with the
out-of-scope fact, and misbehaviour on demand.

Usage:
  cvm_test_module.py [OPTIONS] command          one request on stdin
  cvm_test_module.py [OPTIONS] local PATH       UNIX stream socket server
  cvm_test_module.py [OPTIONS] udp HOST PORT    UDP server
Options:
  --users FILE    lines `name:password:uid:gid:home[:realname[:domain[:mailbox]]]`
  --domains D,..  lookup mode: a DOMAIN outside this list is out of scope
  --secret S      lookup mode: SECRET must equal S
  --record FILE   append one line per request: repr() of the credentials
  --mode M        normal | hang (never answer) | die (exit/close, no reply)
                  | garbage (malformed reply) | badrandom (UDP: wrong echo)
                  | exit100 (command: reply 0 but exit 100)
  --drop N        UDP: ignore the first N datagrams (tests retries)
  --gids 0        do not send the SUPP_GROUPID fact
Environment: like a module built with Debian's libcvm, the module runs in
lookup mode whenever $CVM_LOOKUP_SECRET is set in its environment: the
password or CRAM-MD5 response is NOT checked (a non-empty value must equal
the SECRET credential).  This is what makes a leaked lookup secret an
authentication bypass (test_auth_bypass.py).
Result codes: 0 success, 100 rejected, 7 missing credential, 2 bad request.
"""
import hashlib
import hmac
import os
import socket
import sys
import time

CRED_ACCOUNT, CRED_DOMAIN, CRED_PASSWORD, CRED_SECRET = 1, 2, 3, 4
CRED_CHALLENGE, CRED_RESPONSE, CRED_RESPONSE_TYPE = 5, 6, 7


def parse_request(data):
    """-> (random bytes, {type: bytes}) or None when malformed."""
    if len(data) < 3 or data[0] != 2 or len(data) > 512:
        return None
    rl = data[1]
    i = 2 + rl
    if i > len(data):
        return None
    rnd = data[2:i]
    creds = {}
    while True:
        if i >= len(data):
            return None
        t = data[i]
        if t == 0:
            return (rnd, creds) if i + 1 == len(data) else None
        if i + 2 > len(data) or i + 2 + data[i + 1] > len(data):
            return None
        creds[t] = data[i + 2:i + 2 + data[i + 1]]
        i += 2 + data[i + 1]


def packet(code, rnd, facts):
    out = bytes([code, len(rnd)]) + rnd
    for t, v in facts:
        v = v if isinstance(v, bytes) else str(v).encode()
        out += bytes([t, len(v)]) + v
    return out + b"\0"


class Module:
    def __init__(self, opts):
        self.users = {}
        if opts.get("users"):
            with open(opts["users"]) as f:
                for line in f:
                    line = line.rstrip("\n")
                    if not line:
                        continue
                    p = line.split(":")
                    p += [""] * (8 - len(p))
                    self.users[p[0]] = p
        self.domains = opts["domains"].split(",") if opts.get("domains") else None
        self.secret = opts.get("secret")
        self.record = opts.get("record")
        self.mode = opts.get("mode", "normal")
        self.gids = opts.get("gids", "1") != "0"

    def answer(self, data):
        """-> reply bytes (or None for no reply)."""
        req = parse_request(data)
        if req is None:
            return packet(2, b"", [])
        rnd, c = req
        if self.record:
            with open(self.record, "a") as f:
                f.write(repr(sorted(c.items())) + "\n")
        if self.mode == "garbage":
            return b"\0" + bytes([len(rnd)]) + rnd + b"\x01\x50abc"
        if self.mode == "badrandom":
            return packet(0, bytes(len(rnd)), [(1, "x")])
        acct = c.get(CRED_ACCOUNT, b"").decode("latin-1")
        user = self.users.get(acct)
        env_secret = os.environ.get("CVM_LOOKUP_SECRET")
        if env_secret:
            # libcvm's lookup mode: credentials are not checked, the
            # SECRET must match
            if c.get(CRED_SECRET) != env_secret.encode():
                return packet(100, rnd, [])
        if env_secret is None and CRED_PASSWORD in c:
            ok = user is not None and c[CRED_PASSWORD] == user[1].encode()
        elif env_secret is None and CRED_CHALLENGE in c and CRED_RESPONSE in c:
            if c.get(CRED_RESPONSE_TYPE) != b"CRAM-MD5":
                return packet(7, rnd, [])
            ok = user is not None and hmac.compare_digest(
                hmac.new(user[1].encode(), c[CRED_CHALLENGE], hashlib.md5).digest(),
                c[CRED_RESPONSE])
        else:
            # lookup mode: no password, no challenge
            if self.secret is not None and c.get(CRED_SECRET) != self.secret.encode():
                return packet(100, rnd, [])
            dom = c.get(CRED_DOMAIN, b"").decode("latin-1")
            if self.domains is not None and dom not in self.domains:
                return packet(100, rnd, [(16, "1")])
            ok = user is not None
            if not ok:
                return packet(100, rnd, [(16, "0")])
        if not ok:
            return packet(100, rnd, [])
        facts = [(1, user[0]), (2, user[2]), (3, user[3]), (5, user[4])]
        if user[5]:
            facts.append((4, user[5]))
        if user[6]:
            facts.append((14, user[6]))
        if user[7]:
            facts.append((15, user[7]))
        if self.gids:
            facts.append((8, user[3]))   # (libcvm 0.97's client hangs on this fact)
        return packet(0, rnd, facts)


def hang_forever():
    while True:
        time.sleep(3600)


def serve_command(m):
    data = sys.stdin.buffer.read()
    if m.mode == "hang":
        hang_forever()
    if m.mode == "die":
        os.kill(os.getpid(), 9)
    reply = m.answer(data)
    sys.stdout.buffer.write(reply)
    sys.stdout.flush()
    if m.mode == "exit100":
        sys.exit(100)
    sys.exit(reply[0] if reply else 0)


def serve_local(m, path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    s.bind(path)
    s.listen(8)
    while True:
        conn, _ = s.accept()
        with conn:
            data = b""
            while True:
                b = conn.recv(1024)
                if not b:
                    break
                data += b
            if m.mode == "hang":
                time.sleep(3600)
                continue
            if m.mode == "die":
                continue
            conn.sendall(m.answer(data))


def serve_udp(m, host, port, drop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, int(port)))
    while True:
        data, addr = s.recvfrom(1024)
        if drop > 0:
            drop -= 1
            continue
        if m.mode in ("hang", "die"):
            continue
        s.sendto(m.answer(data), addr)


def main(argv):
    opts = {}
    args = []
    i = 0
    while i < len(argv):
        if argv[i].startswith("--"):
            opts[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            args.append(argv[i])
            i += 1
    m = Module(opts)
    if not args or args[0] == "command":
        serve_command(m)
    elif args[0] == "local":
        serve_local(m, args[1])
    elif args[0] == "udp":
        serve_udp(m, args[1], args[2], int(opts.get("drop", "0")))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
