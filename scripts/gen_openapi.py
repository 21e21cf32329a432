"""The OpenAPI 3.0 document of Alea's REST API, generated from the contracts' descriptor set.

Called by ``scripts/gen_protos.py`` (``gen/openapi/alea.json``); the edge serves it at
``GET /openapi.json``. It describes what Envoy's gRPC-JSON transcoder does with the
``google.api.http`` rules, in the conventions of grpc-gateway's ``protoc-gen-openapiv2``:

- one operation per binding (additional bindings included) of every RPC that is not
  ``internal``; tags are the proto services, summaries and descriptions their comments;
- path variables are the request fields they bind; the body is the request (``body: "*"``,
  minus path fields) or one field of it; the remaining fields of a body-less request are
  query parameters (JSON names, nested messages as dotted names);
- messages in the proto3 JSON mapping: JSON field names, 64-bit integers as decimal strings,
  enums by name, bytes as base64, well-known types as their JSON forms; protovalidate rules
  become constraints (lengths, UUID and e-mail formats, patterns, bounds, required);
- responses: the message, NDJSON (``application/x-ndjson``, one message a line) or
  Server-Sent Events for server streams, raw bytes for ``google.api.HttpBody``; every error
  is a ``google.rpc.Status`` (with ``BadRequest`` naming the field for bad input);
- security: a bearer access token or an ``x-api-key`` header, except for public RPCs.
"""

from __future__ import annotations

import json
from typing import Any

from alea.access.v1 import access_pb2
from buf.validate import validate_pb2
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

FD = descriptor_pb2.FieldDescriptorProto
Schema = dict[str, Any]

_INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"}
_UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"}
_SCALARS: dict[int, Schema] = {
    FD.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FD.TYPE_FLOAT: {"type": "number", "format": "float"},
    FD.TYPE_INT32: {"type": "integer", "format": "int32"},
    FD.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FD.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FD.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    FD.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    FD.TYPE_INT64: _INT64,
    FD.TYPE_SINT64: _INT64,
    FD.TYPE_SFIXED64: _INT64,
    FD.TYPE_UINT64: _UINT64,
    FD.TYPE_FIXED64: _UINT64,
    FD.TYPE_BOOL: {"type": "boolean"},
    FD.TYPE_STRING: {"type": "string"},
    FD.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN: dict[str, Schema] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"},
    ".google.protobuf.FieldMask": {"type": "string"},
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    ".google.protobuf.Value": {},
    ".google.protobuf.ListValue": {"type": "array", "items": {}},
    ".google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
    ".google.protobuf.BoolValue": {"type": "boolean"},
    ".google.protobuf.StringValue": {"type": "string"},
    ".google.protobuf.BytesValue": {"type": "string", "format": "byte"},
    ".google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    ".google.protobuf.FloatValue": {"type": "number", "format": "float"},
    ".google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    ".google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "minimum": 0},
    ".google.protobuf.Int64Value": _INT64,
    ".google.protobuf.UInt64Value": _UINT64,
}
_HTTP_BODY = ".google.api.HttpBody"
_STATUS = ".google.rpc.Status"
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


class _Contracts:
    """Messages, enums and comments of a descriptor set, by fully qualified name."""

    def __init__(self, files: list[descriptor_pb2.FileDescriptorProto]) -> None:
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.comments: dict[str, str] = {}
        for file in files:
            located = {
                tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location
            }
            self._walk(f".{file.package}", file.message_type, file.enum_type, located, (4,), (5,))
            for s, service in enumerate(file.service):
                name = f".{file.package}.{service.name}"
                self.comments[name] = located.get((6, s), "")
                for m, method in enumerate(service.method):
                    self.comments[f"{name}.{method.name}"] = located.get((6, s, 2, m), "")

    def _walk(self, scope, messages, enums, located, message_path, enum_path) -> None:
        for e, enum in enumerate(enums):
            self.enums[f"{scope}.{enum.name}"] = enum
            self.comments[f"{scope}.{enum.name}"] = located.get((*enum_path, e), "")
        for m, message in enumerate(messages):
            name = f"{scope}.{message.name}"
            self.messages[name] = message
            self.comments[name] = located.get((*message_path, m), "")
            for f, field in enumerate(message.field):
                self.comments[f"{name}.{field.name}"] = located.get((*message_path, m, 2, f), "")
            self._walk(
                name, message.nested_type, message.enum_type, located,
                (*message_path, m, 3), (*message_path, m, 4),
            )  # fmt: skip


def _describe(text: str) -> dict[str, str]:
    text = " ".join(line.strip() for line in text.strip().splitlines())
    return {"description": text} if text else {}


