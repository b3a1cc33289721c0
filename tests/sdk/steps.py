"""The checks the Python SDK programs share: a failed step ends the program with status 1."""

import sys


def check(condition: object, what: str) -> None:
    if not condition:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)


def ok(step: str) -> None:
    print(f"ok: {step}")
