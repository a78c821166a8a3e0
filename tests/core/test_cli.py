"""End to end through the CLI on tiny data, and every kind of bad input: specific error, non-zero exit, no traceback."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from imrec import hookimpl, plugins
from imrec.cli import main

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
TINY = TESTS / "recipes" / "tiny_rohydr.yaml"


def imrec(*args, env=None, cwd=REPO):
    e = dict(os.environ, IMREC_LOAD_PLUGINS="", **(env or {}))
    return subprocess.run([sys.executable, "-m", "imrec", *args], capture_output=True, text=True, env=e, cwd=cwd,
                          timeout=300)


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_run_end_to_end_writes_run_directory(tmp_path):
    out = imrec("run", str(TINY), f"output_dir={tmp_path}", "train.phases.recover.epochs=1", "seeds=[3,4]")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    run_dir = Path(out.stdout.strip().splitlines()[-1])  # the very last line is the run directory
    assert run_dir.is_dir() and run_dir.parent == tmp_path / "tiny_rohydr"
    for name in ("recipe.yaml", "overrides.json", "environment.json", "summary.json"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "overrides.json").read_text()) == [
        f"output_dir={tmp_path}", "train.phases.recover.epochs=1", "seeds=[3,4]"]
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["seeds"] == [3, 4] and "determinism" in env and env["torch"]
    # The thread count is chosen, printed at the start, and recorded with where it came from.
    assert env["thread_choice"]["threads"] == env["threads"] and env["thread_choice"]["source"]
    assert out.stderr.startswith("threads: ")
    assert env["source_commit"] is None or len(env["source_commit"].split("+")[0]) == 40
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["seeds"] == [3, 4] and summary["ddof"] == 1
    assert summary["conditions"]["random/mr=0.30"]["recovery_mse_zero"]["n"] == 2  # recovery_mse's scale
    assert "TEST 4/4 fixed/text" in out.stderr and "phase ≤" in out.stderr  # progress with the time left
    assert "VALID mae measured under random/mr=0.50" in out.stderr and "not comparable" in out.stderr
    cell = summary["conditions"]["random/mr=0.30"]["mae"]
    assert cell["n"] == 2 and cell["std"] is not None
    for seed in (3, 4):
        sdir = run_dir / "seeds" / str(seed)
        test = json.loads((sdir / "test.json").read_text())
        assert set(test["conditions"]) == {"random/mr=0.00", "random/mr=0.30", "random/mr=0.60", "fixed/text"}
        lines = (sdir / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(l)["phase"] for l in lines] == ["pretrain", "pretrain", "recover"]
        assert (sdir / "best.pt").exists() and not (sdir / "state.pt").exists()
        from imrec.runs import safe_torch_load

        ckpt = safe_torch_load(sdir / "best.pt")
        assert ckpt["config"]["name"] == "tiny_rohydr" and "model" in ckpt
    assert "acc2_non0" in out.stdout and "random/mr=0.30" in out.stdout
    _check_eval(run_dir, tmp_path)


def _check_eval(run_dir, tmp_path):
    """`imrec eval` re-scores the finished run without changing it: TEST reproduces test.json exactly, VALID
    is scored at the rates asked for, and unusable input is a specific error."""
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    out = imrec("eval", str(run_dir), "--rates", "0", "0.3", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["split"] == "valid" and sorted(result["per_seed"]) == ["3", "4"]
    for seed_result in result["per_seed"].values():
        assert list(seed_result) == ["random/mr=0.00", "random/mr=0.30"]
        assert 0.0 < seed_result["random/mr=0.30"]["mae"] < 10.0
    assert result["summary"]["conditions"]["random/mr=0.30"]["mae"]["n"] == 2

    out = imrec("eval", str(run_dir), "--split", "test", "--out", str(tmp_path / "test_again.json"))
    assert out.returncode == 0, out.stderr and "TEST" in out.stdout
    again = json.loads((tmp_path / "test_again.json").read_text())
    for seed in (3, 4):
        original = json.loads((run_dir / "seeds" / str(seed) / "test.json").read_text())["conditions"]
        assert again["per_seed"][str(seed)] == original
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before  # nothing in the run changed

    # An inference setting changed without retraining: other DDIM step counts change the recovered scores and
    # leave complete data (no diffusion there) exactly as it was.
    out = imrec("eval", str(run_dir), "--split", "test", "--json", "--set", "model.recoverer.sample_steps=10")
    assert out.returncode == 0, out.stderr
    stepped = json.loads(out.stdout)
    assert stepped["overrides"] == ["model.recoverer.sample_steps=10"]
    for seed in ("3", "4"):
        assert stepped["per_seed"][seed]["random/mr=0.00"] == again["per_seed"][seed]["random/mr=0.00"]
        assert stepped["per_seed"][seed]["random/mr=0.30"]["mae"] != again["per_seed"][seed]["random/mr=0.30"]["mae"]
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before
    out = imrec("eval", str(run_dir), "--set", "train.batch_size=8")
    assert out.returncode != 0 and "only model settings" in out.stderr and "train.batch_size=8" in out.stderr
    out = imrec("eval", str(run_dir), "--set", "model.fuser.layers=3")
    assert out.returncode != 0 and "phase-recover.pt" in out.stderr and "do not fit" in out.stderr
    assert "Traceback" not in out.stderr

    out = imrec("eval", str(run_dir), "--split", "dev")
    assert out.returncode != 0 and "'dev'" in out.stderr and "valid" in out.stderr and "Traceback" not in out.stderr
    out = imrec("eval", str(run_dir), "--rates", "1.5")
    assert out.returncode != 0 and "[0, 1)" in out.stderr
    (run_dir / "seeds" / "4" / "phase-recover.pt").unlink()
    out = imrec("eval", str(run_dir))
    assert out.returncode != 0 and "seed 4 has not finished" in out.stderr and "--resume" in out.stderr
    out = imrec("eval", str(tmp_path))
    assert out.returncode != 0 and "not an imrec run directory" in out.stderr


def test_files_follow_the_umask(tmp_path):
    """Results are written with the permissions the umask gives (tempfile.mkstemp alone makes them 0600)."""
    from imrec.runs import atomic_write_json

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o077)
        atomic_write_json(tmp_path / "b.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600


def test_an_interrupted_run_prints_the_resume_command(tmp_path, capsys, monkeypatch):
    """Ctrl-C (and any failure) once the run directory exists ends with the command that continues the run."""
    import imrec.runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(imrec.runner, "_run_in", interrupted)
    assert main(["run", str(TINY), f"output_dir={tmp_path}", "--quiet"]) == 130
    err = capsys.readouterr().err
    run_dir = next((tmp_path / "tiny_rohydr").iterdir())
    assert "imrec: interrupted" in err and f"imrec: continue with: imrec run --resume {run_dir}" in err

    def failing(*args, **kwargs):
        raise imrec.runner.ImrecError("a component failed")

    monkeypatch.setattr(imrec.runner, "_run_in", failing)
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "a component failed" in err and f"continue with: imrec run --resume {run_dir}" in err
    # A failure before any run directory exists has nothing to resume.
    assert main(["run", str(TINY), "train.phases.nosuchphase.epochs=1"]) == 2
    assert "continue with" not in capsys.readouterr().err


def test_threads_and_device_options(tmp_path, capsys):
    out = imrec("run", str(TINY), "--dry-run", "--threads", "1", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    assert "device cpu" in out.stdout and "threads: 1 (from --threads;" in out.stdout
    assert main(["run", str(TINY), "--dry-run", "--threads", "0"]) == 2
    assert "--threads: the number of threads must be a whole number ≥ 1, got 0" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path), "--device", "cpu"]) == 2
    assert "--device" in capsys.readouterr().err
    assert main(["validate", str(TINY), "threads=0"]) == 2
    assert "threads must be ≥ 1" in capsys.readouterr().err


def test_version_command_and_validate_takes_overrides(capsys):
    from imrec import __version__

    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"imrec {__version__}"
    assert main(["validate", str(TINY), "seeds=[5]", "train.phases.nosuchphase.epochs=1"]) == 2
    assert "nosuchphase" in capsys.readouterr().err  # an override, not a file name
    assert main(["validate", str(TINY), "seeds=[5]", "threads=2"]) == 0
    assert main(["validate", "seeds=[5]"]) == 2
    assert "at least one recipe file" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["version"], ["plugins"], ["list", "recoverer"],
                                  ["list", "logger"], ["data", "--help"], ["bench", "--help"],
                                  ["predict", "--help"], ["schema"]])
def test_commands_that_do_not_compute_do_not_import_torch(argv):
    """`imrec --help` and friends stay fast: neither the CLI nor loading the plugins imports torch (nor the
    experiment trackers' packages)."""
    code = ("import sys; from imrec.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert not {'tensorboard', 'mlflow'} & set(sys.modules), 'a tracker was imported'\n")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ, IMREC_LOAD_PLUGINS=""), timeout=120)
    assert out.returncode == 0, out.stderr


