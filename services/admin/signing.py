"""The Ed25519 key that signs audit checkpoints, and the text a checkpoint's signature covers.

The private key lives beside the service certificates
(``$ALEA_HOME/pki/admin-audit-signing.key``, raw 32 bytes, created 0600 on first start; a
mounted Secret in Kubernetes), never in the database: someone who can rewrite the audit
tables still cannot sign a checkpoint that matches the rewritten chain. The key id is the
first 16 hex digits of SHA-256 over the raw public key, so a verifier holding the public
key (published with every checkpoint, and in the logs) recognises it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.admin.chain import rfc3339
from services.runtime.pki import secret_key

__all__ = ["KEY_FILE", "Signer", "checkpoint_text", "key_id", "verify"]

KEY_FILE = "admin-audit-signing.key"


def checkpoint_text(tenant_id: str, sequence: int, head_hash: str, create_time: float) -> bytes:
    """What a checkpoint's signature covers (see ``AuditCheckpoint`` in the contract)."""
    lines = ["alea-audit-checkpoint/v1", tenant_id, str(sequence), head_hash, rfc3339(create_time)]
    return "\n".join(lines).encode()


def key_id(public_key: bytes) -> str:
    """The id of a raw Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def verify(public_key: bytes, signature: bytes, text: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``text``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, text)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Signer:
    """The signing key, its raw public half and its id."""

    private_key: Ed25519PrivateKey
    public_key: bytes
    key_id: str

    @classmethod
    def load(cls, pki_dir: Path) -> Signer:
        """The key in ``pki_dir``, created (exclusively, 0600) on first start."""
        private = Ed25519PrivateKey.from_private_bytes(secret_key(pki_dir / KEY_FILE))
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private, public, key_id(public))

    def sign(self, text: bytes) -> bytes:
        """The Ed25519 signature of ``text``."""
        return self.private_key.sign(text)
