"""A client team's first program with the SDK openapi-python-client makes from the served spec
(package `tmf635_opc`, on sys.path from the directory given):

    python openapi_python_client.py <generated-dir> <api-root> <bearer-token>

Creates, lists with a filter, retrieves, patches and deletes a usage, creates a usage
specification, registers and removes a hub subscription, each step checked (status and typed
body); exits 1 at the first step that does not hold.
"""

import datetime
import sys
import uuid
from http import HTTPStatus

sys.path.insert(0, sys.argv[1])

from tmf635_opc import AuthenticatedClient  # noqa: E402
from tmf635_opc.api.events_subscription import register_listener, unregister_listener  # noqa: E402
from tmf635_opc.api.usage import create_usage, delete_usage, list_usage, patch_usage, retrieve_usage  # noqa: E402
from tmf635_opc.api.usage_specification import create_usage_specification, retrieve_usage_specification  # noqa: E402
from tmf635_opc.models import (  # noqa: E402
    Error,
    EventSubscription,
    EventSubscriptionInput,
    RelatedParty,
    Usage,
    UsageCharacteristic,
    UsageCreate,
    UsageSpecification,
    UsageSpecificationCreate,
    UsageStatusType,
    UsageUpdate,
)

from steps import check, ok  # noqa: E402


def main() -> None:
    root, token = sys.argv[2], sys.argv[3]
    client = AuthenticatedClient(base_url=root, token=token, raise_on_unexpected_status=True)
    usage_type = f"SDK-OPC-{uuid.uuid4().hex[:12]}"

    answer = create_usage.sync_detailed(
        client=client,
        body=UsageCreate(
            description="made by openapi-python-client's SDK",
            usage_date=datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.timezone.utc),
            usage_type=usage_type,
            status=UsageStatusType.RECEIVED,
            usage_characteristic=[UsageCharacteristic(name="duration", value_type="integer", value=60)],
            related_party=[RelatedParty(id="sdk-party", role="customer", referred_type="Individual")],
        ),
    )
    created = answer.parsed
    check(answer.status_code == HTTPStatus.CREATED and isinstance(created, Usage), f"create: {answer.status_code} {answer.content!r}")
    check(created.href.endswith(f"/usage/{created.id}"), f"create: id and href {created.id} {created.href}")
    check(created.usage_type == usage_type and created.status == UsageStatusType.RECEIVED, f"create: {created}")
    check(created.usage_characteristic[0].value == 60, f"create: characteristic value {created.usage_characteristic}")
    ok("createUsage")

    listed = list_usage.sync(client=client, usage_type=usage_type, status="received,rated")
    check(isinstance(listed, list) and [u.id for u in listed] == [created.id], f"list usageType={usage_type}: {listed}")
    check(list_usage.sync(client=client, usage_type=usage_type, status="billed") == [], "list with status=billed is empty")
    ok("listUsage with a filter")

    read = retrieve_usage.sync(created.id, client=client)
    check(isinstance(read, Usage) and read.id == created.id and read.usage_type == usage_type, f"retrieve: {read}")
    ok("retrieveUsage")

    patched = patch_usage.sync(created.id, client=client, body=UsageUpdate(status=UsageStatusType.RATED, description="rated"))
    check(isinstance(patched, Usage) and patched.status == UsageStatusType.RATED and patched.description == "rated", f"patch: {patched}")
    check(retrieve_usage.sync(created.id, client=client).status == UsageStatusType.RATED, "patch is stored")
    ok("patchUsage")

    deleted = delete_usage.sync_detailed(created.id, client=client)
    check(deleted.status_code == HTTPStatus.NO_CONTENT, f"delete: {deleted.status_code} {deleted.content!r}")
    gone = retrieve_usage.sync_detailed(created.id, client=client)
    check(gone.status_code == HTTPStatus.NOT_FOUND and isinstance(gone.parsed, Error), f"retrieve after delete: {gone.status_code}")
    ok("deleteUsage (then 404)")

    name = f"SDK-OPC-spec-{uuid.uuid4().hex[:12]}"
    spec = create_usage_specification.sync(client=client, body=UsageSpecificationCreate(name=name, version="1.0"))
    check(isinstance(spec, UsageSpecification) and spec.name == name, f"create specification: {spec}")
    stored = retrieve_usage_specification.sync(spec.id, client=client)
    check(isinstance(stored, UsageSpecification) and stored.name == name, "specification is stored")
    ok("createUsageSpecification")

    callback = "http://127.0.0.1:9/sdk/openapi-python-client"
    subscription = register_listener.sync(client=client, body=EventSubscriptionInput(callback=callback, query="eventType=UsageCreateEvent"))
    check(isinstance(subscription, EventSubscription) and subscription.callback == callback, f"register: {subscription}")
    removed = unregister_listener.sync_detailed(subscription.id, client=client)
    check(removed.status_code == HTTPStatus.NO_CONTENT, f"unregister: {removed.status_code}")
    again = unregister_listener.sync_detailed(subscription.id, client=client)
    check(again.status_code == HTTPStatus.NOT_FOUND, f"second unregister: {again.status_code}")
    ok("registerListener, unregisterListener (then 404)")


if __name__ == "__main__":
    main()
