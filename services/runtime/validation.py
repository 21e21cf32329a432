"""Request validation from the ``buf.validate`` rules declared in the protos."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import protovalidate
from google.protobuf import empty_pb2, unknown_fields
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from services.runtime.errors import FieldViolation, InvalidArgument

__all__ = ["Refused", "Undecodable", "field_path", "tolerant", "validate"]

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


def validate(message: Message | Undecodable | Refused) -> None:
    """Raise InvalidArgument listing every violated rule (field path, description)."""
    if isinstance(message, (Undecodable, Refused)):
        raise message.error()
    violations = _validator.collect_violations(message)
    found: list[FieldViolation] = [
        (field_path(v) or message.DESCRIPTOR.name, v.proto.message or v.proto.rule_id)
        for v in violations
    ]
    if _holds_time(message.DESCRIPTOR):
        found.extend(_time_violations(message))
    if found:
        raise InvalidArgument.of(found)


# The ranges protobuf's JSON mapping defines (years 0001 to 9999; ±10,000 years): beyond
# them a Timestamp or Duration has no date, and converting it raises in every handler.
_TIME_RANGES = {
    "google.protobuf.Timestamp": ((-62_135_596_800, 253_402_300_799), (0, 999_999_999)),
    "google.protobuf.Duration": ((-315_576_000_000, 315_576_000_000), (-999_999_999, 999_999_999)),
}


@cache
def _holds_time(descriptor: Descriptor) -> bool:
    """Whether a Timestamp or Duration can occur anywhere inside messages of this type."""
    seen: set[str] = set()
    pending = [descriptor]
    while pending:
        current = pending.pop()
        if current.full_name in _TIME_RANGES:
            return True
        if current.full_name in seen:
            continue
        seen.add(current.full_name)
        pending.extend(f.message_type for f in current.fields if f.message_type is not None)
    return False


def _time_violations(message: Message, prefix: str = "") -> Iterator[FieldViolation]:
    """Every Timestamp or Duration set in ``message`` outside protobuf's defined range."""
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None or not _holds_time(kind):
            continue
        if kind.GetOptions().map_entry:
            entries = [(f"{field.name}[{key!r}]", item) for key, item in value.items()]
        elif field.is_repeated:
            entries = [(f"{field.name}[{i}]", item) for i, item in enumerate(value)]
        else:
            entries = [(field.name, value)]
        for name, item in entries:
            if not isinstance(item, Message):  # a map of scalars
                continue
            path = prefix + name
            bounds = _TIME_RANGES.get(item.DESCRIPTOR.full_name)
            if bounds is None:
                yield from _time_violations(item, path + ".")
                continue
            (low, high), (nanos_low, nanos_high) = bounds
            seconds, nanos = item.seconds, item.nanos  # type: ignore[attr-defined]
            if not (low <= seconds <= high and nanos_low <= nanos <= nanos_high):
                yield path, f"is outside the range protobuf defines for a {item.DESCRIPTOR.name}"


class Undecodable:
    """Stands in for a request whose bytes do not parse as its message type.

    gRPC parses a request before any interceptor runs, and a parser's exception would reach
    the client as UNKNOWN with Python's words in it; the runtime's deserializers return this
    instead, and :func:`validate` turns it into INVALID_ARGUMENT once the caller is admitted.
    """

    def __init__(self, descriptor: Descriptor | None, data: bytes) -> None:
        self.descriptor, self.data = descriptor, data

    def error(self) -> InvalidArgument:
        """INVALID_ARGUMENT naming the string field with invalid UTF-8, or the whole message."""
        name = self.descriptor.name if self.descriptor else "request"
        field = _bad_utf8_field(self.descriptor, self.data) if self.descriptor else None
        if field:
            return InvalidArgument(field, "is not valid UTF-8")
        return InvalidArgument(name, f"the request bytes are not a valid {name} message")


def _bad_utf8_field(descriptor: Descriptor, data: bytes, prefix: str = "") -> str | None:
    """The path of the first string field (nested messages too) whose bytes are not UTF-8."""
    try:
        fields = unknown_fields.UnknownFieldSet(empty_pb2.Empty.FromString(data))
    except DecodeError:
        return None
    for raw in fields:  # type: ignore[attr-defined]
        field = descriptor.fields_by_number.get(raw.field_number)
        if field is None or raw.wire_type != 2:  # only length-delimited values can be strings
            continue
        if field.type == FieldDescriptor.TYPE_STRING:
            try:
                raw.data.decode("utf-8")
            except UnicodeDecodeError:
                return f"{prefix}{field.name}"
        elif field.message_type is not None:
            found = _bad_utf8_field(field.message_type, raw.data, f"{prefix}{field.name}.")
            if found:
                return found
    return None


class Refused:
    """Stands in for a request that parsed but holds what no handler may receive (see
    :func:`tolerant`); :func:`validate` raises its error once the caller is admitted."""

    def __init__(self, error: InvalidArgument) -> None:
        self._error = error

    def error(self) -> InvalidArgument:
        return self._error


def _nul_field(message: Message, prefix: str = "") -> str | None:
    """The path of the first string (a map key too) holding U+0000, nested messages too."""
    for field, value in message.ListFields():
        path = prefix + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            texts = enumerate(value) if field.is_repeated else [(None, value)]
            for i, text in texts:
                if "\x00" in text:
                    return path if i is None else f"{path}[{i}]"
        elif field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                items = [(f"{path}[{key!r}]", key, item) for key, item in value.items()]
            elif field.is_repeated:
                items = [(f"{path}[{i}]", None, item) for i, item in enumerate(value)]
            else:
                items = [(path, None, value)]
            for item_path, key, item in items:
                if isinstance(key, str) and "\x00" in key:
                    return path
                if isinstance(item, str) and "\x00" in item:
                    return item_path
                if isinstance(item, Message) and (found := _nul_field(item, item_path + ".")):
                    return found
    return None


def tolerant(deserializer: Callable[[bytes], Message] | None) -> Callable[[bytes], Any] | None:
    """``deserializer`` returning :class:`Undecodable` for bytes it cannot parse, and
    :class:`Refused` for a request with a NUL character in a string: PostgreSQL's text
    cannot hold one (the write would fail as INTERNAL), and no name, filter or id needs it.
    Only a request whose bytes hold a zero byte is searched for one."""
    if deserializer is None:
        return None
    message_type = getattr(deserializer, "__self__", None)  # Message.FromString is bound
    descriptor = getattr(message_type, "DESCRIPTOR", None)

    def parse(data: bytes) -> Any:
        try:
            message = deserializer(data)
        except DecodeError:
            return Undecodable(descriptor, data)
        if b"\x00" in data and (field := _nul_field(message)):
            return Refused(InvalidArgument(field, "must not contain NUL (U+0000) characters"))
        return message

    return parse
