#!/usr/bin/env python3
"""TLS cost of the SMTP front end: messages/s and sessions/s with TLS off,
STARTTLS and $TLS_IMMEDIATE (SMTPS), over tcpserver on 127.0.0.1.

Not a test (no assertions on speed).  bench/smtpload.c has no TLS mode, so
a small Python client (ssl module, threads) drives the sessions; the same
client is used for every mode, so the figures compare the modes with each
other (the client's own cost is included in all of them).  The reference
2.12 has no built-in TLS, so there is nothing to put beside it.

Scenarios: "bulk" = few sessions with many pipelined-free messages each
(record encryption cost), "connect" = one message per session (handshake
cost).  Environment: BENCH_ROUNDS (3), BENCH_QUICK=1 for a short run,
MF_BUILD (default build/)."""
import concurrent.futures
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import harness  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
QUICK = bool(os.environ.get("BENCH_QUICK"))
CONCURRENCY = 4
BODY = b"Subject: bench\r\n\r\n" + (b"x" * 70 + b"\r\n") * 14     # about 1 KiB


class Client:
    def __init__(self, port, mode, ctx):
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        # like an MTA: no Nagle delay of a small record behind the unacked Finished
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname="mx.test") if mode == "immediate" else raw
        self.buf = b""
        self.reply("220")
        self.cmd(b"EHLO bench.example", "250")
        if mode == "starttls":
            self.cmd(b"STARTTLS", "220")
            self.sock = ctx.wrap_socket(self.sock, server_hostname="mx.test")
            self.cmd(b"EHLO bench.example", "250")

    def reply(self, code):
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("server closed")
                self.buf += chunk
            line, _, self.buf = self.buf.partition(b"\n")
            if line[3:4] != b"-":
                if not line.startswith(code.encode()):
                    raise RuntimeError(f"expected {code}, got {line!r}")
                return

    def cmd(self, line, code):
        self.sock.sendall(line + b"\r\n")
        self.reply(code)

    def message(self):
        self.cmd(b"MAIL FROM:<a@b.example>", "250")
        self.cmd(b"RCPT TO:<c@d.example>", "250")
        self.cmd(b"DATA", "354")
        self.sock.sendall(BODY + b".\r\n")
        self.reply("250")

    def quit(self):
        self.cmd(b"QUIT", "221")
        self.sock.close()


def session(port, mode, ctx, msgs):
    c = Client(port, mode, ctx)
    for _ in range(msgs):
        c.message()
    c.quit()
    return msgs


def run_mode(port, mode, ctx, sessions, msgs):
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as ex:
        done = sum(ex.map(lambda _: session(port, mode, ctx, msgs), range(sessions)))
    secs = time.monotonic() - start
    return done / secs, sessions / secs


def main():
    if not shutil.which("tcpserver") or not shutil.which("openssl"):
        print("tls_bench: needs tcpserver and openssl")
        return 0
    tmp = tempfile.mkdtemp(prefix="mftlsbench.")
    try:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=mx.test",
                        "-addext", "subjectAltName=DNS:mx.test"], check=True, capture_output=True)
        ctx = ssl.create_default_context(cafile=cert)
        scen = [("bulk", 4 if QUICK else 8, 25 if QUICK else 100), ("connect", 40 if QUICK else 200, 1)]
        rounds = 1 if QUICK else ROUNDS
        print(f"mailfront SMTP TLS bench: echo back end, ~1 KiB messages, {CONCURRENCY} concurrent clients, "
              f"median of {rounds}")
        print(f"{'scenario':10} {'mode':10} {'msgs/s':>10} {'sessions/s':>11}")
        for name, sessions, msgs in scen:
            for mode in ("plain", "starttls", "immediate"):
                env = harness.base_env(TLS_CERTFILE=cert, TLS_KEYFILE=key, TCPLOCALHOST="mx.test")
                if mode == "plain":
                    env.pop("TLS_CERTFILE")
                if mode == "immediate":
                    env["TLS_IMMEDIATE"] = "1"
                res = []
                with harness.tcpserver([harness.bin_path("mailfront"), "smtp", "echo", "accept"], env=env,
                                       limit=CONCURRENCY + 2) as (port, _):
                    for _ in range(rounds):
                        res.append(run_mode(port, mode, ctx, sessions, msgs))
                m = statistics.median(r[0] for r in res)
                s = statistics.median(r[1] for r in res)
                print(f"{name:10} {mode:10} {m:10.1f} {s:11.1f}")
    finally:
        shutil.rmtree(tmp, True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
