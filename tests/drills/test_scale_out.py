"""Scale out across hosts: network namespaces standing in for machines.

This test re-runs ``tests/drills/scale_out_inner.py`` (the drill itself, see its docstring)
under ``unshare --net --mount --pid --fork`` as root: nothing can leave the machine, and every
process, mount and namespace of the drill ends with that namespace even if the drill fails.
It passes when every inner test passes. Runs on the PostgreSQL + Redis CI run; skipped on the
SQLite run like the other drills; in CI on the PostgreSQL run it fails rather than skip.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.drills import netlab

INNER = Path(__file__).with_name("scale_out_inner.py")
INNER_TESTS = 6


def test_scale_out_across_hosts() -> None:
    """Run the inner tests in their own network namespace; all must pass."""
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("the scale-out drill runs on the PostgreSQL + Redis run")
    reason = netlab.missing_tools()
    if reason and os.environ.get("CI"):
        pytest.fail(f"the scale-out drill must run in CI: {reason}")
    if reason:
        pytest.skip(reason)
    done = netlab.reexec_inside(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-x",
         "-o", "addopts=", str(INNER)], timeout=330)
    output = done.stdout + done.stderr
    print(output[-6000:])
    assert done.returncode == 0, output[-20000:]
    assert f"{INNER_TESTS} passed" in output, output[-5000:]
