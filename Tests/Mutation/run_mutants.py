#!/usr/bin/env python3
"""Mutation campaign: does each test fail when the code it guards is wrong?

Clones this repository's HEAD into a temporary folder (the working tree is never touched), and for
each mutant of `mutants.py` applies its one edit, builds the tests, and runs the mutant's filter;
a mutant its filter lets through is run against the whole suite before it is called a survivor.
Prints one markdown row per mutant and a summary; exits 1 when a mutant that is not listed as
equivalent survives, or no longer applies (its line changed: update or drop it).

Not part of `make test` (the 236 mutants of stop 46 take about 110 minutes on 2 cores). Usage:

    python3 Tests/Mutation/run_mutants.py                 # every mutant
    python3 Tests/Mutation/run_mutants.py I4 R22 G7       # some
    python3 Tests/Mutation/run_mutants.py --keep DIR ...  # reuse the clone in DIR, moved to HEAD (faster builds)

Each test run is limited to 10 minutes: a mutant that removes a limit can start a run of hours
(stop 41 saw a full demo and a 22 GB probe); a timeout counts as killed.
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mutants import EQUIVALENT, M  # noqa: E402

TIMEOUT = "timeout -k 10 600"


def run(command, cwd):
    result = subprocess.run(command, shell=True, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace")
    return result.returncode, result.stdout


def failed_tests(output):
    names = set(re.findall(r"✘ Test (.*?) (?:recorded|failed)", output))
    return sorted(n for n in names if not n.startswith("run with"))


def test(clone, expression):
    """Runs `expression` (a --filter, or ALL); returns (killed, failing tests)."""
    command = f"{TIMEOUT} swift test --skip-build" + ("" if expression == "ALL" else f" --filter '{expression}'")
    status, output = run(command, clone)
    failing = failed_tests(output)
    if status == 124 or status == 137:
        return True, ["(timed out)"]
    return status != 0 or bool(failing), failing or ([f"(exit {status})"] if status else [])


def main(argv):
    keep = None
    if argv[:1] == ["--keep"]:
        keep, argv = argv[1], argv[2:]
    chosen = [m for m in M if not argv or m[0] in argv]
    unknown = set(argv) - {m[0] for m in M}
    if unknown:
        print(f"unknown mutants: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    repository = subprocess.check_output(["git", "rev-parse", "--show-toplevel"], text=True).strip()
    clone = keep or tempfile.mkdtemp(prefix="mutation-")
    if not os.path.exists(os.path.join(clone, ".git")):
        subprocess.check_call(["git", "clone", "-q", repository, clone])
    else:
        # A kept clone is moved to this repository's HEAD: otherwise it would test the commit it was
        # cloned at, and a test added since would not be there to kill its mutant.
        subprocess.check_call(["git", "-C", clone, "fetch", "-q", repository, "HEAD"])
        subprocess.check_call(["git", "-C", clone, "reset", "-q", "--hard", "FETCH_HEAD"])
    status, output = run("swift build --build-tests", clone)
    if status != 0:
        print(output[-3000:], file=sys.stderr)
        print(f"{clone}: the unmutated tests do not build", file=sys.stderr)
        return 2

    print("| id | file | mutation | result | failing tests |")
    print("| --- | --- | --- | --- | --- |")
    counts = {}
    for ident, path, old, new, expression, description in chosen:
        source_path = os.path.join(clone, path)
        original = open(source_path, encoding="utf-8").read()
        if original.count(old) != 1:
            result, failing = "no longer applies", []
        else:
            open(source_path, "w", encoding="utf-8").write(original.replace(old, new))
            try:
                status, output = run("swift build --build-tests", clone)
                if status != 0:
                    result, failing = "does not compile", []
                else:
                    killed, failing = test(clone, expression)
                    if not killed and expression != "ALL":
                        killed, failing = test(clone, "ALL")
                    result = "killed" if killed else ("equivalent" if ident in EQUIVALENT else "SURVIVED")
            finally:
                open(source_path, "w", encoding="utf-8").write(original)
        counts[result] = counts.get(result, 0) + 1
        print(f"| {ident} | `{path}` | {description} | {result} | {'; '.join(failing[:3])[:200]} |", flush=True)
    run("swift build --build-tests", clone)  # leave the clone built from unmutated sources
    print()
    print(", ".join(f"{n} {r}" for r, n in sorted(counts.items())) + f" (clone: {clone})")
    return 1 if counts.get("SURVIVED") or counts.get("no longer applies") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
