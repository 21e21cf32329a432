"""Chunked AES-256-GCM sealing and master-key wrapping (services.files.crypto)."""

from __future__ import annotations

import os

import pytest

from services.files.crypto import (
    TAG_SIZE,
    ChunkCipher,
    IntegrityError,
    MasterKeys,
    Sealer,
    chunk_count,
    chunk_span,
    sealed_size,
)

FILE_ID = "0f0e0d0c-0000-4000-8000-000000000001"


def seal_all(data: bytes, pieces: int, chunk_size: int) -> tuple[ChunkCipher, list[bytes]]:
    cipher, _, _ = ChunkCipher.generate(FILE_ID)
    sealer = Sealer(cipher, chunk_size)
    step = max(1, len(data) // pieces)
    out = []
    for start in range(0, len(data), step):
        out += sealer.feed(data[start : start + step])
    out.append(sealer.finish())
    return cipher, out


def open_all(cipher: ChunkCipher, sealed: list[bytes]) -> bytes:
    last = len(sealed) - 1
    return b"".join(cipher.open(i, c, final=i == last) for i, c in enumerate(sealed))


@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 1000])
@pytest.mark.parametrize("pieces", [1, 3, 7])
def test_round_trip_any_piece_sizes(size: int, pieces: int) -> None:
    data = os.urandom(size)
    cipher, sealed = seal_all(data, pieces, chunk_size=100)
    assert len(sealed) == chunk_count(size, 100)
    assert sum(map(len, sealed)) == sealed_size(size, 100)
    assert all(len(c) == 100 + TAG_SIZE for c in sealed[:-1])
    assert open_all(cipher, sealed) == data


def test_ciphertext_hides_plaintext() -> None:
    data = b"MARKER-" * 100
    _, sealed = seal_all(data, 1, chunk_size=64)
    assert b"MARKER" not in b"".join(sealed)


def test_flipped_bit_fails() -> None:
    cipher, sealed = seal_all(os.urandom(300), 1, chunk_size=100)
    tampered = bytearray(sealed[1])
    tampered[5] ^= 1
    with pytest.raises(IntegrityError):
        cipher.open(1, bytes(tampered), final=False)


def test_reordered_chunks_fail() -> None:
    cipher, sealed = seal_all(os.urandom(300), 1, chunk_size=100)
    with pytest.raises(IntegrityError):
        cipher.open(0, sealed[1], final=False)


def test_truncation_is_detected() -> None:
    """Dropping the last chunk leaves a chunk that was not sealed as final."""
    cipher, sealed = seal_all(os.urandom(300), 1, chunk_size=100)
    with pytest.raises(IntegrityError):
        cipher.open(1, sealed[1], final=True)


def test_chunks_are_bound_to_their_file() -> None:
    cipher, data_key, prefix = ChunkCipher.generate(FILE_ID)
    sealed = cipher.seal(0, b"hello", final=True)
    other = ChunkCipher(data_key, prefix, "another-file")
    with pytest.raises(IntegrityError):
        other.open(0, sealed, final=True)


def test_master_key_wrap_rewrap_and_tamper() -> None:
    old = MasterKeys("k1", {"k1": os.urandom(32)})
    data_key = os.urandom(32)
    key_id, wrapped = old.wrap(data_key, FILE_ID)
    assert key_id == "k1" and data_key not in wrapped
    rotated = MasterKeys("k2", {**old.keys, "k2": os.urandom(32)})
    new_id, rewrapped = rotated.rewrap(key_id, wrapped, FILE_ID)
    assert new_id == "k2"
    assert MasterKeys("k2", {"k2": rotated.keys["k2"]}).unwrap("k2", rewrapped, FILE_ID) == data_key
    with pytest.raises(IntegrityError):
        rotated.unwrap("k2", rewrapped, "another-file")
    with pytest.raises(KeyError):
        old.unwrap("k2", rewrapped, FILE_ID)


def test_master_keys_validate() -> None:
    with pytest.raises(ValueError, match="current"):
        MasterKeys("nope", {"k1": os.urandom(32)})
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKeys("k1", {"k1": os.urandom(16)})


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, 1000, [(0, 0, 100), (1, 0, 100), (2, 0, 50)]),
        (150, 20, [(1, 50, 70)]),
        (99, 2, [(0, 99, 100), (1, 0, 1)]),
        (250, 100, []),
        (10, 0, []),
    ],
)
def test_chunk_span(offset: int, length: int, expected: list) -> None:
    assert list(chunk_span(offset, length, size=250, chunk_size=100)) == expected
