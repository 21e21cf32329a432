from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_VIEWER: _ClassVar[Role]
    ROLE_ANALYST: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]

class Audit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_UNSPECIFIED: _ClassVar[Audit]
    AUDIT_ALL: _ClassVar[Audit]
    AUDIT_REFUSED_ONLY: _ClassVar[Audit]
ROLE_UNSPECIFIED: Role
ROLE_VIEWER: Role
ROLE_ANALYST: Role
ROLE_ADMIN: Role
AUDIT_UNSPECIFIED: Audit
AUDIT_ALL: Audit
AUDIT_REFUSED_ONLY: Audit
RULE_FIELD_NUMBER: _ClassVar[int]
rule: _descriptor.FieldDescriptor

class AccessRule(_message.Message):
    __slots__ = ("role", "public", "internal", "peers", "audit")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    role: Role
    public: bool
    internal: bool
    peers: _containers.RepeatedScalarFieldContainer[str]
    audit: Audit
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., public: _Optional[bool] = ..., internal: _Optional[bool] = ..., peers: _Optional[_Iterable[str]] = ..., audit: _Optional[_Union[Audit, str]] = ...) -> None: ...
