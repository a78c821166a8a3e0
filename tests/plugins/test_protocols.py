"""Missing-modality protocols: exact counts, determinism, the reference's quota semantics, errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from imrec.errors import DataError, ImrecError
from imrec_protocols import FixedSubsets, FrameDrop, ImderBatch, RandomMissing
from imrec_protocols.imder_batch import asymptotic_rate, batch_plan, effective_rate
from imrec_protocols.keys import stable_key
from imrec_protocols.random_missing import missing_count

REPO = Path(__file__).resolve().parents[2]
NAMES = ["text", "audio", "vision"]


def ids_of(n: int, prefix: str = "vid") -> list[str]:
    return [f"{prefix}{i // 7}$_${i % 7}" for i in range(n)]


def one(protocol, names=NAMES):
    (condition,) = protocol.conditions(names)
    return condition


# --------------------------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------------------------
def test_protocols_are_registered_under_their_names():
    from imrec.plugins import get_registry

    reg = get_registry()
    assert reg.resolve("protocol", "protocols.random").factory is RandomMissing
    assert reg.resolve("protocol", "protocols.imder-batch").factory is ImderBatch
    assert reg.resolve("protocol", "protocols.fixed").factory is FixedSubsets
    assert reg.resolve("protocol", "protocols.frame").factory is FrameDrop
    assert reg.resolve("protocol", "random").factory is RandomMissing  # bare name


# --------------------------------------------------------------------------------------------------------------
# Stable keys: pinned, so evaluation masks stay comparable across versions and machines
# --------------------------------------------------------------------------------------------------------------
def test_stable_key_and_masks_are_pinned():
    assert stable_key("imrec") == 766331511022156254
    masks = one(RandomMissing(rate=0.5)).masks(["a", "b", "c", "d", "e", "f"], NAMES, seed=1111)
    assert masks.astype(int).tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1]]
    frames = one(FrameDrop(rate=0.5)).frame_masks(["a", "b", "c"], NAMES, {"audio": 6}, seed=1111)
    assert frames["audio"].astype(int).tolist() == [[0, 0, 1, 0, 0, 0], [0, 1, 0, 1, 1, 1], [0, 1, 0, 0, 1, 0]]


# --------------------------------------------------------------------------------------------------------------
# protocols.random
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 6])
@pytest.mark.parametrize("n", [1, 2, 5, 7, 33, 686])
def test_random_exact_count_and_at_least_one_kept(n, k):
    names = [f"m{j}" for j in range(k)]
    top = (k - 1) / k
    rates = sorted({0.0, 0.1, 0.3, 0.5, round(top, 2) if round(top, 2) <= top else 0.6, top})
    for cond in RandomMissing(rates=rates).conditions(names):
        masks = cond.masks(ids_of(n), names, seed=7)
        assert masks.shape == (n, k) and masks.dtype == bool
        expected = math.floor(cond.rate * n * k + 0.5 + 1e-9)
        assert int((~masks).sum()) == expected == missing_count(cond.rate, n, k)
        assert masks.any(axis=1).all()


def test_random_counts_by_hand():
    # 686·3·0.3 = 617.4 → 617; 5·3·0.1 = 1.5 → 2 (half up, on the decimal as written); 2/3 of 3·N → 2·N.
    assert missing_count(0.3, 686, 3) == 617
    assert missing_count(0.1, 5, 3) == 2
    assert missing_count(0.5, 7, 3) == 11  # 10.5 → 11
    assert missing_count(2 / 3, 1000, 3) == 2000
    assert missing_count(0.0, 1000, 3) == 0


def test_random_zero_rate_is_complete_and_max_rate_keeps_exactly_one():
    ids = ids_of(300)
    assert one(RandomMissing(rate=0.0)).masks(ids, NAMES, seed=1).all()
    masks = one(RandomMissing(rate=2 / 3)).masks(ids, NAMES, seed=1)
    assert (masks.sum(axis=1) == 1).all()
    # The kept modality is spread over all three (no modality privileged).
    assert (masks.sum(axis=0) > 60).all()


def test_random_masks_are_invariant_to_id_order():
    ids = ids_of(500)
    cond = one(RandomMissing(rate=0.4))
    base = cond.masks(ids, NAMES, seed=1111)
    perm = np.random.default_rng(0).permutation(len(ids))
    permuted = cond.masks([ids[i] for i in perm], NAMES, seed=1111)
    np.testing.assert_array_equal(permuted, base[perm])
    # numpy string arrays work the same as lists
    np.testing.assert_array_equal(cond.masks(np.array(ids), NAMES, seed=1111), base)


def test_random_masks_follow_modality_names_not_positions():
    ids = ids_of(200)
    cond = one(RandomMissing(rate=0.4))
    base = cond.masks(ids, NAMES, seed=3)
    swapped = cond.masks(ids, ["vision", "text", "audio"], seed=3)
    np.testing.assert_array_equal(swapped, base[:, [2, 0, 1]])


def test_random_masks_nested_across_rates():
    ids = ids_of(400)
    conds = RandomMissing(rates=[0.1, 0.3, 0.5, 0.6]).conditions(NAMES)
    missing = [~c.masks(ids, NAMES, seed=5) for c in conds]
    for lower, higher in zip(missing, missing[1:]):
        assert not (lower & ~higher).any()


def test_random_determinism_seed_and_epochs():
    ids = ids_of(300)
    cond = one(RandomMissing(rate=0.3))
    eval_masks = cond.masks(ids, NAMES, seed=1111)
    np.testing.assert_array_equal(eval_masks, cond.masks(ids, NAMES, seed=1111))
    assert not np.array_equal(eval_masks, cond.masks(ids, NAMES, seed=1112))
    e0, e1 = cond.masks(ids, NAMES, 1111, epoch=0), cond.masks(ids, NAMES, 1111, epoch=1)
    np.testing.assert_array_equal(e0, cond.masks(ids, NAMES, 1111, epoch=0))
    assert not np.array_equal(e0, e1)
    assert not np.array_equal(e0, eval_masks)
    for m in (e0, e1):  # training masks obey the same exact count
        assert int((~m).sum()) == missing_count(0.3, 300, 3) and m.any(axis=1).all()


def test_random_marginal_rate_per_modality():
    masks = one(RandomMissing(rate=0.3)).masks(ids_of(6000), NAMES, seed=0)
    np.testing.assert_allclose((~masks).mean(axis=0), 0.3, atol=0.02)


def test_random_rate_above_maximum_is_an_error_naming_rate_k_and_maximum():
    protocol = RandomMissing(rates=[0.5, 0.7])  # K unknown yet: fine
    with pytest.raises(ImrecError) as err:
        protocol.conditions(NAMES)
    msg = str(err.value)
    assert "0.7" in msg and "K = 3" in msg and "2/3" in msg and "0.5" not in msg.split("cannot")[0]
    cond = RandomMissing(rate=0.6).conditions(["a", "b", "c", "d"])[0]  # fine for K = 4 (max 3/4)
    with pytest.raises(ImrecError, match="K = 2"):
        cond.masks(ids_of(10), ["a", "b"], seed=0)  # the same condition on K = 2 (max 1/2)
    with pytest.raises(ImrecError, match="K = 1"):
        RandomMissing(rate=0.1).conditions(["only"])


def test_random_float_noise_at_the_maximum_is_accepted():
    masks = one(RandomMissing(rate=0.6666666666667)).masks(ids_of(50), NAMES, seed=0)
    assert int((~masks).sum()) == 100


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"rate": 0.1, "rates": [0.2]}, {"rate": -0.1}, {"rate": 1.5}, {"rates": []}, {"rates": [0.1, 0.1]},
     {"rate": "0.1"}, {"rate": True}],
)
def test_random_bad_parameters(kwargs):
    with pytest.raises(ImrecError):
        RandomMissing(**kwargs)


def test_random_condition_names_and_description():
    conds = RandomMissing(rates=[0.0, 0.3, 0.125, 2 / 3]).conditions(NAMES)
    assert [c.name for c in conds] == ["random/mr=0.00", "random/mr=0.30", "random/mr=0.125",
                                       "random/mr=0.6666666666666666"]
    assert conds[1].describe()["rate"] == 0.3 and conds[1].describe()["protocol"] == "protocols.random"


def test_duplicate_ids_are_a_data_error():
    with pytest.raises(DataError, match="'x'"):
        one(RandomMissing(rate=0.3)).masks(["x", "y", "x"], NAMES, seed=0)


def test_bad_seed_is_an_error():
    with pytest.raises(ImrecError):
        one(RandomMissing(rate=0.3)).masks(["x"], NAMES, seed="1")


# --------------------------------------------------------------------------------------------------------------
# protocols.imder-batch
# --------------------------------------------------------------------------------------------------------------
def reference_plan(mr: float, n_batches: int) -> list[int]:
    """The reference's loop, transcribed (ROHYDR.py do_test): 2 = missing two, 1 = missing one, 0 = none."""
    miss_2 = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0]
    miss_1 = [0.1, 0.2, 0.3, 0.2, 0.1, 0.0, 0.0]
    miss_one, miss_two, out = 0, 0, []
    for _ in range(n_batches):
        if miss_two / (np.round(n_batches / 10) * 10) < miss_2[int(mr * 10 - 1)]:
            out.append(2)
            miss_two += 1
        elif miss_one / (np.round(n_batches / 10) * 10) < miss_1[int(mr * 10 - 1)]:
            out.append(1)
            miss_one += 1
        else:
            out.append(0)
    return out


