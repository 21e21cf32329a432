"""What the contract tests inspect: the generated modules and the descriptor set Envoy loads."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import alea
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor, ServiceDescriptor

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR_SET = ROOT / "gen" / "descriptors" / "alea.binpb"
SERVICES = ("identity", "files", "simulation", "notification", "admin", "analytics")


def alea_files() -> list[FileDescriptor]:
    """Import every generated ``alea.*_pb2`` module and return its file descriptor."""
    files = []
    for info in pkgutil.walk_packages(alea.__path__, "alea."):
        if info.name.endswith("_pb2"):
            files.append(importlib.import_module(info.name).DESCRIPTOR)
    return sorted(files, key=lambda f: f.name)


def services() -> list[ServiceDescriptor]:
    """Every service declared in the protos."""
    return [s for f in alea_files() for s in f.services_by_name.values()]


def methods() -> Iterator[MethodDescriptor]:
    """Every RPC of every service."""
    for service in services():
        yield from service.methods


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The checked-in descriptor set (with imports and source info)."""
    return descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
