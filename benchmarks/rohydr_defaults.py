"""Measurements behind RoHyDR's defaults (docs/rohydr.md): speed of a training/evaluation batch, and recovery quality
of HDDM variants on synthetic tokens.

    python benchmarks/rohydr_defaults.py speed    [--threads 2] [--batch 32] [--rate 0.7] [--set key=value …]
    python benchmarks/rohydr_defaults.py recovery [--threads 2] [--steps 1500] [--seeds 0 1]
                                                  [--data synthetic|mosi-bclstm] [--eval-steps S …]
                                                  [--variant name:key=value,… …]

``speed`` times RoHyDR's components on MOSI aligned shapes (T = 50; text 768-d, audio 5-d, vision 20-d) at
d_model 32: a training batch is one forward of encoder (frozen) → recoverer → fuser on recovered and on complete
tokens → aligner → head, then the four optimisation steps of the three-stage schedule (gradients with
``torch.autograd.grad`` w.r.t. each step's parameters, as imrec's trainer does); an evaluation batch is one
no-grad forward. Reported: median and best wall-clock time of ``--repeat`` batches after a warm-up batch, and the
best process CPU time (with ``--threads 1``, what a batch costs even on a shared machine).

``recovery`` trains HDDM variants (stage-1 loss: ½ diffusion + ½ reconstruction) and reports the recovery error of
held-out missing entries relative to predicting the training mean (0 = perfect, 1 = the mean). Data: synthetic
tokens in which every modality is a different nonlinear view of one shared latent time series plus a private part
(which sets the floor), MOSI aligned shapes; or real CMU-MOSI utterance vectors (``--data mosi-bclstm``, T = 1)
through a fixed random encoder.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import time
from typing import Any

import torch
from torch import Tensor

from imrec.interfaces import ModalitySpec, TaskSpec
from imrec_rohydr import HDDM, Conv1dEncoder, GANAligner, MulTFuser, RegressionHead

MOSI_ALIGNED = (ModalitySpec("text", 768, 50), ModalitySpec("audio", 5, 50), ModalitySpec("vision", 20, 50))


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------
def random_masks(batch: int, k: int, rate: float, generator: torch.Generator) -> Tensor:
    """``(batch, k)`` availability with each entry missing w.p. ``rate``, at least one modality kept per sample."""
    mask = torch.rand(batch, k, generator=generator) >= rate
    empty = ~mask.any(dim=1)
    keep = torch.randint(0, k, (batch,), generator=generator)
    mask[empty, keep[empty]] = True
    return mask


def synthetic_tokens(
    n: int,
    modalities: tuple[ModalitySpec, ...],
    d_model: int = 32,
    latent: int = 4,
    private: float = 0.1,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Tokens ``(n, T, d_model)`` per modality: ``tanh(z A_m) B_m`` of a shared smooth latent ``z`` plus a private
    smooth part of relative variance ``private`` (unpredictable from the other modalities), standardised.

    Sequence modalities see ``z`` over time; a vector modality (length ``None``) sees its time average.
    """
    g = torch.Generator().manual_seed(seed)
    steps = max(m.length or 1 for m in modalities)
    time_axis = torch.linspace(0, 1, steps)

    def smooth(dim: int) -> Tensor:
        freq = 1.0 + 3.0 * torch.rand(n, 1, dim, generator=g)
        phase = 6.283 * torch.rand(n, 1, dim, generator=g)
        amp = torch.randn(n, 1, dim, generator=g)
        return amp * torch.sin(6.283 * freq * time_axis[None, :, None] + phase)

    z = smooth(latent)
    out: dict[str, Tensor] = {}
    for m in modalities:
        a = torch.randn(latent, 2 * d_model, generator=g) / latent**0.5
        b = torch.randn(2 * d_model, d_model, generator=g) / (2 * d_model) ** 0.5
        shared = torch.tanh(z @ a) @ b
        own = smooth(d_model)
        x = shared / shared.std() + private**0.5 * own / own.std()
        x = x[:, : m.length] if m.length else x.mean(dim=1, keepdim=True)
        out[m.name] = (x - x.mean(dim=(0, 1))) / x.std(dim=(0, 1))
    return out


# --------------------------------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------------------------------
def _times(fn, repeat: int) -> tuple[float, float, float]:
    """(median wall, best wall, best process CPU time) in seconds over ``repeat`` calls, after a warm-up call.

    On a shared machine the best wall time and the CPU time are the stabler figures; with one thread the CPU
    time is what the batch costs.
    """
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), min(wall), min(cpu)


