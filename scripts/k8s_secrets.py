"""Generate the Secrets the Kubernetes manifests expect, into a directory that is never committed.

    .venv/bin/python scripts/k8s_secrets.py OUT_DIR [--postgres-host postgres]
    kubectl apply -n NAMESPACE -f OUT_DIR/secrets.yaml

OUT_DIR (created 0700) receives ``secrets.yaml`` (every Secret, 0600) and ``pki/``: the CA
that signed every certificate, its key (keep it to issue more) and the ``client``
certificate and key that the CLI and curl present to the edge. Running it again reuses
what OUT_DIR holds, so the Secrets stay stable; delete OUT_DIR to start over.

The Secrets (see k8s/base/kustomization.yaml): ``alea-<name>-tls`` for each service and the
edge, ``alea-identity-signing``, ``alea-files-master-keys``, ``alea-admin-audit-signing``
(the Ed25519 key that signs audit checkpoints), ``alea-database`` (one
``postgresql+asyncpg://`` URL per service, and ``simulation-keda``, the same database as a
libpq URL for KEDA's queue-depth query), and ``alea-postgres`` (passwords for the
development PostgreSQL of k8s/components/postgres). For a PostgreSQL of your own, edit
the URLs in ``alea-database`` before applying, or point ``--postgres-host`` at it and create
the roles and databases as the alea-databases Job does.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
from pathlib import Path

from services.runtime.pki import SERVICES, ensure_pki

KEK_BYTES = 32
MASTER_KEY_BYTES = 32


def _material(path: Path) -> dict[str, str]:
    """Random keys and passwords, created once and kept in ``path`` (0600)."""
    if path.exists():
        return dict(json.loads(path.read_text()))
    material = {
        "identity-signing-kek": base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode(),
        "files-master-key": base64.b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode(),
        "admin-audit-signing-key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "postgres-superuser": secrets.token_urlsafe(24),
        **{f"postgres-{service}": secrets.token_urlsafe(24) for service in SERVICES},
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(material, file, indent=2)
    return material


def _secret(name: str, data: dict[str, bytes], kind: str = "Opaque") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "alea"}},
        "type": kind,
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }


def build(out: Path, postgres_host: str) -> list[dict]:
    """Every Secret of the manifests, from the PKI and material kept in ``out``."""
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki = ensure_pki(out)
    material = _material(out / "material.json")
    ca = (pki / "ca.crt").read_bytes()
    documents = [
        _secret(
            f"alea-{name}-tls",
            {
                "tls.crt": (pki / f"{name}.crt").read_bytes(),
                "tls.key": (pki / f"{name}.key").read_bytes(),
                "ca.crt": ca,
            },
            "kubernetes.io/tls",
        )
        for name in (*SERVICES, "edge")
    ]
    documents.append(
        _secret(
            "alea-identity-signing",
            {"kek": base64.b64decode(material["identity-signing-kek"])},
        )
    )
    documents.append(
        _secret(
            "alea-files-master-keys", {"keys": f"k8s-1:{material['files-master-key']}".encode()}
        )
    )
    documents.append(
        _secret(
            "alea-admin-audit-signing",
            {"key": base64.b64decode(material["admin-audit-signing-key"])},
        )
    )
    urls = {
        service: f"postgresql+asyncpg://alea_{service}:{material[f'postgres-{service}']}"
        f"@{postgres_host}:5432/alea_{service}"
        for service in SERVICES
    }
    urls["simulation-keda"] = (
        f"postgresql://alea_simulation:{material['postgres-simulation']}"
        f"@{postgres_host}:5432/alea_simulation?sslmode=disable"
    )
    documents.append(_secret("alea-database", {k: v.encode() for k, v in urls.items()}))
    passwords = {service: material[f"postgres-{service}"].encode() for service in SERVICES}
    documents.append(
        _secret(
            "alea-postgres",
            {"superuser-password": material["postgres-superuser"].encode(), **passwords},
        )
    )
    return documents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory for secrets.yaml and pki/")
    parser.add_argument(
        "--postgres-host",
        default="postgres",
        help="host in the database URLs (default: the postgres component's Service)",
    )
    args = parser.parse_args(argv)
    documents = build(args.out, args.postgres_host)
    target = args.out / "secrets.yaml"
    fd = os.open(target.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        # One JSON document per Secret: valid YAML for kubectl, no YAML library needed.
        file.writelines(f"---\n{json.dumps(document, indent=2)}\n" for document in documents)
    target.with_suffix(".tmp").replace(target)
    print(f"wrote {target} ({len(documents)} Secrets) and {args.out / 'pki'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
