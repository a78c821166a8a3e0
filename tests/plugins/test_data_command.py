"""`imrec data get / verify / info` through the plugin's own sub-parser, with --from a local mirror (and a
simulated network: the real one is never contacted), plus the plugin's registrations."""

from __future__ import annotations

import argparse
import hashlib
import inspect
import io
import json
import shutil
import urllib.error
from pathlib import Path

import pytest

import imrec_data
from imrec.errors import DataError
from imrec_data import download
from imrec_data.manifest import BUNDLES

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich tables on one line each, so the assertions can read them


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="imrec")
    imrec_data.register_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_get_from_relative_mirror_then_again(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert run("data", "get", "mosi-bclstm", "--from", "../shared/data", "--dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "12 files" in out and "12 written" in out
    for entry in BUNDLES["mosi-bclstm"].files:
        assert sha(tmp_path / "mosi_bclstm" / entry.name) == entry.sha256
    assert not list((tmp_path / "mosi_bclstm").glob(".*part"))
    assert run("data", "get", "mosi-bclstm", "--from", "../shared/data", "--dir", str(tmp_path)) == 0
    assert "0 written, 12 already present" in capsys.readouterr().out


def test_get_verify_info_with_the_data_dir_variable(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMREC_DATA_DIR", str(tmp_path))
    assert run("data", "get", "handwritten", "--from", str(shared_data)) == 0
    assert run("data", "get", "mosi-bclstm", "--from", str(shared_data)) == 0
    capsys.readouterr()
    assert run("data", "verify") == 0
    out = capsys.readouterr().out
    assert out.count(" ok ") == 13
    assert run("data", "info", "handwritten") == 0
    out = capsys.readouterr().out
    assert "1400×240" in out and "0:140 1:140" in out and "400×6" in out
    assert run("data", "info", "mosi-bclstm", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "data.mosi-bclstm"
    sizes = {k: v["n"] for k, v in info["splits"].items()}
    assert sizes["train"] + sizes["valid"] == 1447 and sizes["test"] == 752
    assert info["splits"]["test"]["modalities"]["audio"]["shape"] == [752, 73]
    assert info["splits"]["train"]["modalities"]["text"]["nonfinite"] == 0
    assert -3 <= info["splits"]["train"]["labels"]["min"] < 0 < info["splits"]["train"]["labels"]["max"] <= 3


def test_verify_reports_corrupted_and_missing(shared_data, tmp_path, capsys):
    assert run("data", "get", "mosi-bclstm", "--from", str(shared_data), "--dir", str(tmp_path)) == 0
    (tmp_path / "mosi_bclstm" / "transcripts.csv").write_text("tampered")
    (tmp_path / "mosi_bclstm" / "video_test0.csv").unlink()
    capsys.readouterr()
    assert run("data", "verify", "mosi-bclstm", "--dir", str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert "mismatch" in out and "missing" in out and "imrec data get mosi-bclstm" in out
    # get repairs exactly what is wrong
    assert run("data", "get", "mosi-bclstm", "--from", str(shared_data), "--dir", str(tmp_path)) == 0
    assert "2 written, 10 already present" in capsys.readouterr().out
    assert run("data", "verify", "mosi-bclstm", "--dir", str(tmp_path)) == 0


def test_verify_empty_dir(tmp_path, capsys):
    assert run("data", "verify", "--dir", str(tmp_path)) == 0
    assert "nothing to verify" in capsys.readouterr().out
    assert run("data", "verify", "handwritten", "--dir", str(tmp_path)) == 1


def test_mirror_with_a_bad_file_writes_nothing(shared_data, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(shared_data / "handwritten", mirror / "handwritten")
    target = mirror / "handwritten" / "handwritten_6views.mat"
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DataError, match="differs from the pinned"):
        run("data", "get", "handwritten", "--from", str(mirror), "--dir", str(tmp_path / "d"))
    assert not any((tmp_path / "d" / "handwritten").iterdir())  # neither the file nor a temporary
    with pytest.raises(DataError, match="handwritten/handwritten_6views.mat"):
        run("data", "get", "handwritten", "--from", str(tmp_path / "d"), "--dir", str(tmp_path / "e"))


def sdk_folds_module(folds: dict[str, list[str]]) -> str:
    """The SDK's cmu_*_std_folds.py as published: three list literals."""
    return "".join(f"standard_{k}_fold={folds[k]!r}\n" for k in ("train", "valid", "test"))


def test_download_path_builds_urls_checks_sums_and_parses_sdk_folds(shared_data, tmp_path, monkeypatch, capsys):
    served = {}
    for bundle in BUNDLES.values():
        for entry in bundle.files:
            local = shared_data / bundle.folder / entry.name
            if entry.transform == "sdk_folds":
                served[entry.source.url] = sdk_folds_module(json.loads(local.read_text())).encode()
            else:
                served[entry.source.url] = local.read_bytes()
    requested = []

    def fake_open(url):
        requested.append(url)
        return io.BytesIO(served[url]), len(served[url])

    monkeypatch.setattr(download, "open_url", fake_open)
    assert run("data", "get", "all", "--dir", str(tmp_path)) == 0
    assert "https://raw.githubusercontent.com/hanmenghan/TMC/08d0ca4c4461b6de1cf73514d8c621598bc2b504/TMC%20ICLR/datasets/handwritten_6views.mat" in requested
    assert (
        "https://raw.githubusercontent.com/CMU-MultiComp-Lab/CMU-MultimodalSDK/4f2eadcd7e7b9e20e83b868cdad385b41830285c/"
        "mmsdk/mmdatasdk/dataset/standard_datasets/CMU_MOSI/cmu_mosi_std_folds.py" in requested
    )
    assert len(requested) == 13
    for bundle in BUNDLES.values():
        for entry in bundle.files:
            assert sha(tmp_path / bundle.folder / entry.name) == entry.sha256, entry.name


def test_network_failure_names_the_url_and_suggests_from(tmp_path, monkeypatch):
    def offline(url):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "open_url", offline)
    with pytest.raises(DataError) as err:
        run("data", "get", "handwritten", "--dir", str(tmp_path))
    msg = str(err.value)
    assert "https://raw.githubusercontent.com/hanmenghan/TMC/" in msg and "name resolution" in msg
    assert "imrec data get handwritten --from DIR" in msg
    assert not any((tmp_path / "handwritten").iterdir())


def test_sdk_folds_parser_rejects_other_modules():
    assert download.parse_sdk_folds(sdk_folds_module({"train": ["a"], "valid": ["b"], "test": [1]}), "x") == {
        "train": ["a"], "valid": ["b"], "test": ["1"]
    }
    with pytest.raises(DataError, match="lacks the list"):
        download.parse_sdk_folds("standard_train_fold=['a']\n", "x")
    with pytest.raises(DataError, match="not Python"):
        download.parse_sdk_folds("<html>404</html>", "x")


def test_unknown_names_and_bad_params(tmp_path, capsys):
    with pytest.raises(DataError, match="no downloadable dataset named 'mmsa'"):
        run("data", "get", "mmsa", "--dir", str(tmp_path))
    with pytest.raises(DataError, match="its parameters are: preset"):
        run("data", "info", "synthetic", "-p", "bogus=1")
    assert run("data", "info", "data.synthetic", "-p", "sizes=[12, 4, 4]", "-p", "task=classification", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["splits"]["valid"]["n"] == 4 and sum(info["splits"]["train"]["labels"]["counts"].values()) == 12


def test_info_reports_load_notes(tmp_path, capsys):
    from imrec_data.synthetic import Synthetic

    import numpy as np

    folder = tmp_path / "mine"
    folder.mkdir()
    for split, s in Synthetic(sizes=[6, 3, 3], lengths=[None, None, None]).load().items():
        mods = dict(s.modalities)
        if split == "train":
            mods["audio"] = mods["audio"].copy()
            mods["audio"][0, 0] = np.inf
        np.savez(folder / f"{split}.npz", labels=s.labels, **mods)
    assert run("data", "info", "npz", "-p", f"folder={folder}", "-p", "nonfinite=zero", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert any("train/audio: 1 non-finite values (1 +inf)" in n for n in info["notes"])


def test_registrations_and_signatures():
    from imrec.plugins import get_registry

    registered = {}
    imrec_data.register_datasets(lambda name, factory: registered.setdefault(name, factory))
    # Registered by name ("module:Class", imported on first use): what the registry's entries resolve to.
    from imrec.registry import Entry

    registered = {n: Entry("dataset", n, f, "data").factory for n, f in registered.items()}
    assert registered == {f"data.{k}": v for k, v in imrec_data.DATASETS.items()}
    names = get_registry().names("dataset")
    for short, factory in imrec_data.DATASETS.items():
        assert f"data.{short}" in names
        doc = inspect.getdoc(factory)
        assert doc and len(doc.splitlines()[0]) > 20
        params = inspect.signature(factory).parameters.values()
        assert all(p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params), short
        assert all(p.annotation is not inspect.Parameter.empty for p in params), short


def test_through_the_imrec_cli(shared_data, tmp_path, capsys):
    cli = pytest.importorskip("imrec.cli")
    assert cli.main(["data", "get", "handwritten", "--from", str(shared_data), "--dir", str(tmp_path)]) == 0
    assert cli.main(["data", "info", "handwritten", "--dir", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):])["splits"]["test"]["n"] == 400
    assert cli.main(["data", "info", "mosi-bclstm", "--dir", str(tmp_path)]) == 2
    assert "imrec data get mosi-bclstm" in capsys.readouterr().err
