#!/usr/bin/env python3
"""A qmail-queue stand-in for the tests.

Reads the message from fd 0 and the envelope from fd 1 exactly as
qmail-queue does, checks the envelope's format (F addr NUL, T addr NUL...,
NUL), writes both to $QQ_OUT.msg / $QQ_OUT.env and exits with $QQ_EXIT
(default 0; 91 when the envelope is malformed).  $QQ_ENVDUMP names a file
that receives the environment it was started with."""
import os
import sys


def read_all(fd):
    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


msg = read_all(0)
env = read_all(1)
out = os.environ.get("QQ_OUT")
if out:
    with open(out + ".msg", "wb") as f:
        f.write(msg)
    with open(out + ".env", "wb") as f:
        f.write(env)
if os.environ.get("QQ_ENVDUMP"):
    with open(os.environ["QQ_ENVDUMP"], "w") as f:
        for k, v in sorted(os.environ.items()):
            f.write(f"{k}={v}\n")
ok = env.startswith(b"F") and env.endswith(b"\0\0")
if ok:
    parts = env[:-1].split(b"\0")[:-1]
    ok = parts[0].startswith(b"F") and all(p.startswith(b"T") for p in parts[1:]) and len(parts) > 1
sys.exit(int(os.environ.get("QQ_EXIT", "0")) if ok else 91)
