"""buf lint and build pass; scripts/check_breaking.sh catches breaking changes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.contracts.protos import ROOT

BUF = shutil.which("buf", path=str(ROOT / ".venv" / "bin")) or shutil.which("buf") or ""
pytestmark = pytest.mark.skipif(not BUF, reason="buf is not installed (pip install buf-bin)")


def run(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, check=False, env=os.environ | env
    )


def test_buf_lint() -> None:
    result = run(BUF, "lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_protos_are_buf_formatted() -> None:
    result = run(BUF, "format", "--diff", "--exit-code", "protos")
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_build(tmp_path: Path) -> None:
    result = run(BUF, "build", "-o", str(tmp_path / "image.binpb"))
    assert result.returncode == 0, result.stderr


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Alea CI", "-c", "user.email=ci@alea.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose first commit has no protos and whose second adds today's."""
    (tmp_path / "README.md").write_text("Alea\n")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "README.md")
    git(tmp_path, "commit", "-q", "-m", "start")
    for path in ("protos", "third_party", "scripts"):
        shutil.copytree(ROOT / path, tmp_path / path, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "buf.yaml", tmp_path)
    git(tmp_path, "add", "buf.yaml", "protos", "third_party", "scripts")
    git(tmp_path, "commit", "-q", "-m", "contracts")
    return tmp_path


def check_breaking(repo: Path, *ref: str) -> subprocess.CompletedProcess[str]:
    return run(str(repo / "scripts" / "check_breaking.sh"), *ref, cwd=repo, BUF=BUF)


def test_breaking_passes_when_the_previous_commit_has_no_protos(repo: Path) -> None:
    result = check_breaking(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "has no protos" in result.stdout


def test_breaking_passes_for_compatible_changes(repo: Path) -> None:
    proto = repo / "protos/alea/identity/v1/identity.proto"
    addition = "\n// A message added later.\nmessage Added {\n  // A field.\n  string a = 1;\n}\n"
    proto.write_text(proto.read_text() + addition)

    result = check_breaking(repo, "HEAD")

    assert result.returncode == 0, result.stdout + result.stderr


def test_breaking_fails_naming_a_deleted_field(repo: Path) -> None:
    proto = repo / "protos/alea/identity/v1/identity.proto"
    text = proto.read_text()
    assert "  string tenant_display_name = 1" in text
    deleted = text.replace("  string tenant_display_name = 1", "  reserved 1;\n  string x = 9")
    proto.write_text(deleted)

    result = check_breaking(repo, "HEAD")

    assert result.returncode != 0
    assert 'name "tenant_display_name" on message "RegisterRequest" was deleted' in result.stdout