@pytest.mark.parametrize("mr", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
@pytest.mark.parametrize("n_batches", [6, 8, 15, 22, 25, 37, 41, 128])
def test_imder_batch_plan_matches_the_reference_loop(mr, n_batches):
    assert batch_plan(mr, n_batches).tolist() == reference_plan(mr, n_batches)


def test_imder_batch_plan_by_hand_mosi_test():
    # MOSI test: 686 samples, B = 32 → 22 batches, denominator round(2.2)·10 = 20;
    # MR 0.3: quotas 0.3·20 = 6 batches missing two, then 6 missing one.
    assert batch_plan(0.3, 22).tolist() == [2] * 6 + [1] * 6 + [0] * 10
    assert effective_rate(0.3, 686, 32) == pytest.approx((2 * 6 * 32 + 6 * 32) / (3 * 686))


@pytest.mark.parametrize("mr", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
def test_imder_batch_effective_rate_matches_measured_masks(mr):
    n, b = 10_000, 32
    cond = one(ImderBatch(rate=mr, batch_size=b))
    masks = cond.masks(ids_of(n), NAMES, seed=1111)
    assert int((~masks).sum()) == round(effective_rate(mr, n, b) * 3 * n)
    assert cond.effective_rate(n) == effective_rate(mr, n, b)
    # With L a multiple of 10 and full batches the effective rate is the asymptotic one exactly.
    assert effective_rate(mr, 320 * b, b) == pytest.approx(asymptotic_rate(mr), abs=1e-12)
    assert masks.any(axis=1).all()


def test_imder_batch_asymptotic_rates():
    got = [asymptotic_rate(r) for r in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)]
    np.testing.assert_allclose(got, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 2 / 3])
    assert asymptotic_rate(0.0) == 0.0 and asymptotic_rate(0.0, reference_zero=True) == pytest.approx(2 / 3)


