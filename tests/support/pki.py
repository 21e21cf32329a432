"""Test certificates, issued by the one PKI implementation in ``services.runtime.pki``.

``make_pki(directory)`` writes a fresh CA and one certificate per mesh identity (the
layout services read from ``$ALEA_HOME/pki``); ``foreign_cert`` and ``expired_cert`` add
the certificates the security tests need: one signed by a CA nobody trusts and one that
has expired.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from services.runtime import pki
from services.runtime.pki import IDENTITIES, SERVICES, cert_paths

__all__ = [
    "DEFAULT_NAMES",
    "SERVICE_NAMES",
    "expired_cert",
    "foreign_cert",
    "issue",
    "make_ca",
    "make_pki",
    "read_identity",
]

SERVICE_NAMES = SERVICES
DEFAULT_NAMES = IDENTITIES


def make_ca(
    directory: Path, common_name: str = "alea test CA"
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Create ``ca.crt``/``ca.key`` in ``directory`` and return them."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = pki.create_ca(common_name)
    ca.write(directory, "ca")
    return ca.cert, ca.key


def issue(
    directory: Path,
    name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    days: int = 30,
) -> None:
    """Write ``<name>.crt``/``<name>.key`` signed by the CA, SAN ``spiffe://alea/<name>``.

    A negative ``days`` gives a certificate that expired that many days ago.
    """
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    not_before = min(dt.datetime.now(dt.UTC), not_after) - dt.timedelta(days=1)
    cert = pki.issue(pki.Issued(ca_cert, ca_key), name, not_before=not_before, not_after=not_after)
    cert.write(directory, name)


def make_pki(directory: Path, names: tuple[str, ...] = DEFAULT_NAMES) -> Path:
    """A CA and one certificate per name in ``directory``; returns ``directory``."""
    ca_cert, ca_key = make_ca(directory)
    for name in names:
        issue(directory, name, ca_cert, ca_key)
    return directory


def read_identity(pki_dir: Path, name: str) -> tuple[bytes, bytes]:
    """``(cert_pem, key_pem)`` of identity ``name`` under ``pki_dir``."""
    crt, key = cert_paths(pki_dir, name)
    return crt.read_bytes(), key.read_bytes()


def foreign_cert(out_dir: Path, name: str = "client") -> tuple[Path, Path]:
    """A certificate for ``name`` signed by a freshly made CA nobody trusts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return pki.issue(pki.create_ca("Some other CA"), name).write(out_dir, f"foreign-{name}")


def expired_cert(pki_dir: Path, out_dir: Path, name: str = "client") -> tuple[Path, Path]:
    """A certificate for ``name`` signed by the real CA that expired yesterday."""
    out_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    cert = pki.issue(
        pki.load(pki_dir, "ca"),
        name,
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    return cert.write(out_dir, f"expired-{name}")
