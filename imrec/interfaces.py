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
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # annotations only: the data side (datasets, protocols, metrics) runs without torch, and
    # `imrec --help` (which imports this module through imrec.slots) imports neither torch nor numpy.
    import numpy as np
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


# --------------------------------------------------------------------------------------------------------------
# Model components, one per slot of the model (imrec/slots.py declares the slots: order, hook, whether optional,
# and the context arguments the core injects into a factory whose signature names them, e.g. the encoder's
# ``modalities`` and the head's ``in_dim`` and ``task``; a recipe may not set those).
#
# Capability flags: a protocol declares each flag the core reads with its default (``independent_samples: ... =
# False``); a component sets it to say more. Components need not subclass a protocol (structural typing), so the
# core reads a flag with :func:`declared`, which falls back to the protocol's default. (``isinstance`` against a
# protocol would also ask for the flags; imrec never checks components that way.)
# --------------------------------------------------------------------------------------------------------------
@runtime_checkable
class Encoder(Protocol):
    """Maps raw features of every modality to tokens of width ``out_dim``: ``(B, T_k, out_dim)`` per modality.

    Vector inputs ``(B, D)`` are treated as ``T = 1``. ``lengths`` are the valid lengths per modality (may be
    empty). A sequence keeps its length ``T_k``: the later components receive the batch's ``lengths`` as they are.

    ``independent_modalities``: ``True`` when the tokens of a modality depend on that modality alone; the core then
    encodes a training batch once (its complete data) and zeroes the missing modalities' tokens, instead of
    encoding the masked batch a second time.
    """

    out_dim: int
    aux_losses: ClassVar[tuple[str, ...]]
    independent_modalities: ClassVar[bool] = False

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
    recovered or zero-filled (``True`` = available in the input, before recovery).

    ``independent_samples``: ``True`` when a sample's fused vector depends on that sample alone (no batch
    statistics); the core may then fuse a subset of the rows, e.g. only the incomplete samples for ``f_gt``.
    """

    out_dim: int
    aux_losses: ClassVar[tuple[str, ...]]
    independent_samples: ClassVar[bool] = False

    def __call__(
        self, tokens: Mapping[str, Tensor], mask: Tensor, names: Sequence[str], lengths: Mapping[str, Tensor]
    ) -> Output: ...


@runtime_checkable
class Aligner(Protocol):
    """Maps the fused vector of incomplete input ``fused`` toward the fused vector of complete input
    ``reference`` (given in training only). Returns ``Output(value=aligned (B, dim))``.

    Sub-modules whose parameters a recipe may address separately are ordinary attributes
    (``aligner.discriminator``). ``incomplete_only``: ``True`` means the aligner is applied only to samples with
    at least one modality missing, in training and at evaluation; a complete sample's fused vector reaches the
    head unchanged (RoHyDR's MR, as the reference), and the aligner's losses are computed over the incomplete
    samples only. An instance attribute: a recipe may choose it.
    """

    aux_losses: ClassVar[tuple[str, ...]]
    incomplete_only: bool = False

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


@dataclass(frozen=True)
class MetricDisplay:
    """How the result tables (``imrec run``'s, ``imrec bench``'s, leaderboards, plots) show one metric.

    ``label``: its name in bench tables and plots (``"Acc-2 (Non0)"``). ``scale``: the factor values are shown
    multiplied by (``100`` for accuracies kept as fractions). ``decimals``: digits after the point in bench tables
    and leaderboards (``imrec run``'s table shows 4 digits of the unscaled value: 2 after ×100). ``order``: the
    metric's place among all metrics in tables (lower first; metrics without one follow, alphabetically).
    ``headline``: also a column of ``imrec run``'s results table (every metric is in the run directory).
    The direction (higher or lower is better) is the metric's ``higher_is_better``, not repeated here.
    """

    label: str
    scale: float = 1.0
    decimals: int = 3
    order: float | None = None
    headline: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"MetricDisplay.label must be a non-empty string, got {self.label!r}")
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not self.scale > 0:
            raise ValueError(f"MetricDisplay.scale must be a number > 0, got {self.scale!r}")
        if isinstance(self.decimals, bool) or not isinstance(self.decimals, int) or not 0 <= self.decimals <= 12:
            raise ValueError(f"MetricDisplay.decimals must be a whole number in [0, 12], got {self.decimals!r}")


@runtime_checkable
class Metric(Protocol):
    """Scores predictions: ``(predictions, labels) -> {metric name: float}`` on numpy arrays.

    ``task`` (class attribute) says which task kind it applies to; ``higher_is_better`` maps each metric name it
    returns to its direction (used by model selection and leaderboards); ``display`` maps metric names to how
    tables show them (:class:`MetricDisplay`; a name without one is shown as it is, unscaled).
    """

    task: ClassVar[TaskKind | None]
    higher_is_better: ClassVar[Mapping[str, bool]]
    display: ClassVar[Mapping[str, MetricDisplay]] = MappingProxyType({})

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


# --------------------------------------------------------------------------------------------------------------
# Reading what a component declares.
# --------------------------------------------------------------------------------------------------------------
def declared(component: Any, protocol: type, name: str) -> Any:
    """The value of ``name`` that ``component`` (an instance or a class) declares, else ``protocol``'s default.

    Only names ``protocol`` declares *with* a default may be read this way (a misspelt flag is an error, not a
    silent ``False``); the component need not subclass ``protocol``.
    """
    defaults = protocol_defaults(protocol)
    if name not in defaults:
        raise AttributeError(f"{protocol.__name__} declares no attribute {name!r} with a default; it declares: "
                             f"{', '.join(sorted(defaults)) or '(none)'}")
    return getattr(component, name, defaults[name])


def protocol_defaults(protocol: type) -> dict[str, Any]:
    """The attributes ``protocol`` declares with a default value, name → default."""
    out: dict[str, Any] = {}
    for cls in reversed(protocol.__mro__):
        if cls is object or cls is Protocol or not getattr(cls, "_is_protocol", False):
            continue
        for attr in getattr(cls, "__annotations__", {}):
            if attr in vars(cls):
                out[attr] = vars(cls)[attr]
    return out
