"""``log.tensorboard``: TensorBoard event files inside the run directory (``tensorboard`` extra).

``<run dir>/<subdir>/seed-<seed>/`` per seed, so ``tensorboard --logdir runs/`` lists every run and seed:

* ``train/<loss>``, ``valid/<metric>`` (and ``lr/<optimiser>`` with a scheduler): each line of ``metrics.jsonl``
  (every loss term and step total, every VALID metric) at the epoch's run-wide step (phases one after the other);
* ``test/<condition>/<metric>``: the seed's TEST metrics (``test.json``) at step 0; conditions are written as
  MLflow-safe names (``random/mr=0.30`` → ``random/mr:0.30``);
* the resolved recipe as text (``recipe``) and as hyper-parameters (HParams dashboard, with the TEST metrics).

Scalars are stored as float32 by TensorBoard. A resumed run purges the steps it computes again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from imrec.errors import ImrecError

from .params import PARTS, flat_params, metric_key

INSTALL = "pip install 'imrec[tensorboard]'"


class TensorBoardLogger:
    """TensorBoard event files per seed in the run directory: losses, VALID and TEST metrics, the recipe."""

    def __init__(self, subdir: str = "tensorboard") -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch raises ImportError when the tensorboard package is absent
            raise ImrecError(f"log: tensorboard needs the tensorboard package, which is not installed ({exc}); "
                             f"install it with `{INSTALL}`, or remove tensorboard from the recipe's log") from None
        if not subdir or Path(subdir).is_absolute() or ".." in Path(subdir).parts:
            raise ImrecError(f"log.tensorboard: subdir must be a folder name inside the run directory, got {subdir!r}")
        self._writer_class = SummaryWriter
        self.subdir = subdir
        self.writers: dict[int, Any] = {}
        self.run_dir: Path | None = None
        self.recipe: Mapping[str, Any] = {}
        self.resumed = False

    def start(self, run_dir: Path, recipe: Mapping[str, Any], resumed: bool) -> None:
        self.run_dir, self.recipe, self.resumed = Path(run_dir), recipe, resumed

    def _writer(self, seed: int, step: int) -> Any:
        writer = self.writers.get(seed)
        if writer is None:
            assert self.run_dir is not None, "start() comes first"
            # On resume the epochs after the last saved state are trained again: drop their old points.
            writer = self._writer_class(str(self.run_dir / self.subdir / f"seed-{seed}"),
                                        purge_step=step if self.resumed else None)
            import yaml

            text = yaml.safe_dump(dict(self.recipe), sort_keys=False)
            writer.add_text("recipe", "    " + text.replace("\n", "\n    "))  # markdown: a code block
            self.writers[seed] = writer
        return writer

    def log_epoch(self, seed: int, step: int, record: Mapping[str, Any]) -> None:
        writer = self._writer(seed, step)
        for part in PARTS:
            for name, value in (record.get(part) or {}).items():
                writer.add_scalar(metric_key(part, name), float(value), step)
        writer.flush()

    def log_test(self, seed: int, conditions: Mapping[str, Mapping[str, float]]) -> None:
        from torch.utils.tensorboard.summary import hparams

        writer = self._writer(seed, 0)
        tags = {}
        for cond, metrics in conditions.items():
            for name, value in metrics.items():
                tag = metric_key("test", cond, name)
                writer.add_scalar(tag, float(value), 0)
                tags[tag] = float(value)
        params = {k: (v if isinstance(v, (bool, int, float, str)) else str(v))
                  for k, v in flat_params(self.recipe).items()}
        params["seed"] = seed
        for summary in hparams(params, tags):  # the HParams dashboard: recipe against TEST metrics
            writer.file_writer.add_summary(summary)
        writer.flush()

    def finish(self, summary: Mapping[str, Any] | None, status: str) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
