"""Groups the failures of a schemathesis run by kind and shows one full example of each.

    python failures.py <events.ndjson> [--max-body N]

Reads the NDJSON event report of `schemathesis run` and prints, for each distinct
(operation, check, failure title, where in the response schema), how many test cases failed
that way and the first such test case: phase, request (method, URL, headers, body) and response
(status, headers, body). Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from collections import OrderedDict


def decode(content: object) -> str:
    """A recorded body: {"$base64": ...}, a string, or nothing."""
    if content is None:
        return ""
    if isinstance(content, dict) and "$base64" in content:
        raw = base64.b64decode(content["$base64"])
        return raw.decode("utf-8", errors="backslashreplace")
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False)


def clip(text: str, limit: int) -> str:
    if limit and len(text) > limit:
        return text[:limit] + f" ... [{len(text) - limit} more characters]"
    return text


def kind(failure: dict) -> tuple[str, str]:
    """What distinguishes one failure of a check from another of the same check: for a response
    schema violation the kind of violation (the values and types blanked out) and, apart, the
    schema location; for the other checks the first line of the message."""
    lines = (failure.get("message") or "").splitlines()
    first = lines[0] if lines else ""
    if failure.get("code") != "ST108":
        return first, ""
    at = next((l for l in lines if l.startswith("Schema at ")), "")
    at = at.removeprefix("Schema at ").rstrip(":")
    violation = re.sub(r'"(?:[^"\\]|\\.)*"', '"…"', first)
    violation = re.sub(r"^(?:null|true|false|-?[0-9][0-9.e+-]*|\[.*\]|\{.*\}) ", "<value> ", violation)
    return violation, at


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("events")
    parser.add_argument("--max-body", type=int, default=1500)
    args = parser.parse_args()

    groups: OrderedDict[tuple, dict] = OrderedDict()
    with open(args.events, encoding="utf-8") as fd:
        for line in fd:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished or finished.get("status") != "failure":
                continue
            recorder = finished["recorder"]
            for case_id, checks in recorder.get("checks", {}).items():
                for check in checks:
                    if check.get("status") != "failure":
                        continue
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    violation, at = kind(failure)
                    key = (
                        failure.get("operation") or recorder["label"],
                        check["name"],
                        failure.get("code", ""),
                        failure.get("title", ""),
                        violation,
                    )
                    group = groups.get(key)
                    if group is None:
                        group = groups[key] = {
                            "count": 0,
                            "locations": OrderedDict(),
                            "case_id": case_id,
                            "phase": finished.get("phase"),
                            "failure": failure,
                            "interaction": recorder.get("interactions", {}).get(case_id),
                            "case": (recorder.get("cases", {}).get(case_id) or {}).get("value", {}),
                        }
                    group["count"] += 1
                    if at:
                        group["locations"][at] = None

    if not groups:
        print("fuzz: no failures recorded")
        return 0
    total = sum(g["count"] for g in groups.values())
    print(f"fuzz: {len(groups)} kinds of failure ({total} failing checks); one example of each:")
    for number, (key, group) in enumerate(groups.items(), 1):
        operation, check, code, title, detail = key
        print()
        print(f"[{number}] {operation}: {check} {code} {title} x{group['count']}")
        if detail:
            print(f"    what: {detail}")
        if group["locations"]:
            locations = list(group["locations"])
            shown = ", ".join(loc.removeprefix("/components/schemas/") for loc in locations[:12])
            more = f" and {len(locations) - 12} more" if len(locations) > 12 else ""
            print(f"    where ({len(locations)}): {shown}{more}")
        meta = (group["case"].get("meta") or {}).get("phase") or {}
        scenario = (meta.get("data") or {}).get("description")
        print(f"    test case {group['case_id']}, phase {group['phase']}" + (f" ({scenario})" if scenario else ""))
        interaction = group["interaction"]
        if not interaction:
            continue
        request, response = interaction["request"], interaction.get("response")
        print(f"    request:  {request['method']} {request['uri']}")
        for name, values in (request.get("headers") or {}).items():
            for value in values:
                print(f"              {name}: {value!r}" if not value.isprintable() else f"              {name}: {value}")
        body = decode(request.get("body"))
        if body:
            print(f"              body: {clip(body, args.max_body)}")
        if response:
            print(f"    response: {response['status_code']}")
            for name, values in (response.get("headers") or {}).items():
                for value in values:
                    print(f"              {name}: {value}")
            body = decode(response.get("content"))
            if body:
                print(f"              body: {clip(body, args.max_body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
