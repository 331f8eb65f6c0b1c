"""Where the shared reference material lives (read in place, never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC_CONFIGS = REPO.parent / "shared" / "spec" / "configs"


def spec_configs() -> Path:
    """The SPIRE config corpus; skipped when absent, a failure in CI (where it must exist)."""
    if not SPEC_CONFIGS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SPEC_CONFIGS} is missing in CI")
        pytest.skip(f"{SPEC_CONFIGS} is not present")
    return SPEC_CONFIGS
