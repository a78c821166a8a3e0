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
def test_each_step_updates_exactly_its_parameters(tiny_rohydr, tmp_path, step, allowed_prefixes):
    recipe, prepared, model = tiny_rohydr
    phase = recipe.train.phases[1]
    plan = plan_phase(model, phase)
    plan.steps = [s for s in plan.steps if s.name == step]
    trainer = _trainer(recipe, prepared, model, tmp_path)
    inp, full = _one_batch(prepared, model)
    model.train()
    before = _snapshot(model)
    trainer.train_batch(phase, plan, inp, full, epoch=0)
    changed = _changed(model, before)
    assert changed, f"step {step} changed nothing"
    stray = [n for n in changed if not n.startswith(allowed_prefixes)]
    assert not stray, f"step {step} changed parameters it does not own: {stray[:5]}"
    assert not any(n.startswith("encoder.") for n in changed)  # frozen


def test_generator_step_leaves_discriminator_untouched_in_full_schedule(tiny_rohydr, tmp_path):
    recipe, prepared, model = tiny_rohydr
    phase = recipe.train.phases[1]
    plan = plan_phase(model, phase)
    # Without the discriminator's own step, the other three steps must not move it at all.
    plan.steps = [s for s in plan.steps if s.name != "discriminator"]
    trainer = _trainer(recipe, prepared, model, tmp_path)
    inp, full = _one_batch(prepared, model)
    before = _snapshot(model)
    trainer.train_batch(phase, plan, inp, full, epoch=0)
    changed = _changed(model, before)
    assert not any(n.startswith("aligner.discriminator.") for n in changed)
    assert any(n.startswith("aligner.reconstructor.") for n in changed)


def test_each_parameter_in_exactly_one_optimizer(tiny_rohydr):
    recipe, _, model = tiny_rohydr
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


def test_non_finite_loss_names_phase_step_epoch_term(tiny_rohydr, tmp_path):
    recipe, prepared, model = tiny_rohydr
    train = prepared.splits["train"]
    train.modalities["text"] = train.modalities["text"].copy()
    train.modalities["text"][:] = np.nan
    trainer = _trainer(recipe, prepared, model, tmp_path)
    with pytest.raises(TrainingError) as exc:
        trainer.fit()
    msg = str(exc.value)
    assert "phase 'pretrain'" in msg and "step 'task'" in msg and "epoch 0" in msg and "'task_gt'" in msg


def test_no_evaluation_leakage_from_missing_modalities(tiny_rohydr):
    """Poisoning the data of a missing modality (NaN, huge values) changes no prediction."""
    recipe, prepared, model = tiny_rohydr
    cond = [c for c in prepared.eval_conditions if c.name == "fixed/text"][0]
    test = prepared.splits["test"]
    clean = evaluate(model, test, cond, 7, 16, prepared.metrics, torch.device("cpu"))
    poisoned = type(test)(dict(test.modalities), test.labels, test.ids, dict(test.lengths), test.present)
    poisoned.modalities["audio"] = np.full_like(test.modalities["audio"], np.nan)
    poisoned.modalities["vision"] = np.full_like(test.modalities["vision"], 1e30)
    dirty = evaluate(model, poisoned, cond, 7, 16, prepared.metrics, torch.device("cpu"))
    assert np.isfinite(dirty.predictions).all()
    np.testing.assert_array_equal(clean.predictions, dirty.predictions)


def test_random_condition_evaluation_is_independent_of_batch_size_and_rng(tiny_rohydr):
    recipe, prepared, model = tiny_rohydr
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


def test_bypassed_components_do_not_run_and_their_losses_are_rejected(tiny_rohydr):
    recipe, prepared, model = tiny_rohydr
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


def test_complete_samples_are_predicted_as_without_the_aligner(tiny_rohydr):
    """An incomplete-only aligner (RoHyDR's MR, as the reference) leaves complete samples alone: their
    prediction equals the model's with the aligner slot empty, in a mixed batch and in a complete one."""
    recipe, prepared, model = tiny_rohydr
    assert model.aligner.incomplete_only
    inp, full = _one_batch(prepared, model)
    mask = inp.mask.clone()
    mask[:5] = True  # some complete rows beside incomplete ones
    inp = apply_mask(full, mask)
    model.eval()
    with torch.no_grad():
        with_aligner = model(inp).prediction
        aligner, model.aligner = model.aligner, None
        try:
            without = model(inp).prediction
            complete_without = model(full).prediction
        finally:
            model.aligner = aligner
        complete_with = model(full).prediction
    rows = mask.all(dim=1)
    assert rows.any() and (~rows).any()
    torch.testing.assert_close(with_aligner[rows], without[rows], rtol=0, atol=0)
    assert not torch.allclose(with_aligner[~rows], without[~rows])  # the aligner does act on incomplete rows
    torch.testing.assert_close(complete_with, complete_without, rtol=0, atol=0)


