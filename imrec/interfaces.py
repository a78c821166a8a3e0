"""The contracts every component and plugin is written against.

Nothing here depends on a particular method: a batch holds *any* number K of named modalities, each
``(B, T, D)`` (sequence) or ``(B, D)`` (vector), and every model component returns its output plus a dict of
named auxiliary losses whose weights the recipe decides.

The core guarantees two things to components (see :mod:`imrec.model`):

* a modality that is missing in a sample reaches a component only as zeros (``mask[b, k] == False``);
* ground truth of a missing modality is handed over only as a *training target* (``targets=``) and only when the
  recipe simulates the missingness; at evaluation ``targets`` is ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # annotations only: the data side (datasets, protocols, metrics, the CLI) runs without torch
    import torch
    from torch import Tensor

TaskKind = Literal["regression", "classification"]


# --------------------------------------------------------------------------------------------------------------
# Descriptions of data, handed to component factories by the core (never written in a recipe).
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModalitySpec:
    """One modality of a dataset: feature width ``dim`` and sequence length ``length`` (``None`` = vector)."""

    name: str
    dim: int
    length: int | None = None

    @property
    def is_sequence(self) -> bool:
        return self.length is not None


@dataclass(frozen=True)
class TaskSpec:
    """What is predicted: ``regression`` (one continuous value, e.g. sentiment in [-3, 3]) or
    ``classification`` with ``num_classes`` classes (labels are ``0 … num_classes-1``)."""

    kind: TaskKind
    num_classes: int | None = None
    label_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind == "classification" and not self.num_classes:
            raise ValueError("a classification TaskSpec needs num_classes")


@dataclass(frozen=True)
class DatasetSpec:
    """Modalities (in their fixed order: column k of every mask is ``modalities[k]``) and task of a dataset."""

    name: str
    modalities: tuple[ModalitySpec, ...]
    task: TaskSpec

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    def modality(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(name)


# --------------------------------------------------------------------------------------------------------------
# Data as it leaves a dataset plugin (numpy, one split) and as it reaches the model (torch, one batch).
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Split:
    """One split of a dataset held as arrays (numpy arrays or read-only memory maps).

    ``modalities[name]`` is ``(N, T, D)`` or ``(N, D)``; ``lengths[name]`` (optional) holds the valid length of
    each sequence (``(N,)`` ints); ``labels`` is ``(N,)`` float (regression) or int (classification); ``ids`` are
    unique sample ids (strings). ``present`` (optional, ``(N, K)`` bool) marks modalities that the data really
    has; ``None`` means complete data. ``standardization`` (optional) records the per-feature transform the
    dataset applied, modality → (mean ``(D,)``, std ``(D,)``), so that a run can store it and new data can be
    transformed the same way; ``None`` means the features are as read.
    """

    modalities: dict[str, np.ndarray]
    labels: np.ndarray
    ids: np.ndarray
    lengths: dict[str, np.ndarray] = field(default_factory=dict)
    present: np.ndarray | None = None
    standardization: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return int(len(self.labels))


@dataclass
class Batch:
    """A batch as the model sees it.

    ``mask[b, k]`` is True when modality ``names[k]`` is available for sample ``b``. Where it is False the
    modality's tensor is zero (the core enforces this before any component is called).
    """

    names: tuple[str, ...]
    modalities: dict[str, Tensor]
    mask: Tensor
    labels: Tensor
    ids: list[str]
    lengths: dict[str, Tensor] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.mask.shape[0])

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(
            names=self.names,
            modalities={k: v.to(device, non_blocking=True) for k, v in self.modalities.items()},
            mask=self.mask.to(device),
            labels=self.labels.to(device),
            ids=self.ids,
            lengths={k: v.to(device) for k, v in self.lengths.items()},
        )


@dataclass
class Output:
    """What every model component returns: its ``value`` plus named auxiliary ``losses`` (scalars).

    Loss names are local to the component (``"diffusion"``); the model prefixes them with the component's slot
    (``"recoverer.diffusion"``) and the recipe weights them. A component lists every loss it may return in its
    class attribute ``aux_losses`` so recipes can be validated before anything is built.
    """

    value: Any
    losses: dict[str, Tensor] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------------
# Model components. Factories receive the recipe's keyword arguments plus the context arguments below, which
# the core injects when the factory's signature names them (a recipe may not set them):
#
#   encoder:   modalities: tuple[ModalitySpec, ...]
#   recoverer: modalities, d_model: int (the encoder's out_dim)
#   fuser:     modalities, d_model
#   aligner:   dim: int (the fuser's out_dim)
#   head:      in_dim: int (the fuser's out_dim), task: TaskSpec
# --------------------------------------------------------------------------------------------------------------
@runtime_checkable
class Encoder(Protocol):
    """Maps raw features of every modality to tokens of width ``out_dim``: ``(B, T_k, out_dim)`` per modality.

    Vector inputs ``(B, D)`` are treated as ``T = 1``. ``lengths`` are the valid lengths per modality (may be
    empty); the encoder returns the token lengths in ``Output.extras["lengths"]`` when it changes them.
    """

    out_dim: int
    aux_losses: ClassVar[tuple[str, ...]]

    def __call__(self, features: Mapping[str, Tensor], lengths: Mapping[str, Tensor]) -> Output: ...


@runtime_checkable
class Recoverer(Protocol):
    """Fills in missing modalities.

    ``tokens[name]`` are the encoder's tokens with missing entries zeroed; ``mask`` is ``(B, K)`` in the order
    of ``names``. ``targets`` (training only, simulated missingness) are the true tokens of every modality; a
    recoverer may use them only to compute its auxiliary losses. Returns ``Output(value=dict name → tokens)``
    where available entries are passed through unchanged.
    """

    aux_losses: ClassVar[tuple[str, ...]]

    def __call__(
        self,
        tokens: Mapping[str, Tensor],
        mask: Tensor,
        names: Sequence[str],
        lengths: Mapping[str, Tensor],
        targets: Mapping[str, Tensor] | None = None,
    ) -> Output: ...


@runtime_checkable
class Fuser(Protocol):
    """Fuses per-modality tokens into one vector ``(B, out_dim)``. ``mask`` tells which entries are real,
    recovered or zero-filled (``True`` = available in the input, before recovery)."""

    out_dim: int
    aux_losses: ClassVar[tuple[str, ...]]

    def __call__(
        self, tokens: Mapping[str, Tensor], mask: Tensor, names: Sequence[str], lengths: Mapping[str, Tensor]
    ) -> Output: ...


@runtime_checkable
class Aligner(Protocol):
    """Maps the fused vector of incomplete input ``fused`` toward the fused vector of complete input
    ``reference`` (given in training only). Returns ``Output(value=aligned (B, dim))``.

    Sub-modules whose parameters a recipe may address separately are ordinary attributes
    (``aligner.discriminator``). ``incomplete_only`` (default ``False`` when absent): ``True`` means the aligner
    is applied only to samples with at least one modality missing, in training and at evaluation; a complete
    sample's fused vector reaches the head unchanged (RoHyDR's MR, as the reference), and the aligner's losses
    are computed over the incomplete samples only.
    """

    aux_losses: ClassVar[tuple[str, ...]]
    incomplete_only: bool

    def __call__(self, fused: Tensor, reference: Tensor | None = None) -> Output: ...


@runtime_checkable
class Head(Protocol):
    """Predicts the task from a fused vector and defines the task loss."""

    aux_losses: ClassVar[tuple[str, ...]]

    def __call__(self, fused: Tensor) -> Output: ...

    def loss(self, prediction: Tensor, labels: Tensor) -> Tensor: ...


# --------------------------------------------------------------------------------------------------------------
# Data-side plugins.
# --------------------------------------------------------------------------------------------------------------
@runtime_checkable
class Dataset(Protocol):
    """A dataset plugin's instance: its spec and its three splits ``train``, ``valid``, ``test``."""

    spec: DatasetSpec

    def load(self) -> dict[str, Split]: ...


