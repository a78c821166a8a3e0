"""``data.mosi-bclstm``: real CMU-MOSI utterance-level features (Poria et al., ACL 2017) with continuous labels.

Files (``<data dir>/mosi_bclstm/``, fetched by ``imrec data get mosi-bclstm``): ``text_{train,test}.csv`` (col 0
= row index into ``transcripts.csv``, then 100 text-CNN features), ``audio_{train,test}0.csv`` (73 openSMILE
features + binary label), ``video_{train,test}0.csv`` (100 3D-CNN features + binary label), ``transcripts.csv``
(segment id ``<video>_<clip>`` … binary label) and ``OpinionLevelSentiment.csv`` (the continuous scores,
joined by ``f"{video_id}_{clip_id}"``).

Split: the text and video features were produced by networks trained on the bc-LSTM training videos, so only
the bc-LSTM split is clean (train 1447 / test 752 utterances); validation is carved out of the training
*videos*. The CMU-SDK standard folds put 558 of their 686 test segments in bc-LSTM's training set, where the
text features then score Acc-2 0.975 (0.719 elsewhere): ``split: standard`` is refused unless
``allow_leaky: true``.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from imrec.errors import DataError
from imrec.interfaces import DatasetSpec, ModalitySpec, Split, TaskSpec

from .checks import DataWarning, as_str_ids, check_splits, fraction, handle_nonfinite, one_of
from .csd import read_folds
from .manifest import BUNDLES
from .paths import missing_files_error, resolve
from .standardize import standardize_mode, standardize_splits

NAME = "data.mosi-bclstm"
BUNDLE = BUNDLES["mosi-bclstm"]
ROWS = {"train": 1447, "test": 752}
SEGMENTS = 2199
# modality name -> (file pattern, feature columns); text's column 0 is the row index, the others' last column the
# binary label
FILES = {
    "text": ("text_{split}.csv", 100),
    "audio": ("audio_{split}0.csv", 73),
    "vision": ("video_{split}0.csv", 100),
}
STANDARD_SIZES = {"train": 1284, "valid": 229, "test": 686}
LEAK_NOTE = (
    "the text and video features were produced by networks trained on the bc-LSTM training videos; under the "
    "CMU-SDK standard folds 558 of the 686 standard-test segments are bc-LSTM training segments, and a ridge model "
    "on the text features scores Acc-2 0.975 on them (0.719 on the other 128): label leakage (measured, see the "
    "data README)"
)


def read_matrix(path: Path, rows: int, cols: int) -> np.ndarray:
    """A quoted, header-less numeric CSV as float64 (rows, cols); DataError if unreadable or mis-shaped."""
    try:
        m = np.loadtxt(path, delimiter=",", quotechar='"', dtype=np.float64, ndmin=2)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a numeric CSV ({exc}); the file is garbled, fetch it again") from exc
    if m.shape != (rows, cols):
        raise DataError(
            f"{path}: has {m.shape[0]} rows x {m.shape[1]} columns, expected {rows} x {cols}; "
            f"the file is truncated or not the published one (`imrec data verify mosi-bclstm`)"
        )
    return m


def read_rows(path: Path, cols: int) -> list[list[str]]:
    """Rows of a small CSV, each with exactly ``cols`` cells."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from exc
    bad = [i for i, r in enumerate(rows) if len(r) != cols]
    if bad:
        raise DataError(f"{path}: row {bad[0] + 1} has {len(rows[bad[0]])} cells, expected {cols} ({len(bad)} such rows)")
    return rows


