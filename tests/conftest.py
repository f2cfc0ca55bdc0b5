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


@pytest.fixture(autouse=True)
def never_download(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never touch the network: downloads are disabled and the cache is an empty directory."""
    monkeypatch.setenv("PARITY_OFFLINE", "1")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path_factory.mktemp("parity-cache")))
    monkeypatch.delenv("PARITY_DATA_DIR", raising=False)
