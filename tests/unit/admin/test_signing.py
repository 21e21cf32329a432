"""The checkpoint key: created once with owner-only rights, stable, signatures that verify
only for the exact text."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.admin.signing import KEY_FILE, Signer, checkpoint_text, key_id, verify


def test_the_key_is_created_once_and_kept(tmp_path: Path) -> None:
    first = Signer.load(tmp_path)
    again = Signer.load(tmp_path)
    assert first.public_key == again.public_key and len(first.public_key) == 32
    assert first.key_id == key_id(first.public_key) and len(first.key_id) == 16
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        Signer.load(tmp_path)


def test_signatures_cover_every_field(tmp_path: Path) -> None:
    signer = Signer.load(tmp_path)
    text = checkpoint_text("t", 42, "ab" * 32, 1_767_225_600.25)
    assert text.decode().splitlines() == [
        "alea-audit-checkpoint/v1",
        "t",
        "42",
        "ab" * 32,
        "2026-01-01T00:00:00.250000Z",
    ]
    signature = signer.sign(text)
    assert verify(signer.public_key, signature, text)
    for changed in (
        checkpoint_text("u", 42, "ab" * 32, 1_767_225_600.25),
        checkpoint_text("t", 41, "ab" * 32, 1_767_225_600.25),
        checkpoint_text("t", 42, "cd" * 32, 1_767_225_600.25),
        checkpoint_text("t", 42, "ab" * 32, 1_767_225_600.26),
    ):
        assert not verify(signer.public_key, signature, changed)
    other = Signer.load(tmp_path / "other")
    assert not verify(other.public_key, signature, text)
    assert not verify(b"not a key", signature, text)