def test_imder_batch_one_pattern_per_batch_and_uniform_choice():
    n, b = 3200, 32
    masks = one(ImderBatch(rate=0.3, batch_size=b)).masks(ids_of(n), NAMES, seed=3)
    batches = masks.reshape(n // b, b, 3)
    assert (batches == batches[:, :1, :]).all()
    plan = batch_plan(0.3, n // b)
    np.testing.assert_array_equal(3 - batches[:, 0, :].sum(axis=1), plan)


def test_imder_batch_zero_rate_and_reference_zero():
    ids = ids_of(640)
    assert one(ImderBatch(rate=0.0)).masks(ids, NAMES, seed=0).all()
    cond = one(ImderBatch(rate=0.0, reference_zero=True))
    assert cond.name.endswith("/reference-zero")
    assert (cond.masks(ids, NAMES, seed=0).sum(axis=1) == 1).all()  # 20 batches, denominator 20: all miss two


def test_imder_batch_determinism_and_epochs():
    ids = ids_of(960)
    cond = one(ImderBatch(rate=0.5, batch_size=32))
    a = cond.masks(ids, NAMES, seed=1111)
    np.testing.assert_array_equal(a, cond.masks(ids, NAMES, seed=1111))
    assert not np.array_equal(a, cond.masks(ids, NAMES, seed=1112))
    assert not np.array_equal(cond.masks(ids, NAMES, 1111, epoch=0), cond.masks(ids, NAMES, 1111, epoch=1))


@pytest.mark.parametrize("kwargs", [{"rate": 0.25}, {"rate": 0.8}, {"rate": 0.3, "batch_size": 0},
                                    {"rate": 0.3, "reference_zero": "yes"}, {"rates": [0.1, 0.1]}])
def test_imder_batch_bad_parameters(kwargs):
    with pytest.raises(ImrecError):
        ImderBatch(**kwargs)


def test_imder_batch_needs_three_modalities_and_six_batches():
    with pytest.raises(ImrecError, match="exactly 3 modalities"):
        ImderBatch(rate=0.3).conditions(["a", "b"])
    cond = one(ImderBatch(rate=0.3))
    with pytest.raises(ImrecError, match="exactly 3 modalities"):
        cond.masks(ids_of(500), ["a", "b", "c", "d"], seed=0)
    with pytest.raises(ImrecError, match="6 batches"):
        cond.masks(ids_of(5 * 32), NAMES, seed=0)  # 5 batches: np.round(0.5) = 0
    assert cond.masks(ids_of(5 * 32 + 1), NAMES, seed=0).shape == (161, 3)


def test_docs_effective_rate_table_matches_the_function():
    text = (REPO / "docs" / "protocols.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| nominal MR"))
    columns = re.findall(r"N=(\d+), B=(\d+)", lines[start])
    assert len(columns) >= 6
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    assert len(rows) == 8
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        mr, zero = float(cells[0].split()[0]), "reference_zero" in cells[0]
        assert float(cells[1]) == pytest.approx(asymptotic_rate(mr, zero), abs=5e-5)
        for (n, b), cell in zip(columns, cells[2:]):
            assert float(cell) == pytest.approx(effective_rate(mr, int(n), int(b), zero), abs=5e-5), (row, n, b)


# --------------------------------------------------------------------------------------------------------------
# protocols.fixed
# --------------------------------------------------------------------------------------------------------------
def test_fixed_all_subsets_in_table_order():
    conds = FixedSubsets(subsets="all").conditions(NAMES)
    assert [c.name for c in conds] == [
        "fixed/text", "fixed/audio", "fixed/vision", "fixed/text+audio", "fixed/text+vision",
        "fixed/audio+vision", "fixed/text+audio+vision",
    ]
    assert len(FixedSubsets(subsets="all").conditions([f"x{i}" for i in range(6)])) == 63
    masks = conds[5].masks(ids_of(4), NAMES, seed=0)
    assert masks.tolist() == [[False, True, True]] * 4


def test_fixed_available_is_normalised_to_dataset_order_and_ignores_seed():
    cond = one(FixedSubsets(available=["audio", "text"]))
    assert cond.name == "fixed/text+audio" and cond.describe()["available"] == ["text", "audio"]
    a = cond.masks(ids_of(10), NAMES, seed=0)
    np.testing.assert_array_equal(a, cond.masks(ids_of(10), NAMES, seed=9, epoch=3))
    assert a.tolist() == [[True, True, False]] * 10


def test_fixed_explicit_subsets():
    conds = FixedSubsets(subsets=[["text"], ["vision", "audio"]]).conditions(NAMES)
    assert [c.name for c in conds] == ["fixed/text", "fixed/audio+vision"]


def test_fixed_unknown_modality_lists_the_dataset_names():
    with pytest.raises(ImrecError) as err:
        FixedSubsets(available=["txt"]).conditions(NAMES)
    assert "'txt'" in str(err.value) and "text, audio, vision" in str(err.value)
    cond = one(FixedSubsets(available=["text"]))
    with pytest.raises(ImrecError, match="x1, x2"):
        cond.masks(ids_of(3), ["x1", "x2"], seed=0)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"available": ["text"], "subsets": "all"}, {"subsets": "some"}, {"subsets": []}],
)
def test_fixed_bad_parameters(kwargs):
    with pytest.raises(ImrecError):
        FixedSubsets(**kwargs)


