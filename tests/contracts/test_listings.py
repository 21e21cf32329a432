"""Every List RPC accepts exactly what its proto documents: the `filter` fields and the
`order_by` fields named in the request's comments, its default order, and its examples."""

from __future__ import annotations

import re

import pytest

from services.admin.store import AUDIT_EVENTS, SETTING_CHANGES
from services.files.store import FILES
from services.identity.store import API_KEYS, USERS
from services.notification.store import DELIVERIES, WEBHOOKS
from services.runtime.errors import InvalidArgument
from services.runtime.listing import Listing, ListRequest
from services.simulation.store import MODELS, SIMULATIONS
from tests.contracts.protos import descriptor_set

LISTINGS = {
    "alea.identity.v1.ListUsersRequest": USERS,
    "alea.identity.v1.ListApiKeysRequest": API_KEYS,
    "alea.files.v1.ListFilesRequest": FILES,
    "alea.simulation.v1.ListModelsRequest": MODELS,
    "alea.simulation.v1.ListSimulationsRequest": SIMULATIONS,
    "alea.notification.v1.ListWebhooksRequest": WEBHOOKS,
    "alea.notification.v1.ListDeliveriesRequest": DELIVERIES,
    "alea.admin.v1.ListAuditEventsRequest": AUDIT_EVENTS,
    "alea.admin.v1.ListSettingChangesRequest": SETTING_CHANGES,
}
# Settings are the schema's, not rows: ListSettings filters them in memory (its own test).
IN_MEMORY = {"alea.admin.v1.ListSettingsRequest"}


def _comments() -> dict[str, dict[str, str]]:
    """Leading comment of each field, by request message and field name."""
    found: dict[str, dict[str, str]] = {}
    for file in descriptor_set().file:
        if not file.package.startswith("alea."):
            continue
        for location in file.source_code_info.location:
            path = list(location.path)
            if len(path) == 4 and path[0] == 4 and path[2] == 2:  # message_type[i].field[j]
                message = file.message_type[path[1]]
                name = f"{file.package}.{message.name}"
                field = message.field[path[3]].name
                found.setdefault(name, {})[field] = " ".join(location.leading_comments.split())
    return found


COMMENTS = _comments()


def _documented(comment: str) -> tuple[set[str], list[str], str]:
    """(field names before "e.g.", the examples after it, the default order if stated)."""
    names, _, rest = comment.partition("e.g.")
    examples = re.findall(r"`([^`]*)`", rest.split("; default")[0])
    default = re.search(r"default `([^`]*)`", comment)
    return set(re.findall(r"`([^`]*)`", names)), examples, default.group(1) if default else ""


def test_every_list_request_in_the_contracts_has_a_listing() -> None:
    listed = {
        name
        for name, fields in COMMENTS.items()
        if {"filter", "order_by", "page_token"} <= set(fields)
        and name.split(".")[1] in ("identity", "files", "simulation", "notification", "admin")
        and name not in IN_MEMORY
    }
    assert listed == set(LISTINGS)


@pytest.mark.parametrize("message", sorted(LISTINGS))
def test_filter_takes_exactly_the_documented_fields(message: str) -> None:
    fields, examples, _ = _documented(COMMENTS[message]["filter"])
    listing = LISTINGS[message]
    assert set(listing.fields) == fields
    assert examples
    for example in examples:
        listing.query(ListRequest(filter=example))  # the proto's own example is accepted


@pytest.mark.parametrize("message", sorted(LISTINGS))
def test_order_by_takes_exactly_the_documented_fields(message: str) -> None:
    fields, examples, default = _documented(COMMENTS[message]["order_by"])
    listing = LISTINGS[message]
    assert {name for name, f in listing.fields.items() if f.sortable} == fields - {"desc"}
    assert listing.default_order == default
    assert examples
    for example in [*examples, default, *(f"{name} desc" for name in fields - {"desc"})]:
        listing.query(ListRequest(order_by=example))


@pytest.mark.parametrize("message", sorted(LISTINGS))
def test_undocumented_fields_are_refused(message: str) -> None:
    listing: Listing = LISTINGS[message]
    for text, field in (("id = 1", "filter"), ("tenant_id = x", "filter")):
        with pytest.raises(InvalidArgument) as raised:
            listing.query(ListRequest(filter=text))
        assert raised.value.violations[0][0] == field
    with pytest.raises(InvalidArgument) as raised:
        listing.query(ListRequest(order_by="tenant_id"))
    assert raised.value.violations[0][0] == "order_by"
