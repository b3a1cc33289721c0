"""A client team's first program with the SDK openapi-generator's `python` generator makes from
the served spec (package `tmf635_ogpy`, on sys.path from the directory given):

    python openapi_generator_python.py <generated-dir> <api-root> <bearer-token>

Creates, lists with a filter, retrieves, patches and deletes a usage, creates a usage
specification, registers and removes a hub subscription, each step checked; exits 1 at the
first step that does not hold.
"""

import sys
import uuid
from datetime import datetime, timezone

sys.path.insert(0, sys.argv[1])

from tmf635_ogpy import ApiClient, Configuration  # noqa: E402
from tmf635_ogpy.api.events_subscription_api import EventsSubscriptionApi  # noqa: E402
from tmf635_ogpy.api.usage_api import UsageApi  # noqa: E402
from tmf635_ogpy.api.usage_specification_api import UsageSpecificationApi  # noqa: E402
from tmf635_ogpy.exceptions import NotFoundException  # noqa: E402
from tmf635_ogpy.models import (  # noqa: E402
    EventSubscriptionInput,
    RelatedParty,
    UsageCharacteristic,
    UsageCreate,
    UsageSpecificationCreate,
    UsageStatusType,
    UsageUpdate,
)

from steps import check, ok  # noqa: E402


def not_found(call) -> bool:
    """Whether the call failed with 404 (the SDK raises NotFoundException for it)."""
    try:
        call()
    except NotFoundException:
        return True
    return False


def main() -> None:
    root, token = sys.argv[2], sys.argv[3]
    client = ApiClient(Configuration(host=root, access_token=token))
    usages, specs, hub = UsageApi(client), UsageSpecificationApi(client), EventsSubscriptionApi(client)
    usage_type = f"SDK-OG-PY-{uuid.uuid4().hex[:12]}"

    created = usages.create_usage(
        UsageCreate(
            description="made by openapi-generator's python SDK",
            usage_date=datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc),
            usage_type=usage_type,
            status=UsageStatusType.RECEIVED,
            usage_characteristic=[UsageCharacteristic(name="duration", value_type="integer", value=60)],
            related_party=[RelatedParty(id="sdk-party", role="customer", referred_type="Individual")],
        )
    )
    check(created.id and created.href and created.href.endswith(f"/usage/{created.id}"), f"create: id and href {created.id} {created.href}")
    check(created.usage_type == usage_type and created.status == UsageStatusType.RECEIVED, f"create: echoes type and status: {created}")
    check(created.usage_characteristic and created.usage_characteristic[0].value == 60, f"create: characteristic value: {created.usage_characteristic}")
    ok("createUsage")

    listed = usages.list_usage(usage_type=usage_type, status="received,rated")
    check([u.id for u in listed] == [created.id], f"list usageType={usage_type}: {[u.id for u in listed]}")
    check(usages.list_usage(usage_type=usage_type, status="billed") == [], "list with status=billed is empty")
    ok("listUsage with a filter")

    read = usages.retrieve_usage(created.id)
    check(read.id == created.id and read.usage_type == usage_type, f"retrieve: {read}")
    ok("retrieveUsage")

    patched = usages.patch_usage(created.id, UsageUpdate(status=UsageStatusType.RATED, description="rated"))
    check(patched.status == UsageStatusType.RATED and patched.description == "rated", f"patch: {patched}")
    check(usages.retrieve_usage(created.id).status == UsageStatusType.RATED, "patch is stored")
    ok("patchUsage")

    usages.delete_usage(created.id)
    check(not_found(lambda: usages.retrieve_usage(created.id)), "retrieve after delete answered a usage")
    ok("deleteUsage (then 404)")

    name = f"SDK-OG-PY-spec-{uuid.uuid4().hex[:12]}"
    spec = specs.create_usage_specification(UsageSpecificationCreate(name=name, version="1.0"))
    check(spec.id and spec.name == name, f"create specification: {spec}")
    check(specs.retrieve_usage_specification(spec.id).name == name, "specification is stored")
    ok("createUsageSpecification")

    callback = "http://127.0.0.1:9/sdk/openapi-generator-python"
    subscription = hub.register_listener(EventSubscriptionInput(callback=callback, query="eventType=UsageCreateEvent"))
    check(subscription.id and subscription.callback == callback, f"register: {subscription}")
    hub.unregister_listener(subscription.id)
    check(not_found(lambda: hub.unregister_listener(subscription.id)), "a second unregister succeeded")
    ok("registerListener, unregisterListener (then 404)")


if __name__ == "__main__":
    main()
