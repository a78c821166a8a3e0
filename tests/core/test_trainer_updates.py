"""imrec.trainer.updates: the two update modes, `when: missing`, and the distributed gradients, each on its own.

The mode tests use two scalar parameters and two steps: ``first`` moves ``a`` towards 1 (loss (a - 1)²),
``second`` moves ``b`` towards a + 1 (loss (b - a - 1)²), each with SGD at lr 0.5 from a = b = 0. The first step
takes a to exactly 1. The second step's gradient is -2 if it is taken at the starting a (= 0), so b becomes 1;
it is -4 if it is taken after the first step's update (a = 1), so b becomes 2.
"""

from types import SimpleNamespace

import pytest
import torch

from imrec.errors import TrainingError
from imrec.model import apply_mask
from imrec.trainer import (
    PhasePlan,
    StepPlan,
    active_steps,
    allreduce_gradients,
    apply_gradients,
    plan_phase,
    sequential_update,
    simultaneous_update,
    step_gradients,
    train_batch,
)

def _toy(when: str = "always"):
    a = torch.nn.Parameter(torch.zeros(()))
    b = torch.nn.Parameter(torch.zeros(()))
    plan = PhasePlan(
        optimizers={"oa": torch.optim.SGD([a], lr=0.5), "ob": torch.optim.SGD([b], lr=0.5)},
        steps=[StepPlan("first", {"fa": 1.0}, "oa", [a], None, None, "always"),
               StepPlan("second", {"fb": 1.0}, "ob", [b], None, None, when)],
        frozen=[], need={"fa", "fb"})
    seen = []  # (a, b, need) at each forward

    def forward(need):
        seen.append((float(a.detach()), float(b.detach()), set(need)))
        losses = {"fa": (a - 1) ** 2, "fb": (b - a - 1) ** 2}
        return SimpleNamespace(losses={n: v for n, v in losses.items() if n in need})

    return a, b, plan, forward, seen


def test_sequential_update_each_step_sees_the_parameters_the_previous_step_left():
    a, b, plan, forward, seen = _toy()
    logged = sequential_update(forward, plan, plan.steps, "p", 0)
    assert seen == [(0.0, 0.0, {"fa"}), (1.0, 0.0, {"fb"})]  # the second forward ran after the first update
    assert float(a.detach()) == 1.0 and float(b.detach()) == 2.0  # b's gradient was taken at a = 1
    assert logged == {"fa": 1.0, "step.first": 1.0, "fb": 4.0, "step.second": 4.0}


def test_simultaneous_update_takes_every_gradient_at_the_same_parameters():
    a, b, plan, forward, seen = _toy()
    logged = simultaneous_update(forward, plan, plan.steps, "p", 0)
    assert seen == [(0.0, 0.0, {"fa", "fb"})]  # one forward for every step
    assert float(a.detach()) == 1.0 and float(b.detach()) == 1.0  # b's gradient was taken at a = 0, before a moved
    assert logged == {"fa": 1.0, "step.first": 1.0, "fb": 1.0, "step.second": 1.0}


def test_when_missing_steps_are_skipped_on_complete_batches_only():
    _, _, plan, _, _ = _toy(when="missing")
    assert [s.name for s in active_steps(plan.steps, complete=True)] == ["first"]
    assert [s.name for s in active_steps(plan.steps, complete=False)] == ["first", "second"]


def test_a_non_finite_loss_names_phase_step_epoch_and_term():
    a, b, plan, _, _ = _toy()
    with pytest.raises(TrainingError, match="phase 'p', step 'second', epoch 3: loss term 'fb' = nan"):
        step_gradients(plan.steps[1], {"fb": torch.tensor(float("nan"))}, {}, "p", 3, retain_graph=False,
                       distributed=False)


def test_a_step_without_its_losses_is_skipped_in_one_process_and_takes_part_distributed():
    _, b, plan, _, _ = _toy()
    second = plan.steps[1]
    assert step_gradients(second, {}, {}, "p", 0, retain_graph=False, distributed=False) is None
    params, grads = step_gradients(second, {}, {}, "p", 0, retain_graph=False, distributed=True)
    assert params == [b] and grads == [None]  # no gradient of its own, but every rank runs the collective


def _other_rank(sent):
    """An allreduce of this rank with another that sends ``sent`` ([flags, *gradients]): the mean, in place."""
    calls = []

    def allreduce(tensors):
        calls.append([t.clone() for t in tensors])
        for t, o in zip(tensors, sent):
            t.add_(o).div_(2)

    return allreduce, calls


