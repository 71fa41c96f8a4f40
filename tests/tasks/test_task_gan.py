"""The adversarial codec task on 2 real CPU ranks (results from ``task_worker.py``)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.integration

STAGES = [(2, 1), (3, 3)]
# Per micro-batch (grad_accum 2): D's backward/step, then G's; the second micro-batch of
# each optimizer step is the accumulation boundary where both engines apply a step.
GAN_PATTERN = [("discriminator", True, False), ("generator", True, False),
               ("discriminator", True, True), ("generator", True, True)] * 2


@pytest.mark.parametrize("stages", STAGES, ids=lambda s: f"g{s[0]}-d{s[1]}")
def test_each_step_leaves_the_other_engine_bitwise_unchanged(task_results, stages):
    """A D step (backward + step) leaves G bitwise unchanged and vice versa; each engine's
    own parameters change exactly at accumulation boundaries."""
    got = task_results["gan"][stages]
    assert got["zero"] == stages
    assert got["events"] == GAN_PATTERN


@pytest.mark.parametrize("stages", STAGES, ids=lambda s: f"g{s[0]}-d{s[1]}")
def test_accumulated_updates_match_plain_pytorch(task_results, stages):
    """grad_accum 2, 2 ranks: G and D after 2 optimizer steps equal a single-process
    PyTorch loop on the same global micro-batches (hinge for g2-d1, least squares for
    g3-d3)."""
    got = task_results["gan"][stages]
    for role in ("generator", "discriminator"):
        final, ref = got["final"][role], got["ref"][role]
        assert final.keys() == ref.keys()
        for key, value in ref.items():
            torch.testing.assert_close(final[key], value.float(), atol=2e-6, rtol=1e-5,
                                       msg=lambda m, k=f"{role}.{key}": f"{k}: {m}")


def test_discriminator_learning_rate_override(task_results):
    got = task_results["gan"][(2, 1)]
    assert got["d_lr"] == pytest.approx(2e-3)
    assert got["g_lr"] == pytest.approx(1e-3)


def test_warmup_and_d_update_every(task_results):
    """warmup_steps 2, d_update_every 2, 6 steps: D updates on steps 2 and 4 only, and no
    D engine call happens during warmup or on skipped steps (no hang: the run finished)."""
    got = task_results["gan_schedule"]["schedule"]
    assert got["d_changed"] == [False, False, True, False, True, False]
    assert got["steps"] == {"generator": 6, "discriminator": 2}
    assert got["micro_steps"] == {"generator": 12, "discriminator": 4}
    assert all(others_same for _, others_same, _ in got["events"])
    assert [role for role, _, _ in got["events"][:4]] == ["generator"] * 4
    assert "loss/adversarial" not in got["logs"][0]  # warmup: reconstruction only
    assert "loss/adversarial" in got["logs"][-1]  # step 5: adversarial terms, D frozen
    assert "loss/discriminator" not in got["logs"][-1]


def test_random_discriminator_is_chosen_identically_on_every_rank(task_results):
    got = task_results["gan_schedule"]
    rank0, rank1 = got["chosen"]
    assert rank0 == rank1
    assert set(rank0) == {0, 1}
    assert got["random_run"]["steps"] == {"generator": 3, "discriminator": 3}


def test_non_finite_micro_batch_is_skipped_on_both_ranks(task_results):
    """A NaN in rank 1's batch only: both ranks report the skip, no engine moves or counts
    it, G and D stay on the same accumulation boundary, and training continues."""
    got = task_results["gan_nan"]
    assert got["flags"] == [(0.0, 1.0), (0.0, 1.0)]
    assert got["first_only_accumulated"]
    assert got["unchanged_by_skip"]
    assert got["micro_after_bad"] == {"generator": 1, "discriminator": 1}
    assert got["steps_after_0"] == {"generator": 1, "discriminator": 1}
    rest = got["rest"]
    assert [step for step, _ in rest["skipped"]] == [1]
    assert rest["steps"] == {"generator": 3, "discriminator": 3}
    assert rest["micro_steps"] == {"generator": 6, "discriminator": 6}
    assert got["finite"]


def test_trainer_runs_the_gan_task_end_to_end(task_results):
    """The real Trainer, grad_accum 2, warmup 1, 3 steps: D stepped twice, one checkpoint
    folder per engine role, and the export loads as the generator alone."""
    got = task_results["trainer"]["gan"]
    assert got["steps"] == {"generator": 3, "discriminator": 2}
    roles = {f.split("/")[0] for f in got["files"] if "/ckpt/" in f}
    assert roles == {"generator", "discriminator"}
    assert got["loaded"] == "AudioAutoencoder"