def _constraints(field: descriptor_pb2.FieldDescriptorProto) -> tuple[Schema, bool]:
    """JSON Schema keywords from the field's protovalidate rules, and whether it is required."""
    rules: validate_pb2.FieldRules = field.options.Extensions[validate_pb2.field]  # type: ignore[index]
    out: Schema = {}
    if rules.HasField("string"):
        s = rules.string
        for key, name in (
            ("min_len", "minLength"),
            ("max_len", "maxLength"),
            ("pattern", "pattern"),
        ):
            if s.HasField(key):
                out[name] = getattr(s, key)
        if s.uuid:
            out["format"] = "uuid"
        elif s.email:
            out["format"] = "email"
        elif s.uri:
            out["format"] = "uri"
    # 64-bit integers are JSON strings, so bounds apply to the 32-bit and floating kinds only.
    for kind in ("int32", "uint32", "double", "float"):
        number = getattr(rules, kind)
        if not rules.HasField(kind):
            continue
        for key, bound, exclusive in (
            ("gte", "minimum", False),
            ("gt", "minimum", True),
            ("lte", "maximum", False),
            ("lt", "maximum", True),
        ):
            if number.HasField(key):
                out[bound] = getattr(number, key)
                if exclusive:
                    out[f"exclusive{bound.capitalize()}"] = True
    if rules.HasField("repeated"):
        for key, name in (("min_items", "minItems"), ("max_items", "maxItems")):
            if rules.repeated.HasField(key):
                out[name] = getattr(rules.repeated, key)
    return out, rules.required


class _Builder:
    def __init__(self, contracts: _Contracts) -> None:
        self.contracts = contracts
        self.schemas: dict[str, Schema] = {}

    def ref(self, type_name: str) -> Schema:
        """A schema for the message or enum ``type_name``, adding it to the components."""
        if type_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[type_name])
        key = type_name.lstrip(".")
        if key not in self.schemas:
            self.schemas[key] = {}  # placeholder: recursive messages refer to themselves
            self.schemas[key] = self._define(type_name)
        return {"$ref": f"#/components/schemas/{key}"}

    def _define(self, type_name: str) -> Schema:
        if type_name in self.contracts.enums:
            values = [v.name for v in self.contracts.enums[type_name].value]
            return {
                "type": "string",
                "enum": values,
                **_describe(self.contracts.comments[type_name]),
            }
        message = self.contracts.messages[type_name]
        return {
            **self.object(type_name, message.field),
            **_describe(self.contracts.comments[type_name]),
        }

    def object(self, type_name: str, fields, skip: frozenset[str] = frozenset()) -> Schema:
        properties, required = {}, []
        for field in fields:
            if field.name in skip:
                continue
            schema, needed = self.field(field)
            properties[field.json_name] = {
                **schema,
                **_describe(self.contracts.comments.get(f"{type_name}.{field.name}", "")),
            }
            if needed:
                required.append(field.json_name)
        return {
            "type": "object",
            "properties": properties,
            **({"required": required} if required else {}),
        }

    def field(self, field: descriptor_pb2.FieldDescriptorProto) -> tuple[Schema, bool]:
        constraints, required = _constraints(field)
        if (
            field.type_name in self.contracts.messages
            and self.contracts.messages[field.type_name].options.map_entry
        ):
            value = self.contracts.messages[field.type_name].field[1]
            return {"type": "object", "additionalProperties": self.field(value)[0]}, required
        if field.type in (FD.TYPE_MESSAGE, FD.TYPE_ENUM):
            item = self.ref(field.type_name)
        else:
            item = dict(_SCALARS[field.type])
        if field.label == FD.LABEL_REPEATED:
            return {"type": "array", "items": item, **constraints}, required
        if "$ref" in item:
            return ({"allOf": [item]} if constraints else item), required
        return {**item, **constraints}, required


def _path_fields(template: str) -> list[str]:
    return [part.split("}")[0].split("=")[0] for part in template.split("{")[1:]]


def _field_at(
    contracts: _Contracts, message: str, path: str
) -> descriptor_pb2.FieldDescriptorProto:
    field = None
    for name in path.split("."):
        field = next(f for f in contracts.messages[message].field if f.name == name)
        message = field.type_name
    assert field is not None
    return field