def test_aligner_on_all_samples_when_asked(tmp_path):
    recipe = load_recipe(RECIPE, [f"output_dir={tmp_path}", "model.aligner.incomplete_only=false"])
    prepared = prepare(recipe)
    seed_everything(0)
    model = build_model(prepared.spec, recipe.model).eval()
    assert not model.aligner.incomplete_only
    _, full = _one_batch(prepared, model)
    with torch.no_grad():
        with_aligner = model(full).prediction
        model.aligner = None
        without = model(full).prediction
    assert not torch.allclose(with_aligner, without)


def _record_weights_at_forward(module):
    """Record ``module``'s first weight each time a forward runs through it."""
    seen = []
    first = next(module.parameters())
    handle = module.register_forward_pre_hook(lambda mod, args: seen.append(first.detach().clone()))
    return seen, handle


@pytest.mark.parametrize("reuse", [True, False])
def test_sequential_steps_see_the_parameters_the_previous_step_left(tiny_rohydr, tmp_path, reuse):
    """reuse_forward: false — each step runs its own forward after the previous step's update (the paper's
    sequential stages): the task step's forward sees the MR that the multimodal step just moved.
    reuse_forward: true — one forward, every step's gradient taken at the same (starting) parameters."""
    recipe, prepared, model = tiny_rohydr
    phase = recipe.train.phases[1]
    phase.reuse_forward = reuse
    plan = plan_phase(model, phase)
    assert [s.name for s in plan.steps] == ["unimodal", "discriminator", "multimodal", "task"]
    trainer = _trainer(recipe, prepared, model, tmp_path)
    inp, full = _one_batch(prepared, model)
    model.train()
    mr = model.part("aligner.reconstructor")
    start = next(mr.parameters()).detach().clone()
    seen, handle = _record_weights_at_forward(mr)
    try:
        trainer.train_batch(phase, plan, inp, full, epoch=0)
    finally:
        handle.remove()
    end = next(mr.parameters()).detach()
    assert not torch.equal(end, start)
    if reuse:
        assert len(seen) == 1 and torch.equal(seen[0], start)
    else:
        assert len(seen) == 4  # one forward per step
        # unimodal, discriminator and multimodal forwards ran before MR moved; the task step's forward ran
        # after the multimodal step's update, and the task step then moved MR again
        assert all(torch.equal(s, start) for s in seen[:3])
        assert not torch.equal(seen[3], start) and not torch.equal(seen[3], end)


@pytest.mark.parametrize("scheduler, needle", [
    ("{name: StepLr, step_size: 1}", "'StepLr' is not a learning-rate scheduler of torch.optim.lr_scheduler; did you mean 'StepLR'?"),
    ("{name: StepLR, stepsize: 1}", "StepLR: "),
    ("{name: StepLR, optimizer: 1}", "is set by imrec"),
    ("StepLR", "a mapping with the scheduler's class name"),
])
def test_scheduler_errors_name_the_key(tmp_path, scheduler, needle):
    key = "train.phases.recover.optimizers.main.scheduler"
    with pytest.raises(RecipeError) as err:
        recipe = load_recipe(RECIPE, [f"output_dir={tmp_path}", f"{key}={scheduler}"])
        prepared = prepare(recipe)
        model = build_model(prepared.spec, recipe.model)
        plan_phase(model, recipe.train.phases[1])
    assert needle in str(err.value) and key in str(err.value)


def test_plateau_scheduler_follows_the_selection_direction(tmp_path):
    from imrec.trainer import step_scheduler

    key = "train.phases.recover.optimizers.main.scheduler"
    recipe = load_recipe(RECIPE, [f"output_dir={tmp_path}", f"{key}={{name: ReduceLROnPlateau, factor: 0.5, patience: 0}}"])
    prepared = prepare(recipe)
    model = build_model(prepared.spec, recipe.model)
    plan = plan_phase(model, recipe.train.phases[1], select_mode="max")
    sched, opt = plan.schedulers["main"], plan.optimizers["main"]
    assert sched.mode == "max"
    step_scheduler(sched, 0.5)
    step_scheduler(sched, 0.6)  # better (higher): no cut
    assert opt.param_groups[0]["lr"] == 2.0e-3
    step_scheduler(sched, 0.4)  # worse: cut at once (patience 0)
    assert opt.param_groups[0]["lr"] == 1.0e-3
    step_scheduler(sched, float("nan"))  # no VALID value: no step
    assert opt.param_groups[0]["lr"] == 1.0e-3
