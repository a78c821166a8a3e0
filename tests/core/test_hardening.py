"""Hardening: bad input and faults through the CLI, each a clear message, the right exit code, no traceback.

One test per case of the probe in issue 15 (and each new case found later): hostile or careless recipes, crafted
data files and checkpoints, damaged run directories, unusable output paths, broken plugins, stale bench cells.
Every case runs the CLI (its ``main()``, or a subprocess where the process matters) and asserts the exit code,
the message and that no traceback is shown. Set ``IMREC_HARDENING_TABLE=FILE`` to write the table of cases
(case, exit code, first line of the message) as JSON.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from imrec import plugins
from imrec.cli import main

TESTS = Path(__file__).resolve().parents[1]
TINY = TESTS / "recipes" / "tiny_zero_fill.yaml"
SMALL = ["train.phases.pretrain.epochs=1", "train.phases.recover.epochs=1", "data.sizes=[24, 12, 12]",
         "eval.conditions=[{name: random, rates: [0.0]}]"]
TABLE: list[tuple[str, int, str]] = []


@pytest.fixture(scope="module", autouse=True)
def _write_table():
    yield
    target = os.environ.get("IMREC_HARDENING_TABLE")
    if target:
        Path(target).write_text(json.dumps(TABLE, indent=1, ensure_ascii=False) + "\n")


def cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def expect(case: str, result: tuple[int, str, str], rc: int, *texts: str) -> str:
    """Assert exit code, message fragments and no traceback; record the case for the table. Returns stderr."""
    code, out, err = result
    lines = [l.strip() for l in err.strip().splitlines() if not l.startswith("imrec: warning:")] or [""]
    first = lines.pop(0)
    while lines and (first.endswith(":") or first.startswith("FAIL ")):  # a heading: show its first item too
        first += " " + lines.pop(0)
    TABLE.append((case, code, first[:240]))
    assert code == rc, f"{case}: exit {code}, expected {rc}\n{err}"
    assert "Traceback" not in err + out, err
    assert "weights_only=False" not in err  # never advise the unsafe load
    for text in texts:
        assert text in err, f"{case}: {text!r} not in:\n{err}"
    return err


# ------------------------------------------------------------------------------------------------ recipes
def _alias_bomb(depth: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, depth):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\nname: *a{depth - 1}\n"


def test_alias_bomb_is_refused_quickly(tmp_path, capsys):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb())
    start = time.perf_counter()
    err = expect("recipe: YAML alias bomb (billion laughs)", cli(capsys, "validate", bomb), 2,
                 "values once its aliases", str(bomb))
    assert time.perf_counter() - start < 10 and len(err) < 2000


def test_alias_bomb_in_an_override_is_refused(capsys):
    levels = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]"
                                                       for i in range(1, 7)]
    expect("override: alias bomb in a value", cli(capsys, "cat", TINY, f"description=[{', '.join(levels)}]"), 2,
           "values once its aliases")


def test_deeply_nested_recipe_is_refused(tmp_path, capsys):
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: x\ndata: " + "[" * 3000 + "]" * 3000 + "\n")
    expect("recipe: list nested 3000 deep", cli(capsys, "validate", deep), 2, "nesting deeper than 64 levels")


def test_deeply_nested_override_is_refused(capsys):
    expect("override: value nested 200 deep", cli(capsys, "cat", TINY, "seeds=" + "[" * 200 + "]" * 200), 2,
           "nesting deeper than 64 levels")


def test_huge_values_are_not_echoed_whole(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text(f"extends: {TINY}\nname: \"{'a b' * 200_000}\"\ndevice: \"{'x' * 200_000}\"\n"
                   f"model: {{head: {{name: \"{'y' * 200_000}\"}}}}\n")
    err = expect("recipe: 600 kB strings in name, device, head", cli(capsys, "validate", big), 2,
                 "cannot name a run directory", "unknown device", "unknown head")
    assert len(err) < 5000


# ------------------------------------------------------------------------------------------------ plugins
def _third_party(tmp_path: Path, monkeypatch, modules: dict[str, str]) -> None:
    """Installs (on sys.path) a distribution with one entry point per module, as pip would."""
    dist = tmp_path / "probe_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[imrec]\n" + "".join(f"{n} = {n}_mod\n" for n in modules))
    for name, code in modules.items():
        (tmp_path / f"{name}_mod.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("IMREC_LOAD_PLUGINS", raising=False)
    plugins.reset()


BROKEN = "raise ImportError('needs the package frobnicate')\n"
HOOK_RAISES = ("from imrec import hookimpl\n"
               "@hookimpl\ndef register_heads(register):\n    register('hooky.head', dict)\n"
               "@hookimpl\ndef register_recoverers(register):\n    raise ValueError('hook exploded')\n")
COMMANDS_RAISE = ("from imrec import hookimpl\n"
                  "@hookimpl\ndef register_commands(subparsers):\n    raise KeyError('no parser')\n")


def test_a_plugin_that_fails_to_import_does_not_stop_help_version_plugins(tmp_path, monkeypatch, capsys):
    _third_party(tmp_path, monkeypatch, {"broken": BROKEN})
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    assert out.startswith("imrec ") and err.count("plugin 'broken'") == 1 and "IMREC_LOAD_PLUGINS" in err
    assert "needs the package frobnicate" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    assert "usage: imrec" in out and "plugin 'broken'" not in err  # reported once per process
    plugins.reset()
    rc, out, err = cli(capsys, "plugins", "--json")
    TABLE.append(("plugin: fails to import; `imrec plugins`", rc, err.strip().splitlines()[0][:160]))
    assert rc == 0 and "Traceback" not in err
    row = {p["name"]: p for p in json.loads(out)}["broken"]
    assert "needs the package frobnicate" in row["error"] and "IMREC_LOAD_PLUGINS" in row["error"]
    plugins.reset()
    rc, out, _ = cli(capsys, "list", "recoverer")  # a command that does not need it
    assert rc == 0 and "baselines.zero_fill" in out


def test_a_plugin_whose_hooks_raise_is_reported_once_and_left_out(tmp_path, monkeypatch, capsys):
    _third_party(tmp_path, monkeypatch, {"hooky": HOOK_RAISES, "cmdy": COMMANDS_RAISE})
    rc, out, err = cli(capsys, "list", "head")
    TABLE.append(("plugin: register hooks raise; `imrec list`", rc, err.strip().splitlines()[0][:160]))
    assert rc == 0 and "rohydr.regression" in out and "Traceback" not in err
    assert "hooky.head" not in out  # a plugin that failed part-way is left out whole
    assert err.count("plugin 'cmdy'") == 1 and "register_commands: KeyError: 'no parser'" in err
    assert err.count("plugin 'hooky'") == 1 and "register_recoverers: ValueError: hook exploded" in err
    assert "IMREC_LOAD_PLUGINS" in err


def test_unknown_plugin_name_in_the_env_var_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("IMREC_LOAD_PLUGINS", "nosuch")
    plugins.reset()
    expect("IMREC_LOAD_PLUGINS=nosuch", cli(capsys, "list", "recoverer"), 2,
           "IMREC_LOAD_PLUGINS names 'nosuch', which is not an installed imrec plugin")


def test_a_component_raising_names_its_plugin(tmp_path, monkeypatch, capsys):
    (tmp_path / "boomplug.py").write_text(
        "from imrec import hookimpl\n"
        "class Boom:\n    'A dataset that fails.'\n"
        "    def __init__(self):\n        pass\n"
        "    @property\n    def spec(self):\n        raise ZeroDivisionError('division by zero in the spec')\n"
        "@hookimpl\ndef register_datasets(register):\n    register('boom.data', Boom)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    plugins.register_plugin(importlib.import_module("boomplug"), name="boomplug")
    err = expect("plugin: a component raises", cli(capsys, "run", TINY, "data=boom.data", "--dry-run"), 1,
                 "ZeroDivisionError: division by zero in the spec", "in plugin 'boomplug'", "--traceback")
    assert len(err.strip().splitlines()) == 1


def test_traceback_flag_and_debug_variable_show_the_trace(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMREC_DEBUG", "0")  # main sets it for --traceback; monkeypatch restores it afterwards
    deep = tmp_path / "missing.yaml"
    rc, _, err = cli(capsys, "run", deep, "--traceback")
    assert rc == 2 and "Traceback" in err and "no such recipe file" in err
    monkeypatch.setenv("IMREC_DEBUG", "0")
    rc, _, err = cli(capsys, "run", deep)
    assert rc == 2 and "Traceback" not in err


# ------------------------------------------------------------------------------------------------ data files
def test_mmsa_memory_bombs_are_refused(tmp_path, capsys):
    # 10**11 bytes asked for by ~40-byte pickles that use only the allowed globals.
    bombs = {
        "bytearray": b"\x80\x02c__builtin__\nbytearray\nq\x00\x8a\x05\x00\xe8vH\x17\x85q\x01Rq\x02.",
        "ndarray": b"\x80\x02cnumpy\nndarray\nq\x00\x8a\x05\x00\xe8vH\x17\x85q\x01\x85Rq\x02.",
        "_reconstruct": b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n\x8a\x05\x00\xe8vH\x17"
                        b"\x85C\x01b\x87R.",
    }
    for what, data in bombs.items():
        path = tmp_path / f"{what}.pkl"
        path.write_bytes(data)
        expect(f"MMSA pickle: {what} of 10**11 bytes ({len(data)}-byte file)",
               cli(capsys, "run", TINY, f"data={{name: data.mmsa, path: {path}}}", "--dry-run"), 2,
               f"{path}: refused to load", "bytes")


def test_mmsa_object_array_state_bomb_is_refused(tmp_path, capsys):
    from numpy._core import multiarray

    class Crafted:  # an object array whose BUILD state claims 10**10 elements
        def __reduce__(self):
            return (multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                    (1, (10**10,), np.dtype("O"), False, [1]))

    path = tmp_path / "state.pkl"
    path.write_bytes(pickle.dumps(Crafted(), protocol=2))
    expect("MMSA pickle: object-array state of 10**10 elements",
           cli(capsys, "run", TINY, f"data={{name: data.mmsa, path: {path}}}", "--dry-run"), 2,
           "refused to load", "80,000,000,000 bytes")


def _npy_header_bomb(path: Path) -> None:
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**10, 6, 12)}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 64)


def test_npy_header_claiming_a_huge_shape_is_refused(tmp_path, capsys):
    folder = _npz_folder(tmp_path)
    npy = tmp_path / "npy"
    for split in ("train", "valid", "test"):
        with np.load(folder / f"{split}.npz") as z:
            (npy / split).mkdir(parents=True)
            for k in z.files:
                np.save(npy / split / f"{k}.npy", z[k])
    _npy_header_bomb(npy / "train" / "text.npy")
    expect("npy folder: header claims 10**10 rows", cli(capsys, "run", TINY, f"data={{name: data.npy, "
           f"folder: {npy}, mmap: false}}", f"output_dir={tmp_path}/runs", "--dry-run"), 2,
           "text.npy: its header declares shape (10000000000, 6, 12)")


def test_npz_member_claiming_a_huge_shape_is_refused(tmp_path, capsys):
    folder = _npz_folder(tmp_path)
    member = tmp_path / "text.npy"
    _npy_header_bomb(member)
    arrays = dict(np.load(folder / "valid.npz"))
    with zipfile.ZipFile(folder / "valid.npz", "w") as z:
        for k, v in arrays.items():
            if k == "text":
                z.write(member, "text.npy")
            else:
                np.save(tmp_path / f"{k}.npy", v)
                z.write(tmp_path / f"{k}.npy", f"{k}.npy")
    expect("npz: member header claims 10**10 rows", cli(capsys, "run", TINY, f"data={{name: data.npz, folder: "
           f"{folder}}}", "--dry-run"), 2, "valid.npz", "its header declares shape (10000000000, 6, 12)")


# ------------------------------------------------------------------------------------------------ unusable data
def _npz_folder(tmp_path: Path, sizes=(16, 8, 8), task="regression", labels=None, present=None) -> Path:
    """Tiny npz data shaped like the tiny recipe's synthetic data (text 6×12, audio 6×5, vision 6×7)."""
    folder = tmp_path / "npz"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "valid", "test"), sizes):
        arrays = {m: rng.standard_normal((n, 6, d)).astype(np.float32)
                  for m, d in (("text", 12), ("audio", 5), ("vision", 7))}
        if labels is not None:
            arrays["labels"] = labels(n)
        else:
            arrays["labels"] = (rng.integers(0, 3, n) if task == "classification"
                                else rng.uniform(-3, 3, n).astype(np.float32))
        arrays["ids"] = np.array([f"{split}-{i}" for i in range(n)], dtype=str)
        if present is not None:
            arrays["present"] = present(n)
        np.savez(folder / f"{split}.npz", **arrays)
    return folder


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_an_empty_split_is_refused(split, tmp_path, capsys):
    sizes = tuple(0 if s == split else n for s, n in zip(("train", "valid", "test"), (16, 8, 8)))
    folder = _npz_folder(tmp_path, sizes)
    expect(f"data: empty {split.upper()} split", cli(capsys, "run", TINY, f"data={{name: data.npz, folder: "
           f"{folder}}}", f"output_dir={tmp_path}/runs", "--quiet"), 2, f"the {split} split is empty (0 samples)")
    assert not (tmp_path / "runs").exists()  # refused before a run directory was made


