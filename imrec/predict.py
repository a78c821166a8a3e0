"""Predict with a trained run on new samples, some with modalities missing: :func:`load` → :class:`Predictor`.

The predictor holds what a run's TEST evaluation used: the seed's final weights (``phase-<last phase>.pt``), the
resolved recipe (components, the last phase's bypassed components, the evaluation batch size) and the run's
preprocessing statistics (``preprocessing.json``: per-modality standardisation from TRAIN). New features go
through exactly the path TEST went through — preprocessing, :func:`imrec.model.apply_mask`, the model in eval
mode — so a split scored by ``imrec eval`` with nothing missing gets the very same predictions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .errors import DataError, ImrecError
from .interfaces import DatasetSpec

PREPROCESSING_FILE = "preprocessing.json"


@dataclass
class Prediction:
    """Predictions for N samples, in input order.

    ``values`` (N,) for regression; ``probabilities`` (N, C) and ``labels`` (N,) for classification.
    ``available`` (N, K) is the availability the model saw (columns in ``modalities`` order). ``recovered``
    (only with ``return_recovered=True``): modality → (N, T, d) the recoverer's tokens (the encoder's space, not
    raw features) for entries that were missing, NaN where the modality was available; only modalities missing in
    at least one row appear.
    """

    ids: list[str]
    modalities: tuple[str, ...]
    available: np.ndarray
    values: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    labels: np.ndarray | None = None
    recovered: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per sample: ``id``, ``prediction`` (regression) or ``label`` and ``probabilities``,
        and ``missing`` (the modalities that were not available)."""
        out = []
        for i, sid in enumerate(self.ids):
            row: dict[str, Any] = {"id": sid}
            if self.values is not None:
                row["prediction"] = float(self.values[i])
            else:
                row["label"] = int(self.labels[i])  # type: ignore[index]
                row["probabilities"] = [float(p) for p in self.probabilities[i]]  # type: ignore[index]
            row["missing"] = [m for k, m in enumerate(self.modalities) if not self.available[i, k]]
            out.append(row)
        return out


