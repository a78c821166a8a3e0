"""docs/api.md's Python blocks run as written, in order, in one namespace: the quickstart at a small budget, load,
predict on five hand-made samples (text missing for two), the export of TEST features for `imrec predict`."""

import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "api.md"


def _python_blocks():
    return re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)


def test_api_doc_session_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks()
    assert len(blocks) == 3
    (tmp_path / "recipes").symlink_to(REPO / "recipes")  # the page runs from a folder holding recipes/
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - the documentation's own code
    out = namespace["out"]
    assert out.values.shape == (5,) and np.isfinite(out.values).all()
    assert out.available[:, 0].tolist() == [True, False, True, False, True]
    assert out.recovered["text"].shape == (5, 50, 32) and np.isfinite(out.recovered["text"][[1, 3]]).all()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("runs/quickstart/") and printed[3] == "('text', 'audio', 'vision')"
    exported = np.load(tmp_path / "test_features.npz")
    assert exported["text"].shape == (16, 50, 768) and len(exported["ids"]) == 16