def test_dry_run_prints_plan():
    out = imrec("run", str(TINY), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "step discriminator" in out.stdout and "random/mr=0.60" in out.stdout


def test_validate_and_cat(capsys):
    assert main(["validate", str(TINY)]) == 0
    assert main(["cat", str(TINY), "seeds=[1,2]", "~model.encoder.d_model", "fuser=baselines.late_fusion"]) == 0
    text = capsys.readouterr().out
    assert "seeds: [1, 2]" in text and "baselines.late_fusion" in text and "rohydr.mult" not in text


BAD = {
    "malformed.yaml": ("data: {name: synthetic\nmodel: [", ["line"]),
    "unknown_key.yaml": (None, ["trian", "did you mean"]),
    "unknown_component.yaml": (None, ["rohydr.hddn", "rohydr.hddm"]),
    "wrong_type.yaml": (None, ["d_model", "int"]),
}


def _variant(tmp_path, name):
    text = TINY.read_text()
    if name == "unknown_key.yaml":
        text = text.replace("train:\n", "trian: 1\ntrain:\n", 1)
    elif name == "unknown_component.yaml":
        text = text.replace("name: rohydr.hddm", "name: rohydr.hddn")
    elif name == "wrong_type.yaml":
        text = text.replace("d_model: 8", "d_model: eight")
    else:
        text = BAD[name][0]
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", list(BAD))
def test_bad_recipes_give_specific_errors(tmp_path, capsys, name):
    path = _variant(tmp_path, name)
    for argv in (["validate", str(path)], ["run", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert str(path) in err
        for word in BAD[name][1]:
            assert word in err, (word, err)
        assert "Traceback" not in err


def test_missing_file_and_bad_override(capsys):
    assert main(["run", "recipes/no_such_recipe.yaml"]) == 2
    assert "no_such_recipe.yaml" in capsys.readouterr().err
    assert main(["run", str(TINY), "train.phases.nosuchphase.epochs=1"]) == 2
    assert "nosuchphase" in capsys.readouterr().err


def test_errors_through_subprocess_have_no_traceback(tmp_path):
    out = imrec("run", str(_variant(tmp_path, "unknown_component.yaml")))
    assert out.returncode == 2 and "Traceback" not in out.stderr and "rohydr.hddm" in out.stderr


def test_duplicate_plugin_name_is_an_error(capsys):
    dup = types.SimpleNamespace()

    @hookimpl
    def register_recoverers(register):
        register("rohydr.hddm", object)

    dup.register_recoverers = register_recoverers
    pm = plugins.get_plugin_manager()
    pm.register(dup, name="impostor")
    plugins._registry = None
    try:
        assert main(["list", "recoverer"]) == 2
        err = capsys.readouterr().err
        assert "impostor" in err and "rohydr" in err and "duplicate" in err
    finally:
        pm.unregister(dup)
        plugins._registry = None


def test_missing_data_fails_before_training(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(TINY.read_text().replace(
        "data:\n  name: synthetic\n  names: [text, audio, vision]\n  dims: [12, 5, 7]\n  lengths: [6, 6, 6]\n"
        "  sizes: [96, 48, 48]\n  seed: 0\n", f"data:\n  name: mosi-bclstm\n  root: {tmp_path}/nothing\n"))
    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}/nothing" in err and "imrec data get" in err


def test_shell_completion_completes_commands_and_options(tmp_path, capsys):
    import shutil

    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert '"bench run") words=' in script and "--threads" in script and "complete -o filenames" in script
    assert main(["completion", "zsh"]) == 0 and "bashcompinit" in capsys.readouterr().out
    if shutil.which("bash") is None:
        pytest.skip("no bash to run the script with")
    (tmp_path / "c.sh").write_text(script + (
        't() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _imrec_complete; echo "${COMPREPLY[*]}"; }\n'
        "t imrec ru\nt imrec bench run --j\nt imrec data g\n"))
    out = subprocess.run(["bash", str(tmp_path / "c.sh")], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.stdout.splitlines() == ["run", "--jobs", "get"], out.stderr