def test_distributed_gradients_are_averaged_with_a_zero_for_ranks_without_one():
    p, q, r = (torch.nn.Parameter(torch.zeros(2)) for _ in range(3))
    # This rank has gradients for p and q, the other rank for p and r.
    allreduce, calls = _other_rank([torch.tensor([1.0, 0.0, 1.0]), torch.full((2,), 4.0), torch.zeros(2),
                                    torch.full((2,), 6.0)])
    out = allreduce_gradients([p, q, r], [torch.full((2,), 2.0), torch.full((2,), 8.0), None], allreduce)
    assert len(calls) == 1  # one collective: flags and every gradient together
    assert calls[0][0].tolist() == [1.0, 1.0, 0.0] and torch.equal(calls[0][3], torch.zeros(2))  # zeros sent for r
    assert out[0].tolist() == [3.0, 3.0] and out[1].tolist() == [4.0, 4.0] and out[2].tolist() == [3.0, 3.0]
    # A parameter no rank reached keeps no gradient (the optimiser skips it, as in one process).
    allreduce, _ = _other_rank([torch.tensor([0.0]), torch.zeros(2)])
    assert allreduce_gradients([p], [None], allreduce) == [None]


def test_distributed_step_without_local_loss_applies_the_other_ranks_gradient():
    _, b, plan, _, _ = _toy()
    second = plan.steps[1]
    allreduce, calls = _other_rank([torch.tensor([1.0]), torch.tensor(-4.0)])
    apply_gradients(plan.optimizers["ob"], second, ([b], [None]), allreduce)
    assert len(calls) == 1 and float(b.detach()) == 1.0  # mean gradient (0 + -4) / 2 = -2, lr 0.5
    assert b.grad is None  # cleared after the step
    allreduce, calls = _other_rank([torch.tensor([0.0]), torch.tensor(0.0)])
    apply_gradients(plan.optimizers["ob"], second, ([b], [None]), allreduce)
    assert len(calls) == 1 and float(b.detach()) == 1.0  # no rank had one: the optimiser did not step


def _batch(prepared, model, complete: bool):
    from imrec.loader import condition_masks, iterate

    masked = condition_masks(prepared.train_conditions[1], prepared.splits["train"], model.names, 7, epoch=0)
    full, mask, _ = next(iterate(masked, 32))
    if complete:
        mask = torch.ones_like(mask)
    return apply_mask(full, mask), full


def _recover(tiny_rohydr):
    """The tiny recipe's recover phase, its plan, and a batch in which nothing is missing; the model in training."""
    recipe, prepared, model = tiny_rohydr
    phase = recipe.train.phases[1]
    model.train()
    return model, phase, plan_phase(model, phase), _batch(prepared, model, complete=True)


def test_train_batch_skips_when_missing_steps_on_a_complete_batch(tiny_rohydr):
    model, phase, plan, (inp, full) = _recover(tiny_rohydr)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    logged = train_batch(model, phase, plan, inp, full, epoch=0)
    # unimodal, discriminator and multimodal are `when: missing`: only the task step ran
    assert [k for k in logged if k.startswith("step.")] == ["step.task"]
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed and not any(n.startswith(("recoverer.", "aligner.discriminator.")) for n in changed)
    inp, full = _batch(tiny_rohydr[1], model, complete=False)
    logged = train_batch(model, phase, plan, inp, full, epoch=0)
    assert [k for k in logged if k.startswith("step.")] == ["step.unimodal", "step.discriminator", "step.multimodal",
                                                           "step.task"]


def test_distributed_when_missing_steps_run_when_any_rank_has_something_missing(tiny_rohydr):
    """A complete batch on this rank, an incomplete one on another: every step runs its collective here too."""
    model, phase, plan, (inp, full) = _recover(tiny_rohydr)
    calls = []

    def allreduce(tensors):  # the other rank sends exactly what this one does: the mean is unchanged
        calls.append(len(tensors) - 1)

    asked = []

    def all_true(flag):
        asked.append(flag)
        return False  # the other rank's batch has a missing modality

    train_batch(model, phase, plan, inp, full, 0, allreduce, all_true)
    assert asked == [True]
    assert calls == [len([p for p in s.params if p.requires_grad]) for s in plan.steps]  # all four steps
    calls.clear()
    train_batch(model, phase, plan, inp, full, 0, allreduce, lambda flag: flag)  # every rank complete
    assert calls == [len([p for p in plan.steps[-1].params if p.requires_grad])]  # the task step only
