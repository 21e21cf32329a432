"""A throwaway development PKI for tests: a CA plus SPIFFE certificates per name.

Writes ``ca.crt``/``ca.key`` and ``<name>.crt``/``<name>.key`` into a directory, the
layout services read from ``$ALEA_HOME/pki``. Certificates carry SAN URI
``spiffe://alea/<name>``, DNS ``localhost`` and IP 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_NAMES = ("identity", "files", "simulation", "notification", "admin", "analytics")
DEFAULT_NAMES = (*SERVICE_NAMES, "edge", "client")


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _builder(subject: str, issuer: x509.Name, public_key, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def make_ca(
    directory: Path, common_name: str = "alea test CA"
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Create ``ca.crt``/``ca.key`` in ``directory`` and return them."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(common_name, name, key.public_key(), 30)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "ca.key", key)
    return cert, key


def issue(directory: Path, name: str, ca_cert: x509.Certificate, ca_key, *, days: int = 30) -> None:
    """Write ``<name>.crt``/``<name>.key`` signed by the CA, SAN ``spiffe://alea/<name>``."""
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier(f"spiffe://alea/{name}"),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    )
    usage = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    cert = (
        _builder(name, ca_cert.subject, key.public_key(), days)
        .add_extension(san, critical=False)
        .add_extension(usage, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / f"{name}.key", key)


def make_pki(directory: Path, names: tuple[str, ...] = DEFAULT_NAMES) -> Path:
    """A CA and one certificate per name in ``directory``; returns ``directory``."""
    ca_cert, ca_key = make_ca(directory)
    for name in names:
        issue(directory, name, ca_cert, ca_key)
    return directory
