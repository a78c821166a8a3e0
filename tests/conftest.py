"""Test-wide settings: no third-party plugins are autoloaded; paths to the shared real data."""

import os

os.environ["IMREC_LOAD_PLUGINS"] = ""  # built-ins only (see imrec/plugins.py)
os.environ.setdefault("PYTHONHASHSEED", "0")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(autouse=True)
def _fresh_plugins(monkeypatch):
    """Every test starts from the built-in plugins only, whatever an earlier test registered."""
    monkeypatch.setenv("IMREC_LOAD_PLUGINS", "")
    from imrec import plugins

    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
