"""The optimised training step on CUDA (fp32 and bf16 autocast) against the CPU fp32 step.

Both start from the same warm state (one CPU step done, so AdamW has moment estimates and a
parameter update is a smooth function of the gradient, not the sign of the first one),
loaded onto each device, and take one ``train_step`` on the same crops; block masks come
from the CPU generator, so both see the same masks. Compared: loss / cls / mim and the
change of a few student parameters and of the EMA teacher.

Tolerances, set from CPU runs of the same test (float32 vs float64: loss 7e-7, student
deltas <= 1e-5, teacher deltas <= 3.4e-4 relative, the teacher's being small differences of
large numbers; CPU bf16 autocast vs float32: loss 0.034 of 7.03, student deltas <= 0.065,
teacher deltas <= 0.031), with margin for a second device's rounding:
  * CUDA fp32 (TF32 off): |loss diff| <= 1e-4; ||delta_gpu - delta_cpu|| / ||delta_cpu|| <= 1e-3
    (student), <= 5e-3 (teacher)
  * CUDA bf16 autocast:   |loss diff| <= 0.02 * |loss|; relative delta error <= 0.25
"""

from __future__ import annotations

import copy

import pytest
import torch

from attmask_ray.masking import generate_masks
from attmask_ray.train.state import TrainingState
from attmask_ray.train.step import mask_generator, train_step
from tests.gpu.helpers import GPU, crops, ieee_fp32, params, rel_err, snapshot, tiny_cfg

pytestmark = GPU

WATCHED = ("backbone.vit.patch_embed.proj.weight", "backbone.vit.blocks.0.attn.qkv.weight",
           "backbone.vit.blocks.2.mlp.fc2.weight", "backbone.vit.pos_embed", "backbone.vit.cls_token",
           "backbone.mask_token", "head.mlp.0.weight", "head.last_layer.parametrizations.weight.original1")
TOL = {"fp32": dict(loss_abs=1e-4, loss_rel=0.0, delta=1e-3, teacher_delta=5e-3),
       "bf16": dict(loss_abs=0.0, loss_rel=0.02, delta=0.25, teacher_delta=0.25)}


def _one_step(state: TrainingState, warm: dict, device: str) -> tuple[dict, dict, dict]:
    state.load_state_dict(copy.deepcopy(warm))  # a CPU load shares the optimiser tensors; the step updates them in place
    s0, t0 = params(state.student), params(state.teacher)
    out = train_step(state, crops(1, device))
    out = {k: float(v) for k, v in out.items()}
    ds = {n: p - s0[n] for n, p in params(state.student).items()}
    dt = {n: p - t0[n] for n, p in params(state.teacher).items()}
    return out, ds, dt


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_step_matches_cpu_fp32_step(precision):
    warm_state = TrainingState.build(tiny_cfg("fp32"), steps_per_epoch=100)
    train_step(warm_state, crops(0))
    warm = snapshot(warm_state)

    cpu = TrainingState.build(tiny_cfg("fp32"), steps_per_epoch=100)
    ref, ref_ds, ref_dt = _one_step(cpu, warm, "cpu")
    gpu = TrainingState.build(tiny_cfg(precision), steps_per_epoch=100, device="cuda")
    assert all(g["fused"] for g in gpu.optimizer.param_groups), "CUDA states use the fused AdamW kernel"
    with ieee_fp32():
        out, ds, dt = _one_step(gpu, warm, "cuda")

    tol = TOL[precision]
    for key in ("loss", "cls", "mim", "masked_ratio"):
        bound = tol["loss_abs"] + tol["loss_rel"] * abs(ref[key])
        assert abs(out[key] - ref[key]) <= bound, (key, out[key], ref[key], bound)
    errors = {n: rel_err(ds[n], ref_ds[n]) for n in WATCHED}
    assert max(errors.values()) <= tol["delta"], errors
    assert all(torch.linalg.vector_norm(ref_ds[n]) > 0 for n in WATCHED)  # every watched parameter moved
    t_err = {n: rel_err(dt[n], ref_dt[n]) for n in WATCHED}
    assert max(t_err.values()) <= tol["teacher_delta"], t_err
    assert gpu.step == cpu.step == warm["step"] + 1


@pytest.mark.parametrize("strategy", ["attmask_high", "attmask_hint", "random", "block"])
def test_masks_on_cuda_equal_masks_on_cpu(strategy):
    """Same scores and generator state -> the same masks on either device (the draws are made on
    the CPU generator and copied without waiting; the rest is exact integer/sort work)."""
    g = torch.Generator().manual_seed(5)
    scores = torch.rand(16, 49, generator=g)
    out, counts = {}, {}
    for dev in ("cpu", "cuda"):
        out[dev], counts[dev] = generate_masks(scores.to(dev), (7, 7), strategy, ratio=(0.1, 0.5), prob=0.5,
                                               generator=mask_generator(3, 0, 11), return_count=True)
        assert out[dev].device.type == dev
    assert torch.equal(out["cuda"].cpu(), out["cpu"])
    assert counts["cuda"] == counts["cpu"] == int(out["cpu"].sum())  # known on the host, no device read
    # draws from a CUDA generator are on the device: no host count (the student then indexes by mask)
    cuda_gen = torch.Generator(device="cuda").manual_seed(3)
    masks, count = generate_masks(scores.cuda(), (7, 7), strategy, generator=cuda_gen, return_count=True)
    assert masks.device.type == "cuda" and count is None