class MosiBcLstm:
    """CMU-MOSI utterance features (text 100, audio 73, vision 100) with continuous labels; leak-free bc-LSTM split."""

    def __init__(
        self,
        root: str | None = None,
        split: str = "bclstm",
        valid_fraction: float = 0.15,
        split_seed: int = 0,
        allow_leaky: bool = False,
        standardize: str = "train",
        valid_from: str = "train",
    ) -> None:
        # Where VALID comes from. "train": videos of the bc-LSTM training split — but the text and video
        # features were extracted by networks trained on those segments, so VALID is nearly separable (Acc-2 ≈
        # 0.99 against ≈ 0.78 on TEST) and selection on it rewards memorised features. "test": videos of the
        # bc-LSTM test split, which the extractors never saw: a VALID that predicts TEST, at the price of a
        # smaller TEST (the remaining test videos).
        one_of(NAME, "valid_from", valid_from, ["train", "test"])
        self.valid_from = valid_from
        # On by default: audio reaches 376 and vision 198 while text is near unit scale, and raw features let the
        # large-scale modalities dominate every network (issue 14's measurements).
        self.standardize = standardize_mode(NAME, standardize)
        one_of(NAME, "split", split, ["bclstm", "standard"])
        if split == "standard" and not allow_leaky:
            raise DataError(
                f"{NAME}: split: standard is refused: {LEAK_NOTE}. Use split: bclstm (the default; validation is "
                f"carved out of the training videos), or set allow_leaky: true to reproduce a leaky protocol "
                f"knowingly."
            )
        self.root = resolve(root, BUNDLE.folder)
        self.split, self.allow_leaky = split, bool(allow_leaky)
        self.valid_fraction = fraction(NAME, "valid_fraction", valid_fraction, low_open=True)
        self.split_seed = int(split_seed)
        self.spec = DatasetSpec(
            name="mosi-bclstm",
            modalities=tuple(ModalitySpec(m, d) for m, (_, d) in FILES.items()),
            task=TaskSpec("regression", label_range=(-3.0, 3.0)),
        )

    def files(self) -> list[Path]:
        """Every file ``load`` reads."""
        names = ["transcripts.csv", "OpinionLevelSentiment.csv"]
        names += [pattern.format(split=s) for pattern, _ in FILES.values() for s in ROWS]
        if self.split == "standard":
            names.append("mosi_std_folds.json")
        return [self.root / n for n in names]

    def check(self) -> None:
        """Raise a DataError naming every absent file and how to get them."""
        missing = [p for p in self.files() if not p.is_file()]
        if missing:
            raise missing_files_error(NAME, missing, "imrec data get mosi-bclstm")

    def load(self) -> dict[str, Split]:
        """Read the features, join the continuous labels, and split (bc-LSTM split, validation by video)."""
        self.check()
        if self.split == "standard":
            warnings.warn(
                f"{NAME}: LEAKY SPLIT (allow_leaky: true): {LEAK_NOTE}. Results under this split overstate what "
                f"the features can do and must not be reported as clean.",
                DataWarning,
                stacklevel=2,
            )
        segments, binary = self._transcripts()
        scores = self._scores()
        rows = {}
        for split, n in ROWS.items():
            feats = {}
            label_cols = {}
            for m, (pattern, dim) in FILES.items():
                mat = read_matrix(self.root / pattern.format(split=split), n, dim + 1)
                if m == "text":
                    index = mat[:, 0]
                    feats[m] = mat[:, 1:].astype(np.float32)
                else:
                    feats[m] = mat[:, :-1].astype(np.float32)
                    label_cols[m] = mat[:, -1]
            if (index != np.round(index)).any() or index.min() < 0 or index.max() >= len(segments):
                raise DataError(
                    f"{self.root / f'text_{split}.csv'}: column 0 must be row indices into transcripts.csv "
                    f"(0..{len(segments) - 1})"
                )
            idx = index.astype(np.int64)
            seg = [segments[i] for i in idx]
            missing = [s for s in seg if s not in scores]
            if missing:
                raise DataError(
                    f"{self.root / 'OpinionLevelSentiment.csv'}: no score for {len(missing)} segments of split "
                    f"{split!r}, e.g. {', '.join(missing[:5])} (join key video_id + '_' + clip_id)"
                )
            y = np.array([scores[s] for s in seg], dtype=np.float32)
            # Cross-checks of the join: the binary label of transcripts.csv is 1 exactly when the score is >= 0,
            # and the label column of the audio and video files is that same binary label, row by row.
            if ((y >= 0).astype(np.int64) != binary[idx]).any():
                bad = int(((y >= 0).astype(np.int64) != binary[idx]).sum())
                raise DataError(
                    f"{NAME}: {bad} joined scores of split {split!r} disagree in sign with transcripts.csv's binary "
                    f"label; the label join is broken (files from different releases?)"
                )
            for m, col in label_cols.items():
                if (col != binary[idx]).any():
                    raise DataError(
                        f"{self.root / FILES[m][0].format(split=split)}: its label column disagrees with "
                        f"transcripts.csv for {int((col != binary[idx]).sum())} rows; rows are not in the order of "
                        f"text_{split}.csv"
                    )
            rows[split] = (feats, y, seg)
        all_segments = rows["train"][2] + rows["test"][2]
        if len(set(all_segments)) != len(all_segments):
            raise DataError(f"{NAME}: text_train.csv and text_test.csv share segments; the files are not the bc-LSTM split")
        splits = self._split_standard(rows) if self.split == "standard" else self._split_bclstm(rows)
        for name, s in splits.items():
            handle_nonfinite(NAME, name, s.modalities, s.ids, "error", str(self.root))
        return standardize_splits(check_splits(NAME, splits, self.spec), self.standardize, self.spec.names)

    def _transcripts(self) -> tuple[list[str], np.ndarray]:
        path = self.root / "transcripts.csv"
        rows = read_rows(path, 4)
        if len(rows) != SEGMENTS:
            raise DataError(f"{path}: has {len(rows)} rows, expected {SEGMENTS}")
        try:
            binary = np.array([int(r[3]) for r in rows], dtype=np.int64)
        except ValueError as exc:
            raise DataError(f"{path}: column 4 must be the binary label 0/1 ({exc})") from exc
        return [r[0] for r in rows], binary

    def _scores(self) -> dict[str, float]:
        path = self.root / "OpinionLevelSentiment.csv"
        rows = read_rows(path, 5)
        scores: dict[str, float] = {}
        try:
            for r in rows:
                scores[f"{r[2]}_{int(float(r[3]))}"] = float(r[4])
        except ValueError as exc:
            raise DataError(f"{path}: expected start, end, video_id, clip_id, score per row ({exc})") from exc
        if len(scores) != SEGMENTS or not all(-3.0 <= v <= 3.0 for v in scores.values()):
            raise DataError(f"{path}: expected {SEGMENTS} distinct segments with scores in [-3, 3]")
        return scores

    @staticmethod
    def _take(feats: dict[str, np.ndarray], y: np.ndarray, seg: list[str], rows: np.ndarray) -> Split:
        return Split(
            modalities={m: np.ascontiguousarray(a[rows]) for m, a in feats.items()},
            labels=y[rows],
            ids=as_str_ids(seg[i] for i in rows),
        )

    def _split_bclstm(self, rows: dict) -> dict[str, Split]:
        source = "test" if self.valid_from == "test" else "train"
        feats, y, seg = rows[source]
        videos = np.array([s.rsplit("_", 1)[0] for s in seg])
        unique = np.unique(videos)
        n_valid = max(1, int(round(self.valid_fraction * len(unique))))
        rng = np.random.default_rng(self.split_seed)
        valid_videos = unique[rng.choice(len(unique), size=n_valid, replace=False)]
        is_valid = np.isin(videos, valid_videos)
        if source == "test":
            train_feats, train_y, train_seg = rows["train"]
            return {
                "train": self._take(train_feats, train_y, train_seg, np.arange(len(train_y))),
                "valid": self._take(feats, y, seg, np.flatnonzero(is_valid)),
                "test": self._take(feats, y, seg, np.flatnonzero(~is_valid)),
            }
        test_feats, test_y, test_seg = rows["test"]
        return {
            "train": self._take(feats, y, seg, np.flatnonzero(~is_valid)),
            "valid": self._take(feats, y, seg, np.flatnonzero(is_valid)),
            "test": self._take(test_feats, test_y, test_seg, np.arange(len(test_y))),
        }

    def _split_standard(self, rows: dict) -> dict[str, Split]:
        path = self.root / "mosi_std_folds.json"
        folds = read_folds(path)
        fold_of = {v: s for s, vids in folds.items() for v in vids}
        feats = {m: np.concatenate([rows["train"][0][m], rows["test"][0][m]]) for m in FILES}
        y = np.concatenate([rows["train"][1], rows["test"][1]])
        seg = rows["train"][2] + rows["test"][2]
        assigned = np.array([fold_of.get(s.rsplit("_", 1)[0], "") for s in seg])
        if (assigned == "").any():
            raise DataError(f"{path}: {int((assigned == '').sum())} segments belong to videos in no fold")
        out = {s: self._take(feats, y, seg, np.flatnonzero(assigned == s)) for s in ("train", "valid", "test")}
        sizes = {s: len(v) for s, v in out.items()}
        if sizes != STANDARD_SIZES:
            raise DataError(f"{path}: standard folds give split sizes {sizes}, expected {STANDARD_SIZES}")
        return out
