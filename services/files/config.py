"""Settings of the files service beyond the shared runtime ones, parsed once at start-up.

``ALEA_FILES_MASTER_KEYS``  comma-separated ``key_id:base64(32 bytes)`` master keys.
``ALEA_FILES_MASTER_KEY_ID`` the id new data keys are wrapped with (default: the last listed).
Without ``ALEA_FILES_MASTER_KEYS`` (development), the keys are read from
``$ALEA_HOME/keys/files-master-keys.json``, created with one random key (mode 0600) on
first start; that file lives outside the repository and is never committed.
``ALEA_FILES_BLOB_DIR``     local blob directory (default ``$ALEA_HOME/blobs``).
``ALEA_FILES_MAX_FILE_BYTES`` largest accepted file (default 5 GiB).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.files.crypto import KEY_SIZE, MasterKeys
from services.runtime.config import ConfigError

__all__ = ["FilesSettings", "add_dev_master_key", "dev_key_file", "load_files_settings"]

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_MAX_FILE_BYTES = 5 << 30


@dataclass(frozen=True)
class FilesSettings:
    """Blob location, size limit and master keys."""

    blob_dir: Path
    max_file_bytes: int
    master_keys: MasterKeys


def dev_key_file(home: Path) -> Path:
    """Where development master keys are kept."""
    return home / "keys" / "files-master-keys.json"


def _parse_keys(raw: str, current: str | None) -> MasterKeys:
    name = "ALEA_FILES_MASTER_KEYS"
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ConfigError(f"{name} entries must be key_id:base64, got {key_id!r}")
        try:
            keys[key_id] = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise ConfigError(f"{name}: key {key_id!r} is not valid base64") from None
        if len(keys[key_id]) != KEY_SIZE:
            raise ConfigError(f"{name}: key {key_id!r} must decode to {KEY_SIZE} bytes")
    if not keys:
        raise ConfigError(f"{name} holds no key")
    current = current or list(keys)[-1]
    if current not in keys:
        raise ConfigError(f"ALEA_FILES_MASTER_KEY_ID {current!r} is not in {name}")
    return MasterKeys(current, keys)


def _write_dev_keys(path: Path, keys: MasterKeys) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "current": keys.current_id,
        "keys": {k: base64.b64encode(v).decode() for k, v in keys.keys.items()},
    }
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
    os.replace(temp, path)


def _load_dev_keys(path: Path) -> MasterKeys:
    if not path.exists():
        _write_dev_keys(path, MasterKeys("dev-1", {"dev-1": secrets.token_bytes(KEY_SIZE)}))
    document = json.loads(path.read_text())
    keys = {k: base64.b64decode(v) for k, v in document["keys"].items()}
    return MasterKeys(document["current"], keys)


def add_dev_master_key(home: Path) -> str:
    """Add a fresh development master key and make it current; returns its id."""
    path = dev_key_file(home)
    keys = _load_dev_keys(path)
    key_id = f"dev-{len(keys.keys) + 1}"
    while key_id in keys.keys:
        key_id += "x"
    _write_dev_keys(path, MasterKeys(key_id, {**keys.keys, key_id: secrets.token_bytes(KEY_SIZE)}))
    return key_id


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def load_files_settings(home: Path, env: Mapping[str, str] | None = None) -> FilesSettings:
    """Parse the files settings from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    raw_keys = env.get("ALEA_FILES_MASTER_KEYS")
    if raw_keys:
        master = _parse_keys(raw_keys, env.get("ALEA_FILES_MASTER_KEY_ID"))
    else:
        master = _load_dev_keys(dev_key_file(home))
    return FilesSettings(
        blob_dir=Path(env.get("ALEA_FILES_BLOB_DIR") or home / "blobs").resolve(),
        max_file_bytes=_positive_int(env, "ALEA_FILES_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES),
        master_keys=master,
    )