def read_preprocessing(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Modality → (mean, std) float32 from ``preprocessing.json``; empty (identity) when the file is absent (a
    run older than the file: no standardisation existed) or says ``"standardize": null``."""
    path = Path(run_dir) / PREPROCESSING_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        block = data["standardize"]
        if block is None:
            return {}
        return {name: (np.asarray(s["mean"], dtype=np.float32), np.asarray(s["std"], dtype=np.float32))
                for name, s in block["modalities"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise ImrecError(f"{path}: not a preprocessing file imrec wrote ({type(exc).__name__}: {exc}); expected "
                         f'{{"standardize": null}} or {{"standardize": {{"modalities": {{name: {{"mean": [...], '
                         f'"std": [...]}}}}}}}}') from None


class Predictor:
    """A trained model with its recipe and preprocessing, predicting on new data (see :func:`load`)."""

    def __init__(self, model: Any, recipe: Any, spec: DatasetSpec, seed: int, device: torch.device,
                 standardization: Mapping[str, tuple[np.ndarray, np.ndarray]], run_dir: Path | None = None):
        self.model = model.eval()
        self.recipe = recipe
        self.spec = spec
        self.seed = seed
        self.device = device
        self.standardization = dict(standardization)
        self.run_dir = run_dir
        self.batch_size = int(recipe.train.eval_batch_size)
        self.bypass = tuple(recipe.train.phases[-1].bypass)  # as TEST was scored

    @property
    def modalities(self) -> tuple[str, ...]:
        """The run's modalities, in the order of the columns of ``available``."""
        return self.spec.names

    @property
    def task(self) -> str:
        return self.spec.task.kind

    def __repr__(self) -> str:
        mods = ", ".join(f"{m.name} {m.length}×{m.dim}" if m.length else f"{m.name} {m.dim}"
                         for m in self.spec.modalities)
        return f"Predictor({self.run_dir}, seed {self.seed}, {self.task}, modalities: {mods}, device {self.device})"

    # ------------------------------------------------------------------------------------------- checking
    def prepare(self, features: Mapping[str, Any], available: Any = None, lengths: Mapping[str, Any] | None = None,
                ids: Sequence[Any] | None = None
                ) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray], list[str]]:
        """Validate new data and bring it to the model's input: float32 arrays for every modality (zeros where
        not available, standardised where available), the (N, K) availability, lengths and ids."""
        arrays, n = self._features(features)
        ids_list = [str(i) for i in (range(n) if ids is None else ids)]
        if len(ids_list) != n:
            raise ImrecError(f"ids: {len(ids_list)} ids for {n} rows")

        def row(i: int) -> str:
            return f"row {i} (id {ids_list[i]!r})" if ids is not None else f"row {i}"

        avail = self._availability(available, arrays, n, row)
        out = self._inputs(arrays, avail, n, row)
        empty = ~avail.any(axis=1)
        if empty.any():
            i = int(np.flatnonzero(empty)[0])
            raise ImrecError(f"{row(i)} has no modality available ({int(empty.sum())} such rows); a prediction needs "
                             f"at least one of {', '.join(self.modalities)}")
        lens = self._lengths(lengths, n, out)
        return out, avail, lens, ids_list

    def _features(self, features: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
        """The given modalities' arrays, each checked against the run's shapes (real numbers, N rows each), and N."""
        names = self.modalities
        unknown = [m for m in features if m not in names]
        if unknown:
            raise ImrecError(f"features: unknown modality {unknown[0]!r}; this run's modalities are "
                             f"{', '.join(names)} (leave out a modality that is missing for every row)")
        if not features:
            raise ImrecError(f"features: no modality given; this run's modalities are {', '.join(names)}")
        arrays: dict[str, np.ndarray] = {}
        n: int | None = None
        first = ""
        for spec in self.spec.modalities:
            if spec.name not in features:
                continue
            a = np.asarray(features[spec.name])
            if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                raise ImrecError(f"features[{spec.name!r}]: dtype {a.dtype}; features must be real numbers")
            want = (spec.length, spec.dim) if spec.length is not None else (spec.dim,)
            if a.ndim != len(want) + 1 or tuple(a.shape[1:]) != want:
                shape = "(N, " + ", ".join(str(w) for w in want) + ")"
                what = (f"{spec.length} steps of {spec.dim} features" if spec.length is not None
                        else f"{spec.dim} features")
                pad = " (pad shorter sequences to the length and pass lengths=)" if spec.length is not None else ""
                raise ImrecError(f"features[{spec.name!r}]: shape {a.shape}, expected {shape}: the run was trained on "
                                 f"{what}{pad}")
            if n is None:
                n, first = int(a.shape[0]), spec.name
            elif a.shape[0] != n:
                raise ImrecError(f"features[{spec.name!r}] has {a.shape[0]} rows but features[{first!r}] has {n}")
            arrays[spec.name] = a
        assert n is not None
        return arrays, n

    def _availability(self, available: Any, arrays: dict[str, np.ndarray], n: int, row: Any) -> np.ndarray:
        """The (N, K) availability as given (bool, or 0/1 integers), else every given modality in every row; a
        modality marked available must have been given."""
        names = self.modalities
        if available is None:
            return np.array([[m in arrays for m in names]] * n, dtype=bool).reshape(n, len(names))
        avail = np.asarray(available)
        if avail.dtype != bool and np.issubdtype(avail.dtype, np.integer) and np.isin(avail, (0, 1)).all():
            avail = avail.astype(bool)
        if avail.shape != (n, len(names)) or avail.dtype != bool:
            raise ImrecError(f"available: expected an (N, K) = ({n}, {len(names)}) bool array, columns "
                             f"{', '.join(names)}; got {avail.dtype} {avail.shape}")
        avail = avail.copy()
        for k, m in enumerate(names):
            if m not in arrays and avail[:, k].any():
                i = int(np.flatnonzero(avail[:, k])[0])
                raise ImrecError(f"available[{i}, {k}]: {row(i)} marks {m!r} available but no {m!r} features were "
                                 f"given")
        return avail

    def _inputs(self, arrays: dict[str, np.ndarray], avail: np.ndarray, n: int, row: Any) -> dict[str, np.ndarray]:
        """float32 model inputs for every modality: standardised where available, zeros elsewhere. A row that is
        all NaN in a modality marks it missing there (``avail`` is updated); other non-finite values are errors."""
        out: dict[str, np.ndarray] = {}
        for k, spec in enumerate(self.spec.modalities):
            m = spec.name
            if m not in arrays:
                shape = (n, spec.length, spec.dim) if spec.length is not None else (n, spec.dim)
                out[m] = np.zeros(shape, dtype=np.float32)
                continue
            # Standardised in the input's own precision, then float32, as a dataset plugin does with its splits.
            a = arrays[m] if np.issubdtype(arrays[m].dtype, np.floating) else arrays[m].astype(np.float32)
            flat = a.reshape(n, -1)
            all_nan = np.isnan(flat).all(axis=1)  # a NaN row is a missing entry
            avail[:, k] &= ~all_nan
            bad = avail[:, k] & ~np.isfinite(flat).all(axis=1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ImrecError(f"features[{m!r}]: {row(i)} has non-finite values in an available entry "
                                 f"({int(bad.sum())} such rows); fill them, or mark the entry missing (all NaN, or "
                                 f"available[{i}, {k}] = False)")
            if m in self.standardization:
                mean, std = self.standardization[m]
                a = (a - mean) / std
            keep = avail[:, k].reshape(n, *([1] * (a.ndim - 1)))
            out[m] = np.where(keep, a, 0).astype(np.float32, copy=False)
        return out

    def _lengths(self, lengths: Mapping[str, Any] | None, n: int, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Valid lengths per sequence modality (whole numbers in [0, T]); padding frames of a standardised
        modality are set to 0 in ``out``, as in the standardised TRAIN data."""
        lens: dict[str, np.ndarray] = {}
        for m, value in (lengths or {}).items():
            spec = next((s for s in self.spec.modalities if s.name == m), None)
            if spec is None or spec.length is None:
                seqs = ", ".join(s.name for s in self.spec.modalities if s.length is not None) or "none"
                raise ImrecError(f"lengths[{m!r}]: {m!r} is not a sequence modality of this run ({seqs})")
            v = np.asarray(value)
            if v.shape != (n,) or not np.issubdtype(v.dtype, np.number) or (v != np.round(v)).any() or (
                    n and (v.min() < 0 or v.max() > spec.length)):
                raise ImrecError(f"lengths[{m!r}]: expected {n} whole numbers in [0, {spec.length}]")
            lens[m] = v.astype(np.int64)
            if m in self.standardization:  # padding frames hold no data: 0, as in the standardised TRAIN data
                out[m][np.arange(spec.length)[None, :] >= lens[m][:, None]] = 0.0
        return lens

    # ------------------------------------------------------------------------------------------- predicting
    @torch.no_grad()
    def predict(self, features: Mapping[str, Any], available: Any = None, return_recovered: bool = False, *,
                lengths: Mapping[str, Any] | None = None, ids: Sequence[Any] | None = None,
                batch_size: int | None = None, progress: bool = False) -> Prediction:
        """Predict for N samples.

        ``features``: modality → ``(N, T, D)`` or ``(N, D)`` array (a modality missing for every row is left out);
        per-row absence by ``available`` ((N, K) bool, columns in :attr:`modalities` order) or by rows that are
        all NaN. ``lengths``: sequence modality → (N,) valid lengths (default: all T steps). Batched (the run's
        evaluation batch size), without gradients, on the predictor's device. Noise a recoverer draws for
        missing entries comes from a generator seeded by the run's seed, as in evaluation.
        """
        from .loader import MaskedSplit, iterate
        from .interfaces import Split
        from .model import apply_mask
        from .trainer import eval_seed

        arrays, avail, lens, ids_list = self.prepare(features, available, lengths, ids)
        n = avail.shape[0]
        classification = self.task == "classification"
        labels = np.zeros(n, dtype=np.int64 if classification else np.float32)  # unused: no loss is computed
        split = Split(arrays, labels, np.asarray(ids_list), lens)
        masked = MaskedSplit(split, self.modalities, avail)
        bs = int(batch_size or self.batch_size)
        preds: list[torch.Tensor] = []
        recovered: dict[str, list[np.ndarray]] = {
            m: [] for k, m in enumerate(self.modalities) if return_recovered and not avail[:, k].all()}
        bar = _Bar(-(-n // bs), progress)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with bar, torch.random.fork_rng(devices=devices):
            torch.manual_seed(eval_seed(self.seed, "predict"))
            for full, mask, _ in iterate(masked, bs):  # the path of evaluation: rows in order, zeroed where missing
                inp = apply_mask(full.to(self.device), mask.to(self.device))
                res = self.model(inp, need=set(), bypass=self.bypass)
                preds.append(res.prediction.float().cpu())
                for m in recovered:
                    k = self.modalities.index(m)
                    tokens = res.recovered[m].float().cpu().numpy().copy()
                    tokens[mask[:, k].numpy()] = np.nan  # only what was recovered
                    recovered[m].append(tokens)
                bar.advance()
        p = torch.cat(preds).numpy()
        result = Prediction(ids_list, self.modalities, avail)
        if classification:
            result.probabilities = torch.softmax(torch.from_numpy(p), dim=-1).numpy()
            result.labels = p.argmax(axis=-1)
        else:
            result.values = p
        if return_recovered:
            result.recovered = {m: np.concatenate(v) for m, v in recovered.items()}
        return result


class _Bar:
    """A rich progress bar on stderr when it is a terminal (and asked for); nothing otherwise."""

    def __init__(self, total: int, enabled: bool):
        self.progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(stderr=True)
            if console.is_terminal:
                self.progress = Progress(TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                         console=console, transient=True)
                self.task = self.progress.add_task("predict", total=total)

    def __enter__(self) -> "_Bar":
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)


class _SpecOnly:
    """What :func:`imrec.runner.final_model` reads of a prepared run: the dataset spec (no data is loaded)."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec


def load(run_dir: str | Path, seed: int | None = None, device: str = "auto") -> Predictor:
    """The predictor of a finished run: ``seed``'s final model (default: the run's first seed), its resolved
    recipe and its preprocessing statistics, on ``device`` (``"auto"``: CUDA when available)."""
    from .runner import build_dataset, final_model, pick_device, resume_recipe

    run_dir = Path(run_dir)
    recipe = resume_recipe(run_dir)
    if recipe.eval.per_rate:
        raise ImrecError(f"{run_dir}: a per-rate run (eval.per_rate) has one model per missing rate, in "
                         f"seeds/<seed>/rate-<r>/; imrec.load and imrec predict take single-model runs")
    seed = recipe.seeds[0] if seed is None else int(seed)
    try:
        spec = build_dataset(recipe).spec  # shapes and task; no arrays are read
    except DataError as exc:
        raise ImrecError(f"{run_dir}: the modalities' shapes come from the run's dataset "
                         f"({recipe.data.name}), which is not readable here: {exc}") from None
    dev = pick_device(device)
    model = final_model(run_dir, recipe, _SpecOnly(spec), seed, dev)
    return Predictor(model, recipe, spec, seed, dev, read_preprocessing(run_dir), run_dir)
