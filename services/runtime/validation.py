"""Request validation from the ``buf.validate`` rules declared in the protos."""

from __future__ import annotations

import protovalidate
from google.protobuf.message import Message

from services.runtime.errors import FieldViolation, InvalidArgument

__all__ = ["field_path", "validate"]

_validator = protovalidate.Validator()


def field_path(violation: protovalidate.Violation) -> str:
    """A dotted path such as ``user.preferences.locale`` or ``items[2].name``."""
    parts: list[str] = []
    path = violation.proto.field
    for element in path.elements if path is not None else ():
        part = element.field_name
        if element.subscript is not None:  # a protobuf-py Oneof: repeated index or map key
            part += f"[{element.subscript.value!r}]"
        parts.append(part)
    return ".".join(parts)


def validate(message: Message) -> None:
    """Raise InvalidArgument listing every violated rule (field path, description)."""
    violations = _validator.collect_violations(message)
    if violations:
        found: list[FieldViolation] = [
            (field_path(v) or message.DESCRIPTOR.name, v.proto.message or v.proto.rule_id)
            for v in violations
        ]
        raise InvalidArgument.of(found)
