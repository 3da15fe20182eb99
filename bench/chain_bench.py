#!/usr/bin/env python3
"""Plugin-chain benchmark: a realistic policy chain, ours against the
reference, side by side (not a test; nothing is asserted).

Chain: `smtp echo counters mailrules patterns add-received accept` with the
same rules file, patterns file and limits for both implementations (the
echo back end, so the chain's cost is what is measured).  A tcpserver on
127.0.0.1 starts one mailfront per connection; bench/smtpload (compiled
and driven as in bench/run.py) runs concurrent pipelined sessions.  Runs
alternate ours/reference, ROUNDS times; the median messages/s of each and
the ratio are printed.  With valgrind, instructions per message of the
chain (callgrind, one session: (Ir of 41 messages - Ir of 1) / 40).
If plugin-mailrules.so or plugin-patterns.so is missing from our build,
that plugin is left out of both chains and the output says so.
Environment: BENCH_ROUNDS (3), BENCH_QUICK=1 for a short run."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (ROUNDS, SCALE, Table, base_env, build_load, callgrind, harness, impls,  # noqa: E402
                    print_instructions, session_bytes, smtpload)

# 40 sender rules and 40 recipient rules that do not match the load's
# addresses (every rule is evaluated), then one that does and continues.
RULES = ":sender\n" + "".join(f"d*@spam{i}.example:*:5.7.1 Go away\n" for i in range(40)) + \
        "n*@bench.example:::5000000::FROM_BENCH=1\n" + ":recipient\n" + \
        "".join(f"d*:*@blocked{i}.example:5.7.1 Not here\n" for i in range(40)) + \
        "n*:*@bench.example\n"
# 30 patterns that never match a line of the load's messages.
PATTERNS = "# bench patterns\n" + "".join(f" *viagra{i}*\n" for i in range(10)) + \
           "=Header not allowed\n" + "".join(f":X-Spam-{i}: *\n" for i in range(10)) + \
           "=Body starts badly\n" + "".join(f"\\BUY NOW {i}*\n" for i in range(10))


def chain():
    wanted = ["counters", "mailrules", "patterns", "add-received", "accept"]
    builtin = {"accept"}
    have, missing = [], []
    for p in wanted:
        if p in builtin or os.path.exists(os.path.join(harness.LIB, f"plugin-{p}.so")):
            have.append(p)
        else:
            missing.append(p)
    return have, missing


def env_for(impl, files):
    return base_env(impl, DATABYTES="10000000", MAXRCPTS="100", MAXHOPS="50", MAILRULES=files["rules"],
                    PATTERNS=files["patterns"])


def run_load(load, impl, plugins, files, size, conc, sessions, per):
    return smtpload(load, impl, ["echo"] + plugins, env_for(impl, files), size, conc, sessions, per)[0]


def instructions(impl, plugins, files, n, size):
    return callgrind(impl["argv"] + ["smtp", "echo"] + plugins, session_bytes(n, size), env_for(impl, files))


def main():
    load = build_load()
    tmp = tempfile.mkdtemp(prefix="mfchain.")
    files = {"rules": os.path.join(tmp, "rules"), "patterns": os.path.join(tmp, "patterns")}
    with open(files["rules"], "w") as f:
        f.write(RULES)
    with open(files["patterns"], "w") as f:
        f.write(PATTERNS)
    plugins, missing = chain()
    ims = impls()
    print(f"chain bench: smtp echo {' '.join(plugins)}")
    if missing:
        print(f"  NOTE: not built in ours, left out of both chains: {' '.join(missing)}")
    print(f"  {len(ims)} implementation(s), {ROUNDS} alternating rounds, median msgs/s")
    scenarios = [(1024, 8, int(400 * SCALE), 5), (64 * 1024, 4, int(100 * SCALE), 2)]
    table = Table(ims)
    for size, conc, sessions, per in scenarios:
        table.row(f"chain {size // 1024} KiB x{conc}",
                  lambda i: run_load(load, i, plugins, files, size, conc, sessions, per))
    if shutil.which("valgrind"):
        print("\ninstructions per 1 KiB message through the chain (callgrind, one session):")
        print_instructions(ims, lambda i, n: instructions(i, plugins, files, n, 1024), "callgrind failed")
    shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