def speed(batch: int = 32, rate: float = 0.7, repeat: int = 10, hddm: dict[str, Any] | None = None,
          mult: dict[str, Any] | None = None, seed: int = 0) -> dict[str, float]:
    """Seconds per training and per evaluation batch of the RoHyDR pipeline on MOSI aligned shapes (see
    :func:`_times`): ``train_s``/``eval_s`` median wall, ``*_best_s`` best wall, ``*_cpu_s`` best CPU time."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    mods = MOSI_ALIGNED
    names = tuple(m.name for m in mods)
    encoder = Conv1dEncoder(mods, d_model=32)
    recoverer = HDDM(mods, 32, **(hddm or {}))
    fuser = MulTFuser(mods, 32, **(mult or {}))
    aligner = GANAligner(fuser.out_dim)
    head = RegressionHead(fuser.out_dim, TaskSpec("regression", label_range=(-3.0, 3.0)))
    features = {m.name: torch.randn(batch, m.length, m.dim, generator=g) for m in mods}
    labels = torch.randn(batch, generator=g)
    steps = {  # the three-stage schedule: parameters updated by each step
        "unimodal": list(recoverer.parameters()),
        "discriminator": list(aligner.discriminator.parameters()),
        "reconstructor": list(aligner.reconstructor.parameters()),
        "task": [*fuser.parameters(), *aligner.reconstructor.parameters(), *head.parameters()],
    }

    def forward(train: bool):
        mask = random_masks(batch, len(mods), rate, g)
        with torch.no_grad():  # frozen encoder: its tokens are the recovery targets
            truth = encoder(features, {}).value
        tokens = {n: truth[n] * mask[:, k, None, None] for k, n in enumerate(names)}
        rec = recoverer(tokens, mask, names, {}, targets=truth if train else None)
        f_rec = fuser(rec.value, mask, names, {}).value
        if not train:
            return head(aligner(f_rec).value).value
        f_gt = fuser(truth, mask, names, {}).value
        aligned = aligner(f_rec, f_gt)
        return {
            "unimodal": 0.5 * rec.losses["diffusion"] + 0.5 * rec.losses["reconstruction"],
            "discriminator": 0.1 * aligned.losses["discriminator"],
            "reconstructor": 0.5 * aligned.losses["adversarial"] + 0.5 * aligned.losses["l1"],
            "task": 0.6 * head.loss(head(f_gt).value, labels) + 0.4 * head.loss(head(aligned.value).value, labels),
        }

    def train_batch() -> None:
        losses = forward(True)
        for i, name in enumerate(steps):
            torch.autograd.grad(losses[name], steps[name], retain_graph=i < len(steps) - 1, allow_unused=True)

    def eval_batch() -> None:
        with torch.no_grad():
            forward(False)

    modules = (encoder, recoverer, fuser, aligner, head)
    for m in modules:
        m.train()
    encoder.eval()
    result = dict(zip(("train_s", "train_best_s", "train_cpu_s"), _times(train_batch, repeat)))
    for m in modules:
        m.eval()
    result.update(zip(("eval_s", "eval_best_s", "eval_cpu_s"), _times(eval_batch, repeat)))
    return result


# --------------------------------------------------------------------------------------------------------------
# Recovery quality
# --------------------------------------------------------------------------------------------------------------
def synthetic_split(
    modalities: tuple[ModalitySpec, ...], n_train: int = 2048, n_test: int = 512, seed: int = 0
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Train and test tokens from :func:`synthetic_tokens`."""
    data = synthetic_tokens(n_train + n_test, modalities, seed=seed)
    return {n: x[:n_train] for n, x in data.items()}, {n: x[n_train:] for n, x in data.items()}


def mosi_bclstm_split(
    root: str, d_model: int = 32, seed: int = 0
) -> tuple[tuple[ModalitySpec, ...], dict[str, Tensor], dict[str, Tensor]]:
    """Real CMU-MOSI utterance vectors (``data.mosi-bclstm`` at ``root``: text 100, audio 73, vision 100) as
    tokens of a seeded, randomly initialised ``rohydr.conv1d`` encoder (the recoverer's targets are an encoder's
    tokens; a fixed random projection keeps the data's real cross-modal structure)."""
    from imrec.plugins import get_registry

    dataset = get_registry().resolve("dataset", "mosi-bclstm").factory(root=root)
    splits = dataset.load()
    torch.manual_seed(seed)
    encoder = Conv1dEncoder(dataset.spec.modalities, d_model=d_model)
    with torch.no_grad():
        tokens = {
            part: encoder({n: torch.as_tensor(x, dtype=torch.float32) for n, x in splits[part].modalities.items()}, {})
            .value
            for part in ("train", "test")
        }
    return dataset.spec.modalities, tokens["train"], tokens["test"]


