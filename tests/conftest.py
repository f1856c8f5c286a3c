"""Shared fixtures: the real sample files in ../shared/realdata and small self-made ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REALDATA = Path(os.environ.get("CAPBUILD_REALDATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata"))

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def realdata() -> Path:
    """../shared/realdata, or a skip that says why."""
    if not REALDATA.is_dir():
        pytest.skip(f"real sample data not found at {REALDATA} (set CAPBUILD_REALDATA or clone ../shared beside)")
    return REALDATA.resolve()