def test_all_false_availability_is_refused(tmp_path, capsys):
    folder = _npz_folder(tmp_path, present=lambda n: np.zeros((n, 3), dtype=bool))
    expect("data: availability all False", cli(capsys, "run", TINY, f"data={{name: data.npz, folder: {folder}}}",
           f"output_dir={tmp_path}/runs", "--quiet"), 2, "has any modality available", "all False")


def test_single_class_labels_are_refused(tmp_path, capsys):
    folder = _npz_folder(tmp_path, task="classification", labels=lambda n: np.zeros(n, dtype=np.int64))
    expect("data: single-class labels", cli(capsys, "run", TINY, f"data={{name: data.npz, folder: {folder}, "
           f"task: classification, num_classes: 2}}", "head=rohydr.classification", "train.select.metric=acc",
           f"output_dir={tmp_path}/runs", "--quiet"), 2, "a classifier needs at least two classes")


def test_a_selection_metric_that_does_not_fit_the_task_is_refused(capsys):
    expect("recipe: classification selected on mae", cli(capsys, "run", TINY, "data.task=classification",
           "data.num_classes=3", "head=rohydr.classification", "--dry-run"), 2,
           "train.phases.pretrain.select.metric: 'mae' is not computed for this classification task", "acc")


# ------------------------------------------------------------------------------------------------ run directories
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One tiny finished run (seed 7), copied by the tests that damage it."""
    from imrec.config import load_recipe
    from imrec.progress import Reporter
    from imrec.runner import run_recipe

    out = tmp_path_factory.mktemp("hardening")
    plugins.reset()
    recipe = load_recipe(TINY, [*SMALL, f"output_dir={out}"])
    return run_recipe(recipe, None, Reporter(enabled=False))


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


def _unfinished(run: Path, tmp_path: Path, state: bytes | object) -> Path:
    """A copy whose seed is interrupted: no test.json, the given state.pt."""
    dst = _copy(run, tmp_path)
    (dst / "seeds" / "7" / "test.json").unlink()
    target = dst / "seeds" / "7" / "state.pt"
    if isinstance(state, bytes):
        target.write_bytes(state)
    else:
        torch.save(state, target)
    return dst


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("case, state, message", [
    ("empty", b"", "the checkpoint is empty (0 bytes"),
    ("crafted pickle", pickle.dumps(_Evil()), "refused to load"),
    ("truncated", b"PK\x03\x04" + b"\0" * 40, "not a readable PyTorch checkpoint"),
    ("other content", {"weights": torch.zeros(2)}, "not an imrec checkpoint of this kind"),
])
def test_a_damaged_resume_state_is_a_message(finished_run, tmp_path, capsys, case, state, message):
    run = _unfinished(finished_run, tmp_path, state)
    expect(f"resume: state.pt {case}", cli(capsys, "run", "--resume", run, "--quiet"), 2,
           f"{run / 'seeds' / '7' / 'state.pt'}: {message}", f"delete {run / 'seeds' / '7'}")


def test_a_damaged_final_checkpoint_is_a_message_in_eval(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    (run / "seeds" / "7" / "phase-recover.pt").write_bytes(pickle.dumps(_Evil()))
    expect("eval: crafted phase checkpoint", cli(capsys, "eval", run), 2, "phase-recover.pt: refused to load")


@pytest.mark.parametrize("case, content, message", [
    ("empty", b"", "the checkpoint is empty"), ("crafted", pickle.dumps(_Evil()), "refused to load")])
def test_a_bad_init_from_file_is_a_message(tmp_path, capsys, case, content, message):
    ckpt = tmp_path / "init.pt"
    ckpt.write_bytes(content)
    expect(f"init_from: {case} file", cli(capsys, "run", TINY, *SMALL, f"train.phases.pretrain.init_from={ckpt}",
           f"output_dir={tmp_path}/runs", "--quiet"), 2, f"{ckpt}: {message}", "init_from")


def test_a_corrupt_test_json_on_resume_is_a_message(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    (run / "seeds" / "7" / "test.json").write_text('{"seed": 7, "conditions": {')
    expect("resume: corrupt test.json", cli(capsys, "run", "--resume", run, "--quiet"), 2,
           "test.json: not readable JSON", f"delete {run / 'seeds' / '7'}")


def test_temporary_files_left_by_a_kill_are_removed_on_resume(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    left = [run / "seeds" / "7" / ".state.pt.abc123.tmp", run / ".summary.json.def456.tmp"]
    for path in left:
        path.write_bytes(b"")
    rc, out, err = cli(capsys, "run", "--resume", run, "--quiet")
    TABLE.append(("resume: 0-byte .tmp files left by kill -9", rc, out.strip().splitlines()[-1][-60:]))
    assert rc == 0 and "Traceback" not in err
    assert not any(p.exists() for p in left)


# ------------------------------------------------------------------------------------------------ output paths
def test_an_output_dir_that_is_a_file_is_a_message(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    expect("output_dir is a file", cli(capsys, "run", TINY, *SMALL, f"output_dir={blocker}", "--quiet"), 2,
           f"cannot create the run directory under output_dir '{blocker}'", "output_dir=PATH")


def _read_only_location(tmp_path: Path) -> Path:
    """A folder this process cannot create anything in: /sys (read-only even for root), else a chmod-ed one."""
    probe = Path("/sys/imrec-hardening-probe")
    try:
        probe.mkdir()
    except OSError:
        return probe / "out"
    probe.rmdir()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):
        pytest.skip("no read-only location available here")
    return ro / "out"


def test_a_read_only_output_dir_is_a_message(tmp_path, capsys):
    target = _read_only_location(tmp_path)
    expect("output_dir read-only", cli(capsys, "run", TINY, *SMALL, f"output_dir={target}", "--quiet"), 2,
           "cannot create the run directory", "output_dir=PATH")


def test_a_full_disk_is_a_message(tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    err = expect("disk full while writing the run", cli(capsys, "run", TINY, *SMALL, f"output_dir={tmp_path}",
                 "--quiet"), 1, "No space left on device", "the disk is full", "imrec run --resume")
    assert "recipe.yaml" in err.splitlines()[0]


# ------------------------------------------------------------------------------------------------ bench
def _definition(tmp_path: Path, epochs: int) -> Path:
    defn = tmp_path / "board.yaml"
    defn.write_text(yaml.safe_dump({
        "board": "probe", "seeds": [7],
        "overrides": [f"train.phases.pretrain.epochs={epochs}", *SMALL[1:]],
        "methods": [{"name": "zero_fill", "recipe": str(TINY)}],
        "reference": "zero_fill", "metrics": ["mae"],
        "output": {"work_dir": "work", "records": "records.jsonl", "leaderboard": "LEADERBOARD.md"},
    }))
    return defn


def test_bench_work_dir_that_is_a_file_is_a_message(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    expect("bench run --work-dir FILE", cli(capsys, "bench", "run", _definition(tmp_path, 1), "--work-dir", blocker),
           2, f"{blocker} is a file, not a folder")


def test_a_changed_definition_never_publishes_stale_results(tmp_path, capsys):
    defn = _definition(tmp_path, 1)
    rc, _, err = cli(capsys, "bench", "run", defn)
    assert rc == 0, err
    records, board = tmp_path / "records.jsonl", tmp_path / "LEADERBOARD.md"
    before = records.read_text(), board.read_text()
    _definition(tmp_path, 2)  # one override changed, the work directory kept
    err = expect("bench: changed override, work dir kept", cli(capsys, "bench", "run", defn), 1,
                 "1 cell(s) failed", "probe/zero_fill/seed 7:", "different recipe",
                 "train.phases.pretrain.epochs: 1 then, 2 now")
    assert (records.read_text(), board.read_text()) == before  # nothing regenerated from the old cell


# ------------------------------------------------------------------------------------------------ a real process
def test_the_process_prints_no_traceback(tmp_path):
    """The same boundary in a real `imrec` process, with a broken plugin installed and an alias bomb."""
    (tmp_path / "broken_mod.py").write_text(BROKEN)
    dist = tmp_path / "probe_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[imrec]\nbroken = broken_mod\n")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb())
    env = {k: v for k, v in os.environ.items() if k not in ("IMREC_LOAD_PLUGINS", "IMREC_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *filter(None, [env.get("PYTHONPATH")])])
    out = subprocess.run([sys.executable, "-m", "imrec", "validate", str(bomb)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.count("plugin 'broken'") == 1 and "values once its aliases" in out.stderr
