"""Shared test fixtures."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared course data (../shared/data beside the repo); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared course data not found at {SHARED_DATA}")
    return SHARED_DATA
