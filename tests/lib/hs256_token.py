#!/usr/bin/env python3
"""Prints an HS256 JWT for the conformance and UI runs with authentication on.

    tests/lib/hs256_token.py SECRET "usage.read usage.write ..." [SECONDS [CLAIM=VALUE ...]]

CLAIM=VALUE adds a string claim, e.g. the tenant claim of a server with tenancy on.

Standard library only (hmac, hashlib), so CI needs nothing installed for it.
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def part(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


secret, scopes = sys.argv[1], sys.argv[2]
lifetime = int(sys.argv[3]) if len(sys.argv) > 3 else 3600
header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
claims = {"sub": "ci", "exp": int(time.time()) + lifetime, "scope": scopes}
for extra in sys.argv[4:]:
    name, _, value = extra.partition("=")
    claims[name] = value
claims = part(json.dumps(claims).encode())
signature = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
print(f"{header}.{claims}.{part(signature)}")