@runtime_checkable
class Condition(Protocol):
    """One missing-modality condition (e.g. random MR = 0.3, or only {text, audio} available).

    ``masks`` returns the ``(N, K)`` availability of a split. With ``epoch=None`` (evaluation) it depends only on
    the condition, ``seed`` and the split's sample ids: identical across methods, batch sizes, loader order and
    runs. With an epoch (training) it is redrawn per epoch from a generator seeded by (seed, epoch).
    ``frame_masks`` (optional) may further drop time steps within available sequence modalities.
    """

    name: str

    def masks(self, ids: Sequence[str], names: Sequence[str], seed: int, epoch: int | None = None) -> np.ndarray: ...


@runtime_checkable
class MissingProtocol(Protocol):
    """A protocol plugin's instance expands into one or more conditions (a sweep of rates, all subsets …)."""

    def conditions(self, names: Sequence[str]) -> list[Condition]: ...


@runtime_checkable
class Metric(Protocol):
    """Scores predictions: ``(predictions, labels) -> {metric name: float}`` on numpy arrays.

    ``task`` (class attribute) says which task kind it applies to; ``higher_is_better`` maps each metric name it
    returns to its direction (used by model selection and leaderboards).
    """

    task: ClassVar[TaskKind | None]
    higher_is_better: ClassVar[Mapping[str, bool]]

    def __call__(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]: ...


@runtime_checkable
class Logger(Protocol):
    """An experiment tracker (TensorBoard, MLflow …) fed by the runner, next to the run directory's own files.

    Called on rank 0 only, in this order: ``start`` once (the run directory and the resolved recipe as a plain
    dict; ``resumed`` when ``imrec run --resume`` continues it); ``log_epoch`` after every finished epoch of a
    seed with the very record written to that seed's ``metrics.jsonl`` and ``step``, the epoch's position on a
    run-wide axis (the epochs of earlier phases, at their maximum, come first; stable under resume);
    ``log_test`` once per seed with its TEST metrics per condition (``test.json``'s ``conditions``); ``finish``
    once, with ``summary.json``'s content and ``status`` ``"FINISHED"``, or ``None`` and ``"FAILED"``.
    """

    def start(self, run_dir: Path, recipe: Mapping[str, Any], resumed: bool) -> None: ...

    def log_epoch(self, seed: int, step: int, record: Mapping[str, Any]) -> None: ...

    def log_test(self, seed: int, conditions: Mapping[str, Mapping[str, float]]) -> None: ...

    def finish(self, summary: Mapping[str, Any] | None, status: str) -> None: ...


COMPONENT_SLOTS: tuple[str, ...] = ("encoder", "recoverer", "fuser", "aligner", "head")
"""Model component slots in the order a batch passes through them."""