@pytest.mark.parametrize("subsets", [[[]], [["text", "text"]], [["text"], ["text"]], ["text"]])
def test_fixed_bad_subsets(subsets):
    with pytest.raises(ImrecError):
        FixedSubsets(subsets=subsets).conditions(NAMES)


# --------------------------------------------------------------------------------------------------------------
# protocols.frame
# --------------------------------------------------------------------------------------------------------------
def test_frame_masks_keep_every_modality_and_drop_steps_at_rate():
    ids = ids_of(2000)
    cond = one(FrameDrop(rate=0.3))
    assert cond.name == "frame/r=0.30"
    assert cond.masks(ids, NAMES, seed=0).all()
    frames = cond.frame_masks(ids, NAMES, {"text": 50, "audio": 1, "vision": 20}, seed=0)
    assert frames["text"].shape == (2000, 50) and frames["vision"].shape == (2000, 20)
    assert frames["audio"].all()  # vector modality: never frame-dropped
    assert abs((~frames["text"]).mean() - 0.3) < 0.01 and abs((~frames["vision"]).mean() - 0.3) < 0.01


def test_frame_masks_zero_rate_nesting_permutation_and_epochs():
    ids = ids_of(300)
    steps = {"text": 40, "audio": 40}
    assert all(m.all() for m in one(FrameDrop(rate=0.0)).frame_masks(ids, NAMES, steps, seed=1).values())
    conds = FrameDrop(rates=[0.2, 0.6]).conditions(NAMES)
    low, high = (c.frame_masks(ids, NAMES, steps, seed=1)["text"] for c in conds)
    assert not (~low & high).any()  # dropped at 0.2 ⊂ dropped at 0.6
    cond = one(FrameDrop(rate=0.5))
    base = cond.frame_masks(ids, NAMES, steps, seed=1)
    perm = np.random.default_rng(1).permutation(len(ids))
    permuted = cond.frame_masks([ids[i] for i in perm], NAMES, steps, seed=1)
    np.testing.assert_array_equal(permuted["audio"], base["audio"][perm])
    assert not np.array_equal(base["text"], base["audio"])  # modalities draw independently
    e0 = cond.frame_masks(ids, NAMES, steps, seed=1, epoch=0)["text"]
    np.testing.assert_array_equal(e0, cond.frame_masks(ids, NAMES, steps, seed=1, epoch=0)["text"])
    assert not np.array_equal(e0, cond.frame_masks(ids, NAMES, steps, seed=1, epoch=1)["text"])
    assert not np.array_equal(base["text"], cond.frame_masks(ids, NAMES, steps, seed=2)["text"])


def test_frame_masks_errors():
    cond = one(FrameDrop(rate=0.5))
    with pytest.raises(ImrecError, match="'speech'"):
        cond.frame_masks(ids_of(3), NAMES, {"speech": 10}, seed=0)
    with pytest.raises(ImrecError):
        cond.frame_masks(ids_of(3), NAMES, {"text": 0}, seed=0)
    with pytest.raises(ImrecError):
        FrameDrop(rate=0.5, rates=[0.1])