def recovery(
    hddm: dict[str, Any],
    modalities: tuple[ModalitySpec, ...],
    train: dict[str, Tensor],
    test: dict[str, Tensor],
    steps: int = 1500,
    batch: int = 32,
    rate: float = 0.7,
    lr: float = 2e-3,
    seed: int = 0,
    eval_steps: tuple[int, ...] = (),
) -> dict[str, float]:
    """Train one HDDM variant on ``train`` tokens (stage-1 loss). Returns the recovery MSE on the missing entries
    of ``test`` relative to predicting the training mean (``rel_mse``, and ``rel_mse@S`` for each extra number of
    DDIM steps S in ``eval_steps``, same trained model), seconds per training step and seconds to recover the test
    set (in batches of ``batch``)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    names = tuple(m.name for m in modalities)
    n_train, n_test = len(train[names[0]]), len(test[names[0]])
    mean = {n: x.mean(dim=(0, 1)) for n, x in train.items()}
    model = HDDM(modalities, train[names[0]].shape[-1], **hddm)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        rows = torch.randint(0, n_train, (batch,), generator=g)
        mask = random_masks(batch, len(names), rate, g)
        truth = {n: train[n][rows] for n in names}
        tokens = {n: truth[n] * mask[:, k, None, None] for k, n in enumerate(names)}
        out = model(tokens, mask, names, {}, targets=truth)
        if not out.losses:
            continue
        loss = 0.5 * sum(out.losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    result = {"train_step_s": (time.perf_counter() - start) / steps}
    model.eval()
    mask = random_masks(n_test, len(names), rate, torch.Generator().manual_seed(12345))
    tokens = {n: test[n] * mask[:, k, None, None] for k, n in enumerate(names)}

    def rel_mse() -> float:
        gen = torch.Generator().manual_seed(7)
        err = torch.zeros(())
        ref = torch.zeros(())
        with torch.no_grad():
            for lo in range(0, n_test, batch):
                part = slice(lo, lo + batch)
                out = model({n: x[part] for n, x in tokens.items()}, mask[part], names, {}, generator=gen).value
                for k, n in enumerate(names):
                    miss = ~mask[part, k]
                    err += ((out[n][miss] - test[n][part][miss]) ** 2).sum()
                    ref += ((test[n][part][miss] - mean[n]) ** 2).sum()
        return float(err / ref)

    start = time.perf_counter()
    result["rel_mse"] = rel_mse()
    result["eval_test_s"] = time.perf_counter() - start
    default_steps = model.sample_steps
    for s in eval_steps:
        model.sample_steps = s
        result[f"rel_mse@{s}"] = rel_mse()
    model.sample_steps = default_steps
    return result


# --------------------------------------------------------------------------------------------------------------
def _settings(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python benchmarks/rohydr_defaults.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("speed", help="seconds per training / evaluation batch (MOSI aligned shapes)")
    sp.add_argument("--threads", type=int, default=2)
    sp.add_argument("--batch", type=int, default=32)
    sp.add_argument("--rate", type=float, default=0.7)
    sp.add_argument("--repeat", type=int, default=10)
    sp.add_argument("--set", nargs="*", default=[], help="hddm.key=value or mult.key=value")
    rp = sub.add_parser("recovery", help="recovery error of HDDM variants on synthetic tokens")
    rp.add_argument("--threads", type=int, default=2)
    rp.add_argument("--steps", type=int, default=1500)
    rp.add_argument("--seeds", type=int, nargs="*", default=[0])
    rp.add_argument("--data", choices=["synthetic", "mosi-bclstm"], default="synthetic")
    rp.add_argument("--data-root", default="../shared/data/mosi_bclstm", help="folder of the mosi-bclstm files")
    rp.add_argument("--vector", action="store_true", help="synthetic: make the audio modality a vector (T = 1)")
    rp.add_argument("--eval-steps", type=int, nargs="*", default=[], help="also score with these DDIM step counts")
    rp.add_argument("--variant", nargs="*", default=["default:"], help="name:key=value,key=value")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.command == "speed":
        settings = _settings(args.set)
        hddm = {k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith("hddm.")}
        mult = {k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith("mult.")}
        result = speed(args.batch, args.rate, args.repeat, hddm, mult)
        print(
            f"settings {settings} threads {args.threads}: "
            f"train {result['train_s']:.3f} s/batch (best {result['train_best_s']:.3f}, cpu {result['train_cpu_s']:.3f}), "
            f"eval {result['eval_s']:.3f} s/batch (best {result['eval_best_s']:.3f}, cpu {result['eval_cpu_s']:.3f})"
        )
        return
    if args.data == "synthetic":
        mods = MOSI_ALIGNED
        if args.vector:
            mods = (mods[0], ModalitySpec("audio", 5, None), mods[2])
        splits = {s: (mods, *synthetic_split(mods, seed=s)) for s in args.seeds}
    else:
        splits = {s: mosi_bclstm_split(args.data_root, seed=s) for s in args.seeds}
    for spec in args.variant:
        name, _, rest = spec.partition(":")
        hddm = _settings([s for s in rest.split(",") if s])
        runs = [
            recovery(hddm, *splits[s], steps=args.steps, seed=s, eval_steps=tuple(args.eval_steps)) for s in args.seeds
        ]
        mean = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
        per_seed = ", ".join(f"{r['rel_mse']:.3f}" for r in runs)
        extra = "".join(f"  @{s} steps {mean[f'rel_mse@{s}']:.3f}" for s in args.eval_steps)
        print(
            f"{name:24s} rel_mse {mean['rel_mse']:.3f} (seeds: {per_seed}){extra}"
            f"  train {1e3 * mean['train_step_s']:.0f} ms/step  eval {mean['eval_test_s']:.2f} s/test set",
            flush=True,
        )


if __name__ == "__main__":
    main()
