"""The development PKI (``services.runtime.pki``): what every mesh process relies on."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.runtime.pki import IDENTITIES, cert_paths, ensure_pki, load


def test_every_identity_has_its_spiffe_certificate_signed_by_the_ca(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    ca = load(pki, "ca").cert
    for name in IDENTITIES:
        cert = load(pki, name).cert
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"spiffe://alea/{name}"]
        assert san.get_values_for_type(x509.DNSName) == ["localhost"]
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usage)
        cert.verify_directly_issued_by(ca)
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert cert.public_key().curve.name == "secp256r1"


def test_keys_are_private(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    for name in ("ca", *IDENTITIES):
        mode = stat.S_IMODE(cert_paths(pki, name)[1].stat().st_mode)
        assert mode == 0o600, (name, oct(mode))


def test_ensure_pki_is_idempotent_and_fills_gaps(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    before = {p.name: p.read_bytes() for p in pki.glob("*.crt")}
    cert_paths(pki, "files")[1].unlink()

    ensure_pki(tmp_path)

    after = {p.name: p.read_bytes() for p in pki.glob("*.crt")}
    assert after["files.crt"] != before["files.crt"]  # re-issued with its missing key
    assert {k: v for k, v in after.items() if k != "files.crt"} == {
        k: v for k, v in before.items() if k != "files.crt"
    }
    load(pki, "files").cert.verify_directly_issued_by(load(pki, "ca").cert)
