"""Helpers for tests that run real processes."""

from __future__ import annotations


def unexpected_tracebacks(output: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """The last line of every traceback in ``output`` whose exception is not ``allowed``."""
    found = []
    for block in output.split("Traceback (most recent call last):")[1:]:
        last = next((line for line in block.splitlines()
                     if line and not line.startswith((" ", "\t", "Traceback"))), "")
        if not any(name in last for name in allowed):
            found.append(last)
    return found
