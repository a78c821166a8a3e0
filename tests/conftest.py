"""Test-wide settings: no third-party plugins are autoloaded; where the real data is (the CLI's own lookup)."""

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


def real_data_candidates() -> list[Path]:
    """Where tests look for the real datasets, in order: the data directory `imrec data get` fills and the
    datasets read ($IMREC_DATA_DIR, else ~/.cache/imrec/data: imrec_data.paths.data_dir), then the shared
    ../shared/data of a development checkout."""
    from imrec_data.paths import data_dir

    return [data_dir(), SHARED_DATA]


def find_real_data() -> Path | None:
    """The first candidate folder holding every file of every dataset of the manifest (`imrec data get all`)."""
    from imrec_data.manifest import BUNDLES

    for root in real_data_candidates():
        if all((root / b.folder / f.name).is_file() for b in BUNDLES.values() for f in b.files):
            return root.resolve()
    return None


REAL_DATA = find_real_data()  # once per session: the environment variable is read before tests change it


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data (see find_real_data); the test is skipped, saying where it looked, when there is none."""
    if REAL_DATA is None:
        looked = ", ".join(str(p) for p in real_data_candidates())
        pytest.skip(f"real data not found (looked in {looked}); get it with `imrec data get all`")
    return REAL_DATA
