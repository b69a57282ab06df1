"""AdamW kernel choice (fused on CUDA, foreach on the CPU) and checkpoints across the two."""

from __future__ import annotations

import copy

import pytest
import torch

from attmask_ray.config import from_dict
from attmask_ray.optim import apply_schedule, unwrap
from attmask_ray.train.state import TrainingState, adamw_implementation
from attmask_ray.train.step import train_step
from tests.conftest import TINY_MODEL


def _cfg():
    return from_dict(dict(
        model=dict(TINY_MODEL, drop_path_rate=0.0),
        data=dict(global_crop_size=28, local_crop_size=12, local_crops_number=2, eval_resize=32),
        optim=dict(epochs=100, batch_size=8, warmup_epochs=0, lr=0.05, freeze_last_layer=0),
        mask=dict(strategy="block")))


def _crops(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(8, 3, s, s, generator=g) for s in (28, 28, 12, 12)]


def test_cpu_state_uses_foreach_and_the_choice_follows_the_devices():
    state = TrainingState.build(_cfg(), steps_per_epoch=10)
    assert all(g["foreach"] and not g["fused"] for g in state.optimizer.param_groups)
    assert adamw_implementation([torch.zeros(1)]) == {"fused": False, "foreach": True}
    assert adamw_implementation([]) == {"fused": False, "foreach": True}
    assert adamw_implementation([torch.zeros(1, device="meta")]) == {"fused": False, "foreach": True}


def test_fused_adamw_kernel_computes_the_foreach_update():
    """The fused AdamW kernel (what CUDA states use) = the foreach one, over steps with changing lr/wd."""
    torch.manual_seed(0)
    params = [torch.randn(33, 7), torch.randn(7), torch.randn(5, 5, 3)]
    runs = {}
    for impl in ({"foreach": True}, {"fused": True}):
        ps = [p.clone().requires_grad_() for p in params]
        opt = torch.optim.AdamW([{"params": ps[:1], "weight_decay": 0.04}, {"params": ps[1:], "weight_decay": 0.0}],
                                lr=0.0, **impl)
        g = torch.Generator().manual_seed(1)
        for step in range(5):
            apply_schedule(opt, lr=1e-3 * (step + 1), wd=0.04 + 0.01 * step)
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g) * 10 ** (-step)
            opt.step()
        runs[next(iter(impl))] = ps
    for a, b in zip(runs["foreach"], runs["fused"]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_checkpoint_from_a_fused_optimizer_resumes_with_this_states_kernel():
    """A GPU checkpoint's optimiser groups say fused=True; loaded on the CPU they keep foreach
    (torch's load would take the saved flags) and the step counters stay on the host."""
    state = TrainingState.build(_cfg(), steps_per_epoch=10)
    train_step(state, _crops(0))
    saved = copy.deepcopy(state.state_dict())
    as_gpu = copy.deepcopy(saved)
    for g in as_gpu["optimizer"]["param_groups"]:
        g["fused"], g["foreach"] = True, False
    for s in as_gpu["optimizer"]["state"].values():
        s["step"] = s["step"].to(torch.float32)  # fused keeps float32 counters (on the device)
    plain, resumed = TrainingState.build(_cfg(), steps_per_epoch=10), TrainingState.build(_cfg(), steps_per_epoch=10)
    plain.load_state_dict(saved)
    resumed.load_state_dict(as_gpu)
    assert all(g["foreach"] and not g["fused"] for g in resumed.optimizer.param_groups)
    assert all(s["step"].device.type == "cpu" for s in resumed.optimizer.state.values())
    a, b = train_step(plain, _crops(1)), train_step(resumed, _crops(1))
    assert torch.equal(a["loss"], b["loss"])
    for (n, p), q in zip(unwrap(plain.student).named_parameters(), unwrap(resumed.student).parameters()):
        assert torch.equal(p, q), n


def test_group_count_mismatch_is_left_to_torch():
    state = TrainingState.build(_cfg(), steps_per_epoch=10)
    sd = copy.deepcopy(state.state_dict())
    sd["optimizer"]["param_groups"] = sd["optimizer"]["param_groups"][:1]
    with pytest.raises(ValueError, match="parameter groups"):
        state.load_state_dict(sd)
