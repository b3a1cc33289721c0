"""Schemathesis hooks of the fuzz run (loaded by `hooks` in its configuration): the PATCH rules
the request schemas cannot state.

- A JSON Merge Patch (RFC 7396) is partial at every depth (a nested object merges into the
  stored one, so its required attributes may be left out) and a null removes what it names, so
  most bodies that break `Usage_Update` (the schema as the standard writes it) by a missing or
  null attribute are patches the server rightly applies; the result is checked as a whole
  (400). Merge patches generated to break the schema are left out; those generated to fit it
  run.
- A JSON Patch operation (RFC 6902) needs `value` for add, replace and test and `from` for move
  and copy, which one `JsonPatchOperation` schema without composition cannot say; generated
  patches lacking them are left out (the server answers 400, rightly).
"""

import schemathesis

MERGE_PATCH = ("application/merge-patch+json", "application/json")
JSON_PATCH = "application/json-patch+json"
NEEDS = {"add": "value", "replace": "value", "test": "value", "move": "from", "copy": "from"}


def _body_is_negative(case) -> bool:
    components = getattr(getattr(case, "meta", None), "components", None) or {}
    for location, info in components.items():
        if str(getattr(location, "value", location)) == "body":
            mode = getattr(info, "mode", None)
            return str(getattr(mode, "value", mode)) == "negative"
    return False


@schemathesis.hook
def filter_case(context, case) -> bool:
    if str(case.method).upper() != "PATCH":
        return True
    media_type = (case.media_type or "").split(";")[0].strip().lower()
    if media_type in MERGE_PATCH:
        return not _body_is_negative(case)
    if media_type == JSON_PATCH and isinstance(case.body, list):
        return all(_has_what_its_op_needs(op) for op in case.body)
    return True


def _has_what_its_op_needs(operation: object) -> bool:
    if not isinstance(operation, dict) or not isinstance(operation.get("op"), str):
        return True
    needed = NEEDS.get(operation["op"])
    return needed is None or needed in operation
