"""The protovalidate rules declared in the protos fire on the generated messages."""

from __future__ import annotations

from typing import Any

import protovalidate
import pytest
from alea.files.v1 import files_pb2
from alea.identity.v1 import identity_pb2
from alea.notification.v1 import notification_pb2
from alea.simulation.v1 import model_spec_pb2, simulation_pb2
from google.api import httpbody_pb2
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

UUID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def violations(message: Message) -> dict[str, str]:
    """Field path (``a.b[0].c``) → rule id of every violated rule."""
    found = {}
    for violation in protovalidate.collect_violations(message):
        parts = []
        path = violation.proto.field
        for element in path.elements if path else ():
            index = element.subscript.value if element.subscript is not None else None
            parts.append(element.field_name + (f"[{index}]" if index is not None else ""))
        found[".".join(parts)] = violation.proto.rule_id
    return found


def register(**changes: str) -> identity_pb2.RegisterRequest:
    fields = {
        "tenant_display_name": "Acme Risk",
        "email": "ada@example.com",
        "password": "correct horse battery",
        "display_name": "Ada",
    }
    return identity_pb2.RegisterRequest(**(fields | changes))


def normal(mean: float, sd: float) -> model_spec_pb2.Distribution:
    return model_spec_pb2.Distribution(
        kind=model_spec_pb2.DISTRIBUTION_KIND_NORMAL, parameters=[mean, sd]
    )


def spec(**changes: Any) -> model_spec_pb2.ModelSpec:
    fields: dict[str, Any] = {
        "inputs": [model_spec_pb2.InputSpec(name="revenue", distribution=normal(100, 10))],
        "expressions": [model_spec_pb2.ExpressionSpec(name="profit", formula="revenue * 0.2")],
        "outputs": [model_spec_pb2.OutputSpec(name="Profit", expression="profit")],
    }
    return model_spec_pb2.ModelSpec(**(fields | changes))


def test_valid_requests_pass() -> None:
    assert violations(register()) == {}
    assert violations(simulation_pb2.CreateModelRequest(display_name="m", spec=spec())) == {}
    request = simulation_pb2.CreateSimulationRequest(model_id=UUID, trials=10**10)
    assert violations(request) == {}


@pytest.mark.parametrize(
    ("changes", "field", "rule_id"),
    [
        ({"email": ""}, "email", "string.email_empty"),
        ({"email": "not-an-address"}, "email", "string.email"),
        ({"password": "short"}, "password", "string.min_len"),
        ({"tenant_display_name": ""}, "tenant_display_name", "string.min_len"),
        ({"request_id": "42"}, "request_id", "string.uuid"),
    ],
)
def test_register_rules(changes: dict[str, str], field: str, rule_id: str) -> None:
    assert violations(register(**changes)) == {field: rule_id}


def test_trials_range_is_enforced() -> None:
    for trials in (0, 10**10 + 1):
        request = simulation_pb2.CreateSimulationRequest(model_id=UUID, trials=trials)
        assert violations(request) == {"trials": "int64.gte_lte"}


def test_model_source_is_required() -> None:
    assert violations(simulation_pb2.CreateModelRequest(display_name="m")) == {"source": "required"}


def test_model_spec_rules_name_the_nested_field() -> None:
    bad_input = model_spec_pb2.InputSpec(
        name="cost", distribution=normal(float("nan"), 1), truncate_min=5, truncate_max=1
    )
    correlation = model_spec_pb2.CorrelationSpec(
        name="c", inputs=["revenue", "cost"], matrix=[1, 0.5, 0.5]
    )
    model = spec(
        inputs=[*spec().inputs, bad_input],
        expressions=[model_spec_pb2.ExpressionSpec(name="revenue", formula="1")],
        correlations=[correlation],
    )

    assert violations(simulation_pb2.CreateModelRequest(display_name="m", spec=model)) == {
        "spec.inputs[1]": "input_spec.truncate_order",
        "spec.inputs[1].distribution.parameters[0]": "double.finite",
        "spec.correlations[0]": "correlation_spec.matrix_size",
    }


def test_upload_rules() -> None:
    too_big = files_pb2.UploadRequest(chunk=bytes(1024 * 1024 + 1))
    assert violations(too_big) == {"chunk": "bytes.max_len"}
    traversal = files_pb2.UploadRequest(metadata=files_pb2.FileMetadata(file_name="../a.xlsx"))
    assert violations(traversal) == {"metadata.file_name": "string.pattern"}
    body = files_pb2.UploadBodyRequest(
        file_name="a.csv", body=httpbody_pb2.HttpBody(content_type="text/csv", data=b"1")
    )
    assert violations(body) == {}
    assert violations(files_pb2.UploadBodyRequest(file_name="a.csv")) == {"body": "required"}


def test_webhook_url_must_be_http_or_https() -> None:
    """The contract takes either scheme; plain http only to an allowlisted address is the
    notification service's rule (tests/unit/notification/test_ssrf.py)."""
    other = notification_pb2.CreateWebhookRequest(url="ftp://hooks.example.com/alea")
    assert violations(other) == {"url": "string.pattern"}
    secure = notification_pb2.CreateWebhookRequest(url="https://hooks.example.com/alea")
    assert violations(secure) == {}


def test_an_updated_webhook_is_held_to_the_rules_of_a_new_one() -> None:
    """UpdateWebhook stored an unspecified or unknown event type and an over-long name, which
    CreateWebhook refuses; the fields left out of the mask stay empty and pass."""
    mask = field_mask_pb2.FieldMask(paths=["event_types", "display_name", "url"])
    update = notification_pb2.UpdateWebhookRequest(
        webhook=notification_pb2.Webhook(
            id=UUID, url="ftp://hooks.example.com", event_types=[0, 999], display_name="x" * 201
        ),
        update_mask=mask,
    )
    assert violations(update) == {
        "webhook.url": "string.pattern",
        "webhook.event_types[0]": "enum.not_in",
        "webhook.event_types[1]": "enum.defined_only",
        "webhook.display_name": "string.max_len",
    }
    state_only = notification_pb2.UpdateWebhookRequest(
        webhook=notification_pb2.Webhook(id=UUID, state=notification_pb2.Webhook.STATE_ACTIVE),
        update_mask=field_mask_pb2.FieldMask(paths=["state"]),
    )
    assert violations(state_only) == {}
