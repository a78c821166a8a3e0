"""The generic trainer: steps update exactly their parameters, no evaluation leakage, clear training errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from imrec.config import load_recipe
from imrec.errors import RecipeError, TrainingError
from imrec.model import apply_mask, build_model
from imrec.progress import Reporter
from imrec.runner import prepare
from imrec.trainer import Trainer, evaluate, plan_phase, seed_everything

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny_rohydr.yaml"


@pytest.fixture
def setup(tmp_path):
    recipe = load_recipe(RECIPE, [f"output_dir={tmp_path}"])
    prepared = prepare(recipe)
    seed_everything(0)
    model = build_model(prepared.spec, recipe.model)
    return recipe, prepared, model


def _trainer(recipe, prepared, model, tmp_path):
    return Trainer(recipe, model, prepared.splits, prepared.train_conditions, prepared.select_conditions,
                   prepared.metrics, prepared.higher_is_better, 7, torch.device("cpu"), tmp_path,
                   Reporter(enabled=False))


def _one_batch(prepared, model, rate_mask=True):
    from imrec.loader import condition_masks, iterate

    masked = condition_masks(prepared.train_conditions[1], prepared.splits["train"], model.names, 7, epoch=0)
    full, mask, _ = next(iterate(masked, 32))
    assert not bool(mask.all())
    return apply_mask(full, mask), full


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _changed(model, before):
    return {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}


@pytest.mark.parametrize(
    "step, allowed_prefixes",
    [
        ("unimodal", ("recoverer.",)),
        ("discriminator", ("aligner.discriminator.",)),
        ("multimodal", ("aligner.reconstructor.",)),
        ("task", ("fuser.", "aligner.reconstructor.", "head.")),
    ],
)
def test_each_step_updates_exactly_its_parameters(setup, tmp_path, step, allowed_prefixes):
    recipe, prepared, model = setup
    phase = recipe.train.phases[1]
    plan = plan_phase(model, phase)
    plan.steps = [s for s in plan.steps if s.name == step]
    trainer = _trainer(recipe, prepared, model, tmp_path)
    inp, full = _one_batch(prepared, model)
    model.train()
    before = _snapshot(model)
    trainer._train_batch(phase, plan, inp, full, epoch=0)
    changed = _changed(model, before)
    assert changed, f"step {step} changed nothing"
    stray = [n for n in changed if not n.startswith(allowed_prefixes)]
    assert not stray, f"step {step} changed parameters it does not own: {stray[:5]}"
    assert not any(n.startswith("encoder.") for n in changed)  # frozen


def test_generator_step_leaves_discriminator_untouched_in_full_schedule(setup, tmp_path):
    recipe, prepared, model = setup
    phase = recipe.train.phases[1]
    plan = plan_phase(model, phase)
    # Without the discriminator's own step, the other three steps must not move it at all.
    plan.steps = [s for s in plan.steps if s.name != "discriminator"]
    trainer = _trainer(recipe, prepared, model, tmp_path)
    inp, full = _one_batch(prepared, model)
    before = _snapshot(model)
    trainer._train_batch(phase, plan, inp, full, epoch=0)
    changed = _changed(model, before)
    assert not any(n.startswith("aligner.discriminator.") for n in changed)
    assert any(n.startswith("aligner.reconstructor.") for n in changed)


def test_each_parameter_in_exactly_one_optimizer(setup):
    recipe, _, model = setup
    plan = plan_phase(model, recipe.train.phases[1])
    ids = [id(p) for o in plan.optimizers.values() for g in o.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    disc = {id(p) for p in model.part("aligner.discriminator").parameters()}
    assert {id(p) for g in plan.optimizers["disc"].param_groups for p in g["params"]} == disc
    assert not any(p.requires_grad for p in model.encoder.parameters())


def test_unknown_part_and_unknown_loss_are_recipe_errors(tmp_path):
    recipe = load_recipe(RECIPE, ["train.phases.recover.freeze=[encoder.nothing]"])
    prepared = prepare(recipe, load=False)
    model = build_model(prepared.spec, recipe.model)
    with pytest.raises(RecipeError, match="encoder.nothing"):
        plan_phase(model, recipe.train.phases[1])


def test_non_finite_loss_names_phase_step_epoch_term(setup, tmp_path):
    recipe, prepared, model = setup
    train = prepared.splits["train"]
    train.modalities["text"] = train.modalities["text"].copy()
    train.modalities["text"][:] = np.nan
    trainer = _trainer(recipe, prepared, model, tmp_path)
    with pytest.raises(TrainingError) as exc:
        trainer.fit()
    msg = str(exc.value)
    assert "phase 'pretrain'" in msg and "step 'task'" in msg and "epoch 0" in msg and "'task_gt'" in msg


def test_no_evaluation_leakage_from_missing_modalities(setup):
    """Poisoning the data of a missing modality (NaN, huge values) changes no prediction."""
    recipe, prepared, model = setup
    cond = [c for c in prepared.eval_conditions if c.name == "fixed/text"][0]
    test = prepared.splits["test"]
    clean = evaluate(model, test, cond, 7, 16, prepared.metrics, torch.device("cpu"))
    poisoned = type(test)(dict(test.modalities), test.labels, test.ids, dict(test.lengths), test.present)
    poisoned.modalities["audio"] = np.full_like(test.modalities["audio"], np.nan)
    poisoned.modalities["vision"] = np.full_like(test.modalities["vision"], 1e30)
    dirty = evaluate(model, poisoned, cond, 7, 16, prepared.metrics, torch.device("cpu"))
    assert np.isfinite(dirty.predictions).all()
    np.testing.assert_array_equal(clean.predictions, dirty.predictions)


def test_random_condition_evaluation_is_independent_of_batch_size_and_rng(setup):
    recipe, prepared, model = setup
    cond = [c for c in prepared.eval_conditions if c.name.startswith("random/mr=0.3")][0]
    test = prepared.splits["test"]
    a = evaluate(model, test, cond, 7, 48, prepared.metrics, torch.device("cpu"))
    torch.manual_seed(12345)  # evaluation noise is seeded by (seed, condition), not the global RNG
    b = evaluate(model, test, cond, 7, 48, prepared.metrics, torch.device("cpu"))
    np.testing.assert_array_equal(a.predictions, b.predictions)


def test_apply_mask_zeroes_exactly_and_frames():
    from imrec.interfaces import Batch

    x = torch.full((2, 3, 4), float("nan"))
    y = torch.ones(2, 5)
    b = Batch(("x", "y"), {"x": x, "y": y}, torch.ones(2, 2, dtype=torch.bool), torch.zeros(2), ["a", "b"])
    mask = torch.tensor([[False, True], [True, False]])
    out = apply_mask(b, mask)
    assert torch.equal(out.modalities["x"][0], torch.zeros(3, 4))
    assert torch.isnan(out.modalities["x"][1]).all()
    assert torch.equal(out.modalities["y"][1], torch.zeros(5))
    keep = {"x": torch.tensor([[True, True, True], [True, False, True]])}
    out = apply_mask(b, mask, keep)
    assert torch.equal(out.modalities["x"][1, 1], torch.zeros(4))


def test_bypassed_components_do_not_run_and_their_losses_are_rejected(setup):
    recipe, prepared, model = setup
    calls = []
    model.aligner.register_forward_hook(lambda *a: calls.append(1))
    inp, full = _one_batch(prepared, model)
    res = model(inp, full=full, bypass=("aligner",))
    assert not calls and not any(k.startswith("aligner.") for k in res.losses)
    model(inp, full=full)
    assert calls
    phase = recipe.train.phases[1]
    phase.bypass = ["aligner"]
    with pytest.raises(RecipeError, match="aligner.discriminator"):
        plan_phase(model, phase)
