"""Shared test fixtures."""

import functools
import http.server
import threading
from pathlib import Path

import pytest
from saved_runs import train_saved_runs

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


@pytest.fixture
def served(tmp_path: Path):
    """Files of tmp_path/served behind http://127.0.0.1:PORT/ (a loopback server, stopped after the test)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def saved_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{model id: RUN_DIR} of three tiny `--save` runs (tests/saved_runs.py), trained once per session."""
    return train_saved_runs(tmp_path_factory.mktemp("saved-runs"))
