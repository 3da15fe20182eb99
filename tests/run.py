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
"""
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def run_unit(build, patterns):
    passed = failed = 0
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
            if line.startswith("ok "):
                passed += 1
            elif line.startswith("not ok "):
                failed += 1
                print(f"FAIL unit {name}: {line}")
        if rc != 0:
            failed += 1
            print(f"FAIL unit {name}: exit status {rc}\n{err[-3000:]}")
    print(f"unit tests: {passed} passed, {failed} failed")
    return passed, failed


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


def run_python(patterns):
    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
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


def main():
    build = os.environ.get("MF_BUILD")
    if not build or not os.path.isdir(build):
        print("MF_BUILD must name a build directory (run `make test`)")
        print("0 passed, 1 failed")
        return 1
    patterns = sys.argv[1:]
    t0 = time.time()
    up, uf = run_unit(build, patterns)
    pp, pf, ps = run_python(patterns)
    passed, failed = up + pp, uf + pf
    print(f"time: {time.time() - t0:.1f}s build: {build}")
    tail = f", {ps} skipped" if ps else ""
    print(f"{passed} passed, {failed} failed{tail}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
