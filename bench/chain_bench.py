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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as benchrun  # noqa: E402  (build_load, session_bytes, impls)
harness = benchrun.harness

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
QUICK = bool(os.environ.get("BENCH_QUICK"))

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
    env = {"PATH": "/usr/bin:/bin", "TCPLOCALHOST": "bench.example", "DATABYTES": "10000000",
           "MAXRCPTS": "100", "MAXHOPS": "50", "MAILRULES": files["rules"], "PATTERNS": files["patterns"]}
    env.update(impl["env"])
    return env


def run_load(load, impl, plugins, files, size, conc, sessions, per):
    port = harness.free_port()
    argv = impl["argv"] + ["smtp", "echo"] + plugins
    with harness.tcpserver(argv, env=env_for(impl, files), port=port, limit=conc + 4):
        out = subprocess.run([load, str(port), str(conc), str(sessions), str(per), str(size)],
                             capture_output=True, text=True, timeout=600)
    m = re.search(r"msgs_per_sec=([\d.]+) failures=(\d+)", out.stdout)
    if not m or out.returncode != 0:
        raise RuntimeError(f"load failed for {impl['name']}: {out.stdout} {out.stderr}")
    return float(m.group(1))


def instructions(impl, plugins, files, n, size):
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + impl["argv"]
                       + ["smtp", "echo"] + plugins, input=benchrun.session_bytes(n, size),
                       env=env_for(impl, files), capture_output=True, timeout=600)
    m = re.search(rb"Collected : (\d+)", p.stderr)
    return int(m.group(1)) if m else None


def main():
    load = benchrun.build_load()
    tmp = tempfile.mkdtemp(prefix="mfchain.")
    files = {"rules": os.path.join(tmp, "rules"), "patterns": os.path.join(tmp, "patterns")}
    with open(files["rules"], "w") as f:
        f.write(RULES)
    with open(files["patterns"], "w") as f:
        f.write(PATTERNS)
    plugins, missing = chain()
    ims = benchrun.impls()
    print(f"chain bench: smtp echo {' '.join(plugins)}")
    if missing:
        print(f"  NOTE: not built in ours, left out of both chains: {' '.join(missing)}")
    print(f"  {len(ims)} implementation(s), {ROUNDS} alternating rounds, median msgs/s")
    scale = 0.25 if QUICK else 1.0
    scenarios = [(1024, 8, int(400 * scale), 5), (64 * 1024, 4, int(100 * scale), 2)]
    print(f"{'scenario':<22}" + "".join(f"{i['name']:>14}" for i in ims) + ("   ratio" if len(ims) > 1 else ""))
    for size, conc, sessions, per in scenarios:
        res = {i["name"]: [] for i in ims}
        for _ in range(ROUNDS):
            for i in ims:
                res[i["name"]].append(run_load(load, i, plugins, files, size, conc, sessions, per))
        med = {k: statistics.median(v) for k, v in res.items()}
        line = f"{f'chain {size // 1024} KiB x{conc}':<22}" + "".join(f"{med[i['name']]:>14.1f}" for i in ims)
        if len(ims) > 1:
            line += f"   {med['ours'] / med['reference']:.2f}x"
        print(line, flush=True)
    if shutil.which("valgrind"):
        print("\ninstructions per 1 KiB message through the chain (callgrind, one session):")
        for i in ims:
            a, b = instructions(i, plugins, files, 1, 1024), instructions(i, plugins, files, 41, 1024)
            if a is None or b is None:
                print(f"  {i['name']}: callgrind failed")
                continue
            print(f"  {i['name']:<10} start-up+1 msg: {a:>10}   per message: {(b - a) / 40:>10.0f}")
    shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