def _query_parameters(
    builder: _Builder, message: str, skip: set[str], parent: tuple[str, str] = ("", "")
) -> list[Schema]:
    """Query parameters: scalar fields by JSON name, a nested message's fields as ``a.b``."""
    params = []
    for field in builder.contracts.messages[message].field:
        name, json_name = f"{parent[0]}{field.name}", f"{parent[1]}{field.json_name}"
        if name in skip or field.type_name == _HTTP_BODY:
            continue
        if field.type == FD.TYPE_MESSAGE and field.type_name not in _WELL_KNOWN:
            if field.label != FD.LABEL_REPEATED and not parent[0]:
                params += _query_parameters(
                    builder, field.type_name, skip, (f"{name}.", f"{json_name}.")
                )
            continue
        schema, _ = builder.field(field)
        comment = builder.contracts.comments.get(f"{message}.{field.name}", "")
        params.append({"name": json_name, "in": "query", "schema": schema, **_describe(comment)})
    return params


def _responses(builder: _Builder, method: descriptor_pb2.MethodDescriptorProto) -> Schema:
    if method.output_type == _HTTP_BODY:
        content = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        ok = "The raw bytes (the file's own content type)."
    elif method.server_streaming:
        one = builder.ref(method.output_type)
        content = {"application/x-ndjson": {"schema": one}, "text/event-stream": {"schema": one}}
        ok = "A stream of messages: one JSON object a line, or Server-Sent Events on request."
    else:
        content = {"application/json": {"schema": builder.ref(method.output_type)}}
        ok = "OK"
    error = {"application/json": {"schema": builder.ref(_STATUS)}}
    return {
        "200": {"description": ok, "content": content},
        "default": {"description": "A google.rpc.Status error.", "content": error},
    }


def _operation(builder, service, method, rule: http_pb2.HttpRule, verb: str, path: str) -> Schema:
    name = f".{service}.{method.name}"
    comment = builder.contracts.comments.get(name, "").strip()
    request = method.input_type
    in_path = _path_fields(path)
    parameters = [
        {
            "name": field,
            "in": "path",
            "required": True,
            "schema": builder.field(_field_at(builder.contracts, request, field))[0],
        }
        for field in in_path
    ]
    op: Schema = {
        "operationId": f"{service.split('.')[-1]}_{method.name}",
        "tags": [service.split(".")[-1]],
        "summary": comment.split("\n")[0].split(". ")[0].rstrip("."),
        **_describe(comment),
    }
    top_level = {f.split(".")[0] for f in in_path}
    if rule.body == "*":
        fields = builder.contracts.messages[request].field
        schema = builder.object(request, fields, frozenset(top_level))
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    elif rule.body:
        field = _field_at(builder.contracts, request, rule.body)
        if field.type_name == _HTTP_BODY:
            raw = {"type": "string", "format": "binary"}
            op["requestBody"] = {"required": True, "content": {"*/*": {"schema": raw}}}
        else:
            body_schema, _ = builder.field(field)
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
        parameters += _query_parameters(builder, request, {*in_path, rule.body})
    else:
        parameters += _query_parameters(builder, request, set(in_path))
    if parameters:
        op["parameters"] = parameters
    op["responses"] = _responses(builder, method)
    public = method.options.Extensions[access_pb2.rule].public
    op["security"] = [] if public else _SECURITY
    return op


def _bindings(rule: http_pb2.HttpRule) -> list[tuple[http_pb2.HttpRule, str, str]]:
    out = []
    for binding in (rule, *rule.additional_bindings):
        verb = binding.WhichOneof("pattern")
        if verb and verb != "custom":
            out.append((binding, verb, getattr(binding, verb)))
    return out


def openapi(descriptor_set: bytes) -> str:
    """The OpenAPI document (JSON text) of every routed RPC in ``descriptor_set``."""
    files = list(descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file)
    contracts = _Contracts(files)
    builder = _Builder(contracts)
    paths: dict[str, dict[str, Schema]] = {}
    tags = []
    for file in files:
        if not file.package.startswith("alea."):
            continue
        for service in file.service:
            full = f"{file.package}.{service.name}"
            tags.append({"name": service.name, **_describe(contracts.comments[f".{full}"])})
            for method in service.method:
                if method.options.Extensions[access_pb2.rule].internal:  # type: ignore[index]
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                for n, (binding, verb, path) in enumerate(_bindings(rule)):
                    op = _operation(builder, full, method, binding, verb, path)
                    if n:
                        op["operationId"] += f"_{n}"
                    paths.setdefault(path, {})[verb] = op
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": "Alea API",
            "version": "v1",
            "description": "REST/JSON over the Alea edge (mTLS: a client certificate signed by "
            "the platform CA). Generated from the protobuf contracts by scripts/openapi.py.",
        },
        "tags": tags,
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
        "security": _SECURITY,
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
