"""Encryption at rest: AES-256-GCM chunks under a per-file data key wrapped by a master key.

Sealed blob layout: the plaintext is cut into chunks of ``chunk_size`` bytes (the last
one shorter, and exactly one empty chunk for an empty file); each chunk is stored as
``AESGCM(data_key).encrypt(nonce, chunk, aad) = ciphertext || 16-byte tag`` with

- ``nonce = nonce_prefix (8 random bytes per file) || chunk index (4 bytes, big endian)``,
- ``aad = b"alea.files.v1" || file id || chunk index (8 bytes) || final flag (1 byte)``.

The index and the final flag in the associated data mean a reordered, duplicated,
dropped or truncated chunk fails authentication instead of yielding other bytes; the
file id binds the chunks to one file. Chunk ``i`` starts at ``i * (chunk_size + 16)``
in the blob, so a byte range needs only the chunks it touches.

The data key is wrapped by the current master key (AES-256-GCM, random nonce, the key
id and file id as associated data); the key id is stored with the file so master keys
can be rotated by re-wrapping data keys (:meth:`MasterKeys.rewrap`) without touching blobs.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CHUNK_SIZE",
    "KEY_SIZE",
    "TAG_SIZE",
    "ChunkCipher",
    "IntegrityError",
    "MasterKeys",
    "Sealer",
    "chunk_count",
    "chunk_span",
    "sealed_size",
]

CHUNK_SIZE = 256 * 1024
"""Plaintext bytes per sealed chunk: large enough for throughput, small for range reads."""
TAG_SIZE = 16
KEY_SIZE = 32
NONCE_PREFIX_SIZE = 8
_WRAP_NONCE_SIZE = 12
_AAD_LABEL = b"alea.files.v1"
_MAX_CHUNKS = 2**32  # the nonce counter is 4 bytes


class IntegrityError(Exception):
    """Ciphertext or a wrapped key failed authentication: the stored data was altered."""


def chunk_count(size: int, chunk_size: int) -> int:
    """Number of sealed chunks for ``size`` plaintext bytes (an empty file has one)."""
    return max(1, -(-size // chunk_size))


def sealed_size(size: int, chunk_size: int) -> int:
    """Blob length in bytes for ``size`` plaintext bytes."""
    return size + chunk_count(size, chunk_size) * TAG_SIZE


@dataclass(frozen=True)
class MasterKeys:
    """Master keys by id; new data keys are wrapped by ``current_id``."""

    current_id: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.current_id not in self.keys:
            raise ValueError(f"current master key id {self.current_id!r} is not among the keys")
        for key_id, key in self.keys.items():
            if len(key) != KEY_SIZE:
                raise ValueError(f"master key {key_id!r} must be {KEY_SIZE} bytes, got {len(key)}")

    def wrap(self, data_key: bytes, file_id: str) -> tuple[str, bytes]:
        """Encrypt ``data_key`` under the current master key; returns (key id, wrapped key)."""
        nonce = os.urandom(_WRAP_NONCE_SIZE)
        aad = _wrap_aad(self.current_id, file_id)
        return self.current_id, nonce + AESGCM(self.keys[self.current_id]).encrypt(
            nonce, data_key, aad
        )

    def unwrap(self, key_id: str, wrapped: bytes, file_id: str) -> bytes:
        """Recover a data key; :class:`KeyError` if the key id is unknown."""
        master = self.keys[key_id]
        nonce, sealed = wrapped[:_WRAP_NONCE_SIZE], wrapped[_WRAP_NONCE_SIZE:]
        try:
            return AESGCM(master).decrypt(nonce, sealed, _wrap_aad(key_id, file_id))
        except InvalidTag:
            message = f"wrapped data key of file {file_id} failed authentication"
            raise IntegrityError(message) from None

    def rewrap(self, key_id: str, wrapped: bytes, file_id: str) -> tuple[str, bytes]:
        """Re-wrap a data key under the current master key (the blob is untouched)."""
        return self.wrap(self.unwrap(key_id, wrapped, file_id), file_id)


def _wrap_aad(key_id: str, file_id: str) -> bytes:
    return b"%s|wrap|%s|%s" % (_AAD_LABEL, key_id.encode(), file_id.encode())


class ChunkCipher:
    """Seals and opens the chunks of one file."""

    def __init__(self, data_key: bytes, nonce_prefix: bytes, file_id: str) -> None:
        if len(data_key) != KEY_SIZE or len(nonce_prefix) != NONCE_PREFIX_SIZE:
            raise ValueError("data key must be 32 bytes and nonce prefix 8 bytes")
        self._aead = AESGCM(data_key)
        self._prefix = nonce_prefix
        self._aad_head = _AAD_LABEL + file_id.encode()

    @classmethod
    def generate(cls, file_id: str) -> tuple[ChunkCipher, bytes, bytes]:
        """A cipher with a fresh random data key; returns (cipher, data key, nonce prefix)."""
        data_key, prefix = AESGCM.generate_key(bit_length=256), os.urandom(NONCE_PREFIX_SIZE)
        return cls(data_key, prefix, file_id), data_key, prefix

    def _nonce_aad(self, index: int, final: bool) -> tuple[bytes, bytes]:
        if not 0 <= index < _MAX_CHUNKS:
            raise ValueError(f"chunk index {index} out of range")
        nonce = self._prefix + struct.pack(">I", index)
        return nonce, self._aad_head + struct.pack(">QB", index, final)

    def seal(self, index: int, plaintext: bytes | bytearray | memoryview, final: bool) -> bytes:
        """Encrypt chunk ``index``; ``final`` marks the file's last chunk."""
        nonce, aad = self._nonce_aad(index, final)
        return self._aead.encrypt(nonce, plaintext, aad)

    def open(self, index: int, sealed: bytes, final: bool) -> bytes:
        """Decrypt chunk ``index`` or raise :class:`IntegrityError`."""
        nonce, aad = self._nonce_aad(index, final)
        try:
            return self._aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise IntegrityError(f"chunk {index} failed authentication") from None


