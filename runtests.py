#!/usr/bin/env python
"""Run the test suite: ``python runtests.py [pytest args]``.

On SQLite by default; ``--postgres`` (or TRANSMISSIONS_TEST_DB=postgres) runs the same
suite on PostgreSQL, where the multi-process tests run too.
"""

import os
import sys

import pytest

if __name__ == "__main__":
    args = sys.argv[1:]
    for flag, db in (("--postgres", "postgres"), ("--mysql", "mysql")):
        if flag in args:
            args.remove(flag)
            os.environ["TRANSMISSIONS_TEST_DB"] = db
    if "--no-cov" in args:
        args.remove("--no-cov")
    else:
        # The floor only goes up.
        args = ["--cov=transmissions", "--cov-report=term-missing:skip-covered", "--cov-fail-under=95", *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(pytest.main(["-p", "no:cacheprovider", *args]))
