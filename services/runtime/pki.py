"""Development PKI: a private CA and one SPIFFE-named certificate per mesh identity.

``ensure_pki(home)`` creates, once, ``$ALEA_HOME/pki/ca.crt`` + ``ca.key`` and for every
identity in :data:`IDENTITIES` a ``<name>.crt`` + ``<name>.key`` whose SAN carries the URI
``spiffe://alea/<name>``, DNS ``localhost`` and IP ``127.0.0.1``. Keys are ECDSA P-256, written
0600. Every certificate is usable as a TLS server and client certificate, because services
serve the edge and also call each other, and the edge both serves clients and dials upstreams.

:func:`create_ca` and :func:`issue` are public so tests can build a foreign CA or an expired
certificate with the same code that builds the real ones.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "IDENTITIES",
    "SERVICES",
    "Issued",
    "cert_paths",
    "create_ca",
    "ensure_pki",
    "issue",
    "load",
    "secret_key",
    "spiffe_id",
]

SERVICES = ("identity", "files", "simulation", "notification", "admin", "analytics")
IDENTITIES = (*SERVICES, "edge", "client")

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=825)
# Tolerate small clock differences between the processes that check the certificates.
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        """The certificate, PEM encoded."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key, PKCS#8 PEM, unencrypted (a development PKI)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``<name>.crt`` and ``<name>.key`` (0600) into ``directory``; return both paths."""
        crt, key = cert_paths(directory, name)
        _write_atomic(key, self.key_pem, 0o600)
        _write_atomic(crt, self.cert_pem, 0o644)
        return crt, key


def secret_key(path: Path, size: int = 32) -> bytes:
    """Random key material kept in ``path`` beside the certificates: created exclusively
    (0600) on first start, read afterwards (a mounted Secret in Kubernetes); ValueError
    when the file holds another number of bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as file:
            file.write(secrets.token_bytes(size))
    key = path.read_bytes()
    if len(key) != size:
        raise ValueError(f"{path} must hold exactly {size} bytes")
    return key


def spiffe_id(name: str) -> str:
    """The SPIFFE URI naming a mesh identity, e.g. ``spiffe://alea/identity``."""
    return f"spiffe://alea/{name}"


def cert_paths(pki_dir: Path, name: str) -> tuple[Path, Path]:
    """Paths of ``<name>.crt`` and ``<name>.key`` under ``pki_dir``."""
    return pki_dir / f"{name}.crt", pki_dir / f"{name}.key"


def create_ca(
    common_name: str = "Alea development CA", *, validity: dt.timedelta = CA_VALIDITY
) -> Issued:
    """A self-signed CA allowed to sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(
    ca: Issued,
    name: str,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """Sign a leaf certificate for mesh identity ``name`` (``spiffe://alea/<name>``).

    ``not_before``/``not_after`` default to now (minus a few minutes) and now plus
    :data:`LEAF_VALIDITY`; pass dates in the past to make an expired certificate.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    san = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier(spiffe_id(name)),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "alea"),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - _BACKDATE)
        .not_valid_after(not_after or now + LEAF_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(san, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


def load(pki_dir: Path, name: str) -> Issued:
    """Read ``<name>.crt`` and ``<name>.key`` back from ``pki_dir``."""
    crt, key_path = cert_paths(pki_dir, name)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: not an ECDSA key")
    return Issued(x509.load_pem_x509_certificate(crt.read_bytes()), key)


def ensure_pki(home: Path) -> Path:
    """Create the development PKI under ``home/pki`` unless present; return that directory.

    Idempotent and safe to call from several processes at once (a file lock serialises
    them). Only missing identities are issued; if the CA itself is missing, every
    certificate is re-issued so that all of them chain to the same CA.
    """
    pki_dir = Path(home) / "pki"
    if _complete(pki_dir) or _provisioned(pki_dir):
        return pki_dir
    pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(pki_dir / ".lock"):
        ca_crt, ca_key = cert_paths(pki_dir, "ca")
        if ca_crt.exists() and ca_key.exists():
            ca = load(pki_dir, "ca")
            missing = [n for n in IDENTITIES if not _present(pki_dir, n)]
        else:
            ca = create_ca()
            ca.write(pki_dir, "ca")
            missing = list(IDENTITIES)
        for name in missing:
            issue(ca, name).write(pki_dir, name)
    return pki_dir


def _present(pki_dir: Path, name: str) -> bool:
    return all(path.exists() for path in cert_paths(pki_dir, name))


def _complete(pki_dir: Path) -> bool:
    return all(_present(pki_dir, name) for name in ("ca", *IDENTITIES))


def _provisioned(pki_dir: Path) -> bool:
    # A CA certificate without its key: certificates were issued elsewhere and mounted
    # (a read-only Secret in Kubernetes), one identity's each; nothing to issue here.
    return (pki_dir / "ca.crt").exists() and not (pki_dir / "ca.key").exists()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    # Write then rename, so a reader never sees half a key or certificate.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
