"""``data.synthetic``: multimodal data generated from a seed, with measurable cross-modal structure.

Generative model (all float32, deterministic per ``seed``)::

    z_t   = (z + a_t) / sqrt(2)           shared latent, (N, T, r): static part z + AR(1) path a_t
    u_k,t = (u_k + b_k,t) / sqrt(2)       private latent of modality k, same construction
    x_k,t = sqrt(shared) * e_k(t) * z_{t - lag_k} A_k  +  sqrt(1 - shared) * u_k,t B_k  +  noise * eps

with eps iid, zero mean, unit variance (uniform, for speed).
``A_k``, ``B_k`` are fixed random projections of modality k, ``e_k`` a per-modality temporal envelope and
``lag_k`` a per-modality lag: the modalities see the same latent path, each in its own way. Vector modalities
(``length: None``) see the time averages. The label depends on the time-averaged shared latent plus a little of
every modality's private latent::

    s = zbar w + private_label * sum_k ubar_k v_k / sqrt(K) + label_noise * eps

so one modality alone is informative but weaker than all of them, and a missing modality is partly
predictable from the others (more so the larger ``shared``). Regression labels are ``3 tanh(s / std(s))`` in
(-3, 3); classification labels are the arg-max of class scores built the same way.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from pathlib import Path

import numpy as np

from imrec.errors import DataError
from imrec.interfaces import DatasetSpec, ModalitySpec, Split, TaskSpec

from .checks import SPLITS, as_str_ids, check_splits, one_of

NAME = "data.synthetic"
PRESETS: dict[str, dict[str, object]] = {
    # CMU-MOSI as MMSA ships it (aligned_50.pkl): BERT text 768, COVAREP-like audio 5, FACET-like vision 20.
    "mosi": {
        "names": ["text", "audio", "vision"],
        "dims": [768, 5, 20],
        "lengths": [50, 50, 50],
        "sizes": [1284, 229, 686],
        "task": "regression",
    },
}
DEFAULTS: dict[str, object] = {
    "names": ["text", "audio", "vision"],
    "dims": [32, 8, 16],
    "lengths": [12, 12, 12],
    "sizes": [600, 200, 200],
    "task": "regression",
}
CLIPS_PER_VIDEO = 8  # ids are "<video>_<clip>" like CMU-MOSI segments; a video never spans two splits
CLIP_SECONDS, GAP_SECONDS = 3.0, 0.5  # time line used by write_csd
_AR_RHO = 0.8
_NOISE_BLOCK = 1 << 20  # noise values drawn at a time (bounds the temporary, fixes the draw order)


class Synthetic:
    """Synthetic multimodal data from a seed: K modalities sharing latent factors (preset `mosi` = MOSI shapes)."""

    def __init__(
        self,
        preset: str | None = None,
        names: list[str] | None = None,
        dims: list[int] | None = None,
        lengths: list[int | None] | None = None,
        sizes: list[int] | None = None,
        task: str | None = None,
        num_classes: int | None = None,
        shared: float = 0.7,
        rank: int = 8,
        noise: float = 0.5,
        private_label: float = 0.3,
        label_noise: float = 0.1,
        variable_lengths: bool = False,
        seed: int = 0,
    ) -> None:
        if preset is not None:
            one_of(NAME, "preset", preset, sorted(PRESETS))
        base = PRESETS[preset] if preset is not None else DEFAULTS
        self.names = [str(n) for n in (names if names is not None else base["names"])]  # type: ignore[union-attr]
        self.dims = [int(d) for d in (dims if dims is not None else base["dims"])]  # type: ignore[union-attr]
        raw_lengths = lengths if lengths is not None else base["lengths"]
        self.lengths = [None if l is None else int(l) for l in raw_lengths]  # type: ignore[union-attr]
        self.sizes = [int(s) for s in (sizes if sizes is not None else base["sizes"])]  # type: ignore[union-attr]
        self.task = str(task if task is not None else base["task"])
        one_of(NAME, "task", self.task, ["regression", "classification"])
        k = len(self.names)
        if k < 1 or len(set(self.names)) != k:
            raise DataError(f"{NAME}: names must be one or more distinct modality names, got {self.names}")
        for key, values in (("dims", self.dims), ("lengths", self.lengths)):
            if len(values) != k:
                raise DataError(f"{NAME}: {key} has {len(values)} entries for {k} modalities {self.names}")
        if any(d < 1 for d in self.dims) or any(l is not None and l < 1 for l in self.lengths):
            raise DataError(f"{NAME}: dims and lengths must be positive (lengths may be null for vectors)")
        if len(self.sizes) != 3 or any(s < 1 for s in self.sizes):
            raise DataError(f"{NAME}: sizes must be three positive split sizes [train, valid, test], got {self.sizes}")
        if self.task == "classification":
            self.num_classes = int(num_classes) if num_classes is not None else 2
            if self.num_classes < 2:
                raise DataError(f"{NAME}: num_classes must be at least 2, got {num_classes}")
        elif num_classes is not None:
            raise DataError(f"{NAME}: num_classes is only meaningful with task: classification")
        else:
            self.num_classes = None
        self.shared = float(shared)
        if not 0.0 <= self.shared <= 1.0:
            raise DataError(f"{NAME}: shared={shared!r} must be in [0, 1]")
        self.rank = int(rank)
        if self.rank < 1:
            raise DataError(f"{NAME}: rank must be positive, got {rank}")
        for key, value in (("noise", noise), ("private_label", private_label), ("label_noise", label_noise)):
            if float(value) < 0:
                raise DataError(f"{NAME}: {key} must be non-negative, got {value}")
        self.noise, self.private_label, self.label_noise = float(noise), float(private_label), float(label_noise)
        self.variable_lengths = bool(variable_lengths)
        self.seed = int(seed)
        self.preset = preset
        self.spec = DatasetSpec(
            name=f"synthetic-{preset}" if preset else "synthetic",
            modalities=tuple(ModalitySpec(n, d, l) for n, d, l in zip(self.names, self.dims, self.lengths)),
            task=TaskSpec(
                self.task,
                num_classes=self.num_classes,
                label_range=(-3.0, 3.0) if self.task == "regression" else None,
            ),
        )

    # ---------------------------------------------------------------------------------------------- generation
    def load(self) -> dict[str, Split]:
        """Generate the three splits (same arrays for the same parameters and seed)."""
        return check_splits(NAME, self._generate(), self.spec)

    def _generate(self) -> dict[str, Split]:
        rng = np.random.default_rng(self.seed)
        n, r, k = sum(self.sizes), self.rank, len(self.names)
        steps = max([l for l in self.lengths if l is not None] or [1])

        # Fixed structure first (projections, lags, envelopes, label weights), then the latents.
        structure = []
        for d in self.dims:
            proj = (rng.standard_normal((2 * r, d)) / math.sqrt(r)).astype(np.float32)
            lag = int(rng.integers(0, 4))
            freq, phase = int(rng.integers(1, 3)), float(rng.uniform(0, 2 * math.pi))
            structure.append((proj, lag, freq, phase))
        n_out = 1 if self.task == "regression" else int(self.num_classes or 2)
        w_shared = rng.standard_normal((r, n_out)) / math.sqrt(r)
        w_private = rng.standard_normal((k, r, n_out)) / math.sqrt(r)

        z_static, z_path = self._latent(rng, n, steps, r)
        zbar = (z_static + z_path.mean(axis=1)) / math.sqrt(2)

        modalities: dict[str, np.ndarray] = {}
        lengths: dict[str, np.ndarray] = {}
        score = zbar @ w_shared
        for i, (name, length) in enumerate(zip(self.names, self.lengths)):
            proj, lag, freq, phase = structure[i]
            u_static, u_path = self._latent(rng, n, steps, r)
            ubar = (u_static + u_path.mean(axis=1)) / math.sqrt(2)
            score += self.private_label * (ubar @ w_private[i]) / math.sqrt(k)
            if length is None:
                shared_part, private_part = zbar, ubar
            else:
                t = np.round(np.linspace(0, steps - 1, length)).astype(np.int64)
                lagged = np.clip(t - lag, 0, steps - 1)
                envelope = 1.0 + 0.5 * np.sin(2 * math.pi * freq * np.arange(length) / length + phase)
                shared_part = (z_static[:, None, :] + z_path[:, lagged, :]) / math.sqrt(2)
                shared_part = shared_part * envelope[None, :, None].astype(np.float32)
                private_part = (u_static[:, None, :] + u_path[:, t, :]) / math.sqrt(2)
            latent = np.concatenate(
                [math.sqrt(self.shared) * shared_part, math.sqrt(1.0 - self.shared) * private_part], axis=-1
            ).astype(np.float32)
            x = latent @ proj
            del latent
            self._add_noise(rng, x)
            if length is not None and self.variable_lengths:
                lens = rng.integers((length + 1) // 2, length + 1, size=n)
                x[np.arange(length)[None, :] >= lens[:, None]] = 0.0
                lengths[name] = lens.astype(np.int64)
            modalities[name] = x

        score += self.label_noise * rng.standard_normal(score.shape)
        if self.task == "regression":
            s = score[:, 0]
            labels = (3.0 * np.tanh(s / (s.std() + 1e-12))).astype(np.float32)
        else:
            labels = np.argmax(score, axis=1).astype(np.int64)

        ids = self._ids()
        out: dict[str, Split] = {}
        start = 0
        for split, size in zip(SPLITS, self.sizes):
            sl = slice(start, start + size)
            out[split] = Split(
                modalities={m: a[sl] for m, a in modalities.items()},
                labels=labels[sl],
                ids=ids[sl],
                lengths={m: a[sl] for m, a in lengths.items()},
            )
            start += size
        return out

    @staticmethod
    def _latent(rng: np.random.Generator, n: int, steps: int, r: int) -> tuple[np.ndarray, np.ndarray]:
        """A static part (N, r) and a zero-mean AR(1) path (N, T, r) with unit marginal variance."""
        static = rng.standard_normal((n, r), dtype=np.float32)
        eps = rng.standard_normal((n, steps, r), dtype=np.float32)
        path = np.empty_like(eps)
        path[:, 0] = eps[:, 0]
        c = math.sqrt(1.0 - _AR_RHO**2)
        for t in range(1, steps):
            path[:, t] = _AR_RHO * path[:, t - 1] + c * eps[:, t]
        return static, path

    def _add_noise(self, rng: np.random.Generator, x: np.ndarray) -> None:
        """x += noise * eps, eps iid uniform with unit variance, drawn in fixed-size blocks.

        Uniform rather than Gaussian because drawing normals is ~3x slower and the MOSI preset has 84M
        feature values; nothing downstream depends on the noise's shape, only on its scale.
        """
        if self.noise == 0:
            return
        flat = x.reshape(-1)
        buf = np.empty(min(_NOISE_BLOCK, flat.size), dtype=np.float32)
        scale = np.float32(self.noise * math.sqrt(12.0))
        for start in range(0, flat.size, buf.size):
            part = buf[: min(buf.size, flat.size - start)]
            rng.random(out=part, dtype=np.float32)
            part -= np.float32(0.5)
            part *= scale
            flat[start : start + part.size] += part

    def _ids(self) -> np.ndarray:
        ids: list[str] = []
        video = 0
        for size in self.sizes:
            for j in range(size):
                if j and j % CLIPS_PER_VIDEO == 0:
                    video += 1
                ids.append(f"v{video:04d}_{j % CLIPS_PER_VIDEO + 1}")
            video += 1
        return as_str_ids(ids)

    # ------------------------------------------------------------------------------------------------ writers
    def write_mmsa(self, path: str | os.PathLike[str], aligned: bool | None = None) -> Path:
        """Write the data as an MMSA pickle (``aligned_50.pkl`` / ``unaligned_50.pkl`` schema).

        Needs modalities named text, audio, vision, all sequences, and a regression task. ``aligned=None``
        writes the aligned schema when all lengths are equal and fixed, else the unaligned one (with
        ``audio_lengths`` / ``vision_lengths``). Returns the path written.
        """
        if tuple(self.names) != ("text", "audio", "vision") or any(l is None for l in self.lengths):
            raise DataError(f"{NAME}: write_mmsa needs sequence modalities named text, audio, vision; have {self.names}")
        if self.task != "regression":
            raise DataError(f"{NAME}: write_mmsa writes regression labels; this dataset is {self.task}")
        same = len(set(self.lengths)) == 1 and not self.variable_lengths
        aligned = same if aligned is None else bool(aligned)
        if aligned and not same:
            raise DataError(f"{NAME}: aligned MMSA data needs equal fixed lengths; have {self.lengths}")
        data = {}
        for split, s in self._generate().items():
            n = len(s)
            t_text = s.modalities["text"].shape[1]
            text_len = s.lengths.get("text", np.full(n, t_text, dtype=np.int64))
            pos = np.arange(t_text)[None, :]
            attention = (pos < text_len[:, None]).astype(np.float32)
            bert = np.stack([attention * (1000 + pos), attention, np.zeros_like(attention)], axis=1)
            labels = s.labels.astype(np.float32)
            cls = np.where(labels < 0, 0, np.where(labels > 0, 2, 1))
            entry = {
                "raw_text": np.array([f"synthetic utterance {i}" for i in s.ids], dtype=object),
                "id": np.array([_mmsa_id(i) for i in s.ids], dtype=object),
                "text": s.modalities["text"],
                "text_bert": bert.astype(np.float32),
                "audio": s.modalities["audio"],
                "vision": s.modalities["vision"],
                "annotations": np.array(["Negative", "Neutral", "Positive"], dtype=object)[cls],
                "classification_labels": cls.astype(np.float32),
                "regression_labels": labels,
            }
            if not aligned:
                for m in ("audio", "vision"):
                    entry[f"{m}_lengths"] = s.lengths.get(m, np.full(n, s.modalities[m].shape[1], dtype=np.int64))
            data[split] = entry
        path = Path(path)
        _atomic_write(path, lambda f: pickle.dump(data, f, protocol=4))
        return path

    def write_csd(self, folder: str | os.PathLike[str]) -> Path:
        """Write CMU-SDK computational sequences: ``<modality>.csd`` per modality, ``labels.csd`` and ``folds.json``.

        Clips of a video lie on one time line (3 s each, 0.5 s apart); a sequence modality's steps split its
        clip's interval evenly (only the first ``length`` steps when lengths vary), a vector modality has one
        step spanning the clip. Returns the path of ``folds.json`` (video ids per split).
        """
        h5py = _h5py()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        splits = self._generate()
        videos: dict[str, list[tuple[str, int, int]]] = {}  # video -> [(split, row, clip index)]
        folds: dict[str, list[str]] = {s: [] for s in SPLITS}
        for split, s in splits.items():
            for row, sid in enumerate(s.ids.tolist()):
                video, clip = sid.rsplit("_", 1)
                if video not in videos:
                    videos[video] = []
                    folds[split].append(video)
                videos[video].append((split, row, int(clip) - 1))

        def clip_interval(c: int) -> tuple[float, float]:
            start = 1.0 + c * (CLIP_SECONDS + GAP_SECONDS)
            return start, start + CLIP_SECONDS

        with h5py.File(folder / "labels.csd", "w") as f:
            data = _csd_root(h5py, f, "labels", "synthetic labels")
            for video, rows in videos.items():
                g = data.create_group(video)
                g["features"] = np.array([[splits[s].labels[r]] for s, r, _ in rows], dtype=np.float32)
                g["intervals"] = np.array([clip_interval(c) for *_, c in rows], dtype=np.float64)
        for name, length in zip(self.names, self.lengths):
            with h5py.File(folder / f"{name}.csd", "w") as f:
                data = _csd_root(h5py, f, name, f"synthetic {name} features")
                for video, rows in videos.items():
                    feats, ivals = [], []
                    for split, row, c in rows:
                        x = splits[split].modalities[name][row]
                        start, end = clip_interval(c)
                        if length is None:
                            feats.append(x[None, :])
                            ivals.append(np.array([[start, end]]))
                            continue
                        used = int(splits[split].lengths[name][row]) if name in splits[split].lengths else length
                        edges = np.linspace(start, end, length + 1)
                        feats.append(x[:used])
                        ivals.append(np.stack([edges[:-1], edges[1:]], axis=1)[:used])
                    g = data.create_group(video)
                    g["features"] = np.concatenate(feats).astype(np.float32)
                    g["intervals"] = np.concatenate(ivals).astype(np.float64)
        folds_path = folder / "folds.json"
        folds_path.write_text(json.dumps(folds, indent=1))
        return folds_path


def _mmsa_id(segment: str) -> str:
    video, clip = segment.rsplit("_", 1)
    return f"{video}$_${clip}"


def _h5py():
    try:
        import h5py
    except ImportError as exc:
        raise DataError("CMU-SDK .csd files need h5py: pip install 'imrec[h5py]'") from exc
    return h5py


def _csd_root(h5py, f, root: str, description: str):
    """Create the SDK layout ``<root>/data`` and ``<root>/metadata/<key>`` (one-element strings)."""
    group = f.create_group(root)
    meta = group.create_group("metadata")
    values = {
        "root name": root,
        "computational sequence description": description,
        "computational sequence version": "1.0",
        "alignment compatible": "True",
        "dataset name": "imrec synthetic",
        "dataset version": "1.0",
        "creator": "imrec data.synthetic",
        "contact": "none",
        "featureset bib citation": "none",
        "dataset bib citation": "none",
    }
    for key, value in values.items():
        meta.create_dataset(key, data=np.array([value], dtype=h5py.string_dtype()))
    return group.create_group("data")


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    from imrec.runs import temp_file_beside  # with the umask's permissions, not mkstemp's 0600

    fd, tmp = temp_file_beside(path, ".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