class Sealer:
    """Turns a plaintext stream of any piece sizes into sealed chunks, in order.

    ``feed`` returns the chunks completed so far (never the last one, since only
    :meth:`finish` knows which chunk is final).
    """

    def __init__(self, cipher: ChunkCipher, chunk_size: int = CHUNK_SIZE) -> None:
        self._cipher = cipher
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._index = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Buffer ``data``; seal every full chunk that is known not to be the last.

        Whole chunks inside ``data`` are sealed straight from it (no copy); only the
        tail that may turn out to be the final chunk is buffered.
        """
        view = memoryview(data)
        out = []
        while view:
            if len(self._buffer) == self._chunk_size:  # full, and more bytes follow
                out.append(self._seal(self._buffer, final=False))
                self._buffer = bytearray()
            if not self._buffer and len(view) > self._chunk_size:
                out.append(self._seal(view[: self._chunk_size], final=False))
                view = view[self._chunk_size :]
                continue
            take = self._chunk_size - len(self._buffer)
            self._buffer += view[:take]
            view = view[take:]
        return out

    def _seal(self, plaintext: bytes | bytearray | memoryview, final: bool) -> bytes:
        sealed = self._cipher.seal(self._index, plaintext, final)
        self._index += 1
        return sealed

    def finish(self) -> bytes:
        """Seal what remains as the final chunk."""
        sealed = self._seal(self._buffer, final=True)
        self._buffer = bytearray()
        return sealed


def chunk_span(
    offset: int, length: int, size: int, chunk_size: int
) -> Iterator[tuple[int, int, int]]:
    """The chunks covering plaintext ``[offset, offset + length)`` of a ``size``-byte file.

    Yields ``(chunk index, start within chunk, end within chunk)``; nothing for an empty range.
    """
    end = min(size, offset + length)
    index = offset // chunk_size
    while offset < end:
        chunk_start = index * chunk_size
        stop = min(end, chunk_start + chunk_size)
        yield index, offset - chunk_start, stop - chunk_start
        offset, index = stop, index + 1
