"""Files settings: master keys from the environment or the development key file."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from services.files.config import add_dev_master_key, dev_key_file, load_files_settings
from services.runtime.config import ConfigError


def b64(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def test_keys_from_environment(tmp_path: Path) -> None:
    env = {"ALEA_FILES_MASTER_KEYS": f"a:{b64()},b:{b64()}", "ALEA_FILES_MASTER_KEY_ID": "a"}
    settings = load_files_settings(tmp_path, env)
    assert settings.master_keys.current_id == "a"
    assert set(settings.master_keys.keys) == {"a", "b"}
    assert settings.blob_dir == (tmp_path / "blobs").resolve()
    assert not dev_key_file(tmp_path).exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALEA_FILES_MASTER_KEYS": "a:!!!"}, "base64"),
        ({"ALEA_FILES_MASTER_KEYS": f"a:{b64(16)}"}, "32 bytes"),
        ({"ALEA_FILES_MASTER_KEYS": f"a:{b64()}", "ALEA_FILES_MASTER_KEY_ID": "z"}, "KEY_ID"),
        ({"ALEA_FILES_MASTER_KEYS": "nokey"}, "key_id:base64"),
        ({"ALEA_FILES_MASTER_KEYS": f"a:{b64()}", "ALEA_FILES_MAX_FILE_BYTES": "-1"}, "MAX_FILE"),
    ],
)
def test_malformed_settings_name_the_variable(tmp_path: Path, env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_files_settings(tmp_path, env)


def test_dev_keys_generated_once_private_and_rotatable(tmp_path: Path) -> None:
    first = load_files_settings(tmp_path, {}).master_keys
    path = dev_key_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_files_settings(tmp_path, {}).master_keys == first
    new_id = add_dev_master_key(tmp_path)
    rotated = load_files_settings(tmp_path, {}).master_keys
    assert rotated.current_id == new_id != first.current_id
    assert rotated.keys[first.current_id] == first.keys[first.current_id]
