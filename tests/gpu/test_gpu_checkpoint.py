"""A checkpoint written from a CUDA state resumes on CUDA at the same step with the same next
step, and loads on the CPU (networks, optimiser with the CPU's kernel, one CPU step)."""

from __future__ import annotations

import torch

from attmask_ray.optim import unwrap
from attmask_ray.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from attmask_ray.train.state import TrainingState
from attmask_ray.train.step import train_step
from tests.gpu.helpers import GPU, crops, ieee_fp32, params, rel_err, tiny_cfg
from tests.gpu.test_gpu_step import WATCHED

pytestmark = GPU


def test_gpu_checkpoint_resumes_on_gpu_and_loads_on_cpu(tmp_path):
    cfg = tiny_cfg("bf16", strategy="attmask_high")
    with ieee_fp32():
        gpu = TrainingState.build(cfg, steps_per_epoch=100, device="cuda")
        for i in range(3):
            train_step(gpu, crops(i, "cuda"))
        path = save_checkpoint(tmp_path / "ckpt", gpu.state_dict(), cfg, {"loss": 1.0})
        saved_params = params(gpu.student)
        saved_teacher = params(gpu.teacher)
        expected = {k: float(v) for k, v in train_step(gpu, crops(3, "cuda")).items()}  # the uninterrupted run

        ckpt = load_checkpoint(path, map_location="cuda")
        assert ckpt.step == 3 and ckpt.config == cfg
        resumed = TrainingState.build(ckpt.config, steps_per_epoch=100, device="cuda")
        resumed.load_state_dict(ckpt.payload["state"])
        set_rng_state(ckpt.payload["rng"])
        assert resumed.step == 3
        assert all(g["fused"] for g in resumed.optimizer.param_groups)
        assert all(s["step"].device.type == "cuda" for s in resumed.optimizer.state.values())
        for n, p in params(resumed.student).items():
            assert torch.equal(p, saved_params[n]), n
        got = {k: float(v) for k, v in train_step(resumed, crops(3, "cuda")).items()}
    assert resumed.step == 4
    for key in ("loss", "cls", "mim", "masked_ratio"):  # same masks (seed, rank, step) and state
        assert abs(got[key] - expected[key]) <= 1e-5 * max(1.0, abs(expected[key])), (key, got[key], expected[key])
    # parameters after the step (attention backward may use atomics: allow rounding-level noise)
    after_gpu, after_resumed = params(gpu.student), params(resumed.student)
    for n in WATCHED:
        assert rel_err(after_resumed[n], after_gpu[n]) <= 1e-4, n

    cpu_ckpt = load_checkpoint(path, map_location="cpu")
    cpu_cfg = tiny_cfg("fp32", strategy="attmask_high")
    cpu = TrainingState.build(cpu_cfg, steps_per_epoch=100)
    cpu.load_state_dict(cpu_ckpt.payload["state"])
    assert cpu.step == 3
    assert all(g["foreach"] and not g["fused"] for g in cpu.optimizer.param_groups)
    assert all(s["step"].device.type == "cpu" for s in cpu.optimizer.state.values())
    for n, p in params(cpu.student).items():
        assert torch.equal(p, saved_params[n]), n
    teacher = cpu_ckpt.network("teacher", device="cpu")
    for n, p in teacher.named_parameters():
        assert p.device.type == "cpu" and torch.equal(p.detach().double(), saved_teacher[n]), n
    out = train_step(cpu, crops(3))  # the run continues on the CPU
    assert cpu.step == 4 and torch.isfinite(out["loss"])
    assert unwrap(cpu.student).backbone.mask_token.device.type == "cpu"
