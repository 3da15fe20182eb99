#!/usr/bin/env python3
"""Run every test of mailfront and print `N passed, N failed` last.

Two kinds of tests:
  * C unit tests: every executable in $MF_BUILD/tests/. Each prints TAP-like
    lines `ok N - what` / `not ok N - what`; each such line counts as one
    test, and a crash or non-zero exit counts as one more failure.
  * Python tests: tests/test_*.py, standard unittest, run against the
    binaries in $MF_BUILD (never anything found on PATH).
Usage: MF_BUILD=/abs/build python3 tests/run.py [PATTERN...]
PATTERN selects Python test modules/classes/methods whose id contains it.
Python test modules run in parallel, each in its own process ($MF_JOBS at
a time, default: number of CPUs + 1); each module starts its servers once
(setUpClass), so modules must not share ports or files.
"""
import concurrent.futures
import re
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def run_unit(build, patterns):
    passed = failed = skipped = 0
    d = os.path.join(build, "tests")
    if not os.path.isdir(d):
        return 0, 0
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            continue
        if patterns and not any(p in name for p in patterns):
            continue
        try:
            p = subprocess.run([path], capture_output=True, timeout=120, text=True, errors="replace")
            out, rc = p.stdout, p.returncode
            err = p.stderr
        except subprocess.TimeoutExpired:
            out, rc, err = "", -1, "timeout"
        for line in out.splitlines():
            if line.startswith("ok ") and " # SKIP " in line:
                skipped += 1
                print(f"SKIP unit {name}: {line}")
            elif line.startswith("ok "):
                passed += 1
            elif line.startswith("not ok "):
                failed += 1
                print(f"FAIL unit {name}: {line}")
        if rc != 0:
            failed += 1
            print(f"FAIL unit {name}: exit status {rc}\n{err[-3000:]}")
    print(f"unit tests: {passed} passed, {failed} failed, {skipped} skipped")
    return passed, failed, skipped


class Counting(unittest.TextTestResult):
    pass


def matches(test, patterns):
    return not patterns or any(p in test.id() for p in patterns)


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def run_python(patterns, module=None):
    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern=(module + ".py") if module else "test_*.py", top_level_dir=HERE)
    selected = unittest.TestSuite([t for t in flatten(suite) if matches(t, patterns)])
    runner = unittest.TextTestRunner(verbosity=1 if not os.environ.get("MF_VERBOSE") else 2,
                                     stream=sys.stdout, resultclass=Counting)
    res = runner.run(selected)
    # subTest failures are reported per subtest: count each test once.
    failed_ids = {t.id().split(" ")[0] for t, _ in res.failures + res.errors}
    failed = len(failed_ids) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = res.testsRun - failed - skipped
    return passed, failed, skipped


BUILD_INDEPENDENT = "\nBUILD_INDEPENDENT = True\n"
SUMMARY = re.compile(r"^@@ (\d+) passed, (\d+) failed, (\d+) skipped$", re.M)


def run_one_module(module, patterns):
    """Child mode: run one module's tests, print a machine-readable summary."""
    pp, pf, ps = run_python(patterns, module)
    print(f"@@ {pp} passed, {pf} failed, {ps} skipped")
    return 0 if pf == 0 else 1


def run_python_parallel(patterns):
    modules = sorted(n[:-3] for n in os.listdir(HERE) if n.startswith("test_") and n.endswith(".py"))
    if os.environ.get("MF_SANITIZED"):
        # Modules that test the source tree, not the binaries of $MF_BUILD
        # (package build, man pages, install layout: they build their own),
        # run once, in the normal build's pass.
        once = [m for m in modules if BUILD_INDEPENDENT in open(os.path.join(HERE, m + ".py")).read()]
        for m in once:
            print(f"--- {m}: not run again for the sanitizer build (it does not use $MF_BUILD)")
        modules = [m for m in modules if m not in once]
    jobs = int(os.environ.get("MF_JOBS", "0") or 0) or (os.cpu_count() or 1) + 1
    deadline = int(os.environ.get("MF_MODULE_TIMEOUT", "1500"))

    def one(module):
        t0 = time.time()
        try:
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--module", module] + patterns,
                               capture_output=True, text=True, errors="replace", timeout=deadline)
            out = p.stdout + p.stderr
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or "") if isinstance(e.stdout, str) else ""
            return module, out + f"\nFAIL {module}: module timed out after {deadline}s", (0, 1, 0), time.time() - t0
        m = SUMMARY.search(p.stdout)
        counts = tuple(int(x) for x in m.groups()) if m else (0, 1, 0)
        if not m:
            out += f"\nFAIL {module}: no summary (exit status {p.returncode})"
        return module, out, counts, time.time() - t0

    tp = tf = ts = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for module, out, (p_, f_, s_), dt in pool.map(one, modules):
            if p_ + f_ + s_ == 0:
                continue
            print(f"--- {module}: {p_} passed, {f_} failed, {s_} skipped ({dt:.1f}s)")
            if f_:
                print(out[-20000:])
            tp, tf, ts = tp + p_, tf + f_, ts + s_
    return tp, tf, ts


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--module":
        return run_one_module(sys.argv[2], sys.argv[3:])
    build = os.environ.get("MF_BUILD")
    if not build or not os.path.isdir(build):
        print("MF_BUILD must name a build directory (run `make test`)")
        print("0 passed, 1 failed")
        return 1
    patterns = sys.argv[1:]
    t0 = time.time()
    up, uf, us = run_unit(build, patterns)
    pp, pf, ps = run_python_parallel(patterns)
    passed, failed, ps = up + pp, uf + pf, us + ps
    print(f"time: {time.time() - t0:.1f}s build: {build}")
    tail = f", {ps} skipped" if ps else ""
    print(f"{passed} passed, {failed} failed{tail}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
