from __future__ import annotations

import copy
import math

import pytest
import torch

from attmask_ray.config import from_dict
from attmask_ray.optim import unwrap
from attmask_ray.train.state import TrainingState
from attmask_ray.train.step import mask_generator, train_step
from tests.conftest import TINY_MODEL


def _cfg(**over):
    base = dict(
        model=dict(TINY_MODEL),
        data=dict(global_crop_size=28, local_crop_size=12, local_crops_number=2, eval_resize=32),
        optim=dict(epochs=100, batch_size=8, warmup_epochs=0, lr=0.05, freeze_last_layer=0, momentum_teacher=0.996),
        loss=dict(warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_teacher_patch_temp=0.04, teacher_patch_temp=0.04),
        mask=dict(pred_ratio=(0.3, 0.3), masking_prob=1.0),
    )
    for section, values in over.items():
        base.setdefault(section, {}).update(values)
    return from_dict(base)


def _crops(seed=0, b=8):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, 28, 28, generator=g), torch.randn(b, 3, 28, 28, generator=g),
            torch.randn(b, 3, 12, 12, generator=g), torch.randn(b, 3, 12, 12, generator=g)]


def test_thirty_steps_on_a_fixed_batch_lower_the_loss():
    state = TrainingState.build(_cfg(), steps_per_epoch=100)
    crops = _crops()
    losses = [train_step(state, crops)["loss"].item() for _ in range(30)]
    assert state.step == 30
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0, losses


def test_same_seed_gives_same_masks_and_loss():
    runs = []
    for _ in range(2):
        state = TrainingState.build(_cfg(mask=dict(strategy="attmask_hint", pred_ratio=(0.1, 0.5), masking_prob=0.5)),
                                    steps_per_epoch=100)
        torch.manual_seed(123)  # drop path draws
        runs.append([train_step(state, _crops())["loss"] for _ in range(3)])
    torch.testing.assert_close(torch.stack(runs[0]), torch.stack(runs[1]), rtol=0, atol=0)


def test_mask_generator_is_a_function_of_seed_rank_step():
    a = torch.rand(5, generator=mask_generator(0, 1, 7))
    assert torch.equal(a, torch.rand(5, generator=mask_generator(0, 1, 7)))
    assert not torch.equal(a, torch.rand(5, generator=mask_generator(0, 1, 8)))
    assert not torch.equal(a, torch.rand(5, generator=mask_generator(0, 0, 7)))


def _grads_after_step(state, crops, patch_mode):
    torch.manual_seed(0)
    out = train_step(state, crops, patch_mode=patch_mode)
    grads = {n: p.grad.clone() for n, p in unwrap(state.student).named_parameters() if p.grad is not None}
    patch_center = getattr(state.loss, "center_patch", None)  # DINO has no patch centre
    return (out, grads, None if patch_center is None else patch_center.center.clone(),
            state.loss.center.center.clone())


@pytest.mark.parametrize("strategy", ["attmask_high", "block"])
def test_head_on_masked_tokens_equals_head_on_all_tokens(strategy):
    cfg = _cfg(mask=dict(strategy=strategy, pred_ratio=(0.2, 0.4), masking_prob=0.5),
               optim=dict(clip_grad=0.0))
    state_a = TrainingState.build(cfg, steps_per_epoch=100)
    state_b = copy.deepcopy(state_a)
    crops = _crops(1)
    out_a, grads_a, cp_a, c_a = _grads_after_step(state_a, crops, "masked")
    out_b, grads_b, cp_b, c_b = _grads_after_step(state_b, crops, "all")
    for key in ("loss", "cls", "mim", "masked_ratio"):
        torch.testing.assert_close(out_a[key], out_b[key], rtol=1e-5, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-6, msg=name)
    torch.testing.assert_close(cp_a, cp_b)
    torch.testing.assert_close(c_a, c_b)


def test_dino_variant_has_no_mim_and_trains():
    state = TrainingState.build(_cfg(loss=dict(variant="dino")), steps_per_epoch=100)
    out = train_step(state, _crops())
    assert out["mim"].item() == 0.0
    assert torch.isfinite(out["loss"])
    assert out["masked_ratio"].item() == pytest.approx(14 / 49)  # AttMask still masks the global views


def test_teacher_is_ema_of_student_and_last_layer_frozen_in_epoch_zero():
    cfg = _cfg(optim=dict(freeze_last_layer=1, momentum_teacher=0.9))
    state = TrainingState.build(cfg, steps_per_epoch=100)
    last = "head.last_layer.parametrizations.weight.original1"
    before_last = dict(unwrap(state.student).named_parameters())[last].detach().clone()
    teacher_before = {n: p.clone() for n, p in state.teacher.named_parameters()}
    train_step(state, _crops())
    student = dict(unwrap(state.student).named_parameters())
    torch.testing.assert_close(student[last], before_last)  # no gradient in epoch 0
    m = state.schedules(0).momentum
    for n, p in state.teacher.named_parameters():
        torch.testing.assert_close(p, m * teacher_before[n] + (1 - m) * student[n].detach())


def test_attmask_uses_the_configured_teacher_layer(monkeypatch):
    import attmask_ray.train.step as step_mod

    seen = {}
    real = step_mod.generate_masks

    def spy(scores, grid, strategy, **kw):
        seen["scores"], seen["grid"] = scores, grid
        return real(scores, grid, strategy, **kw)

    monkeypatch.setattr(step_mod, "generate_masks", spy)
    state = TrainingState.build(_cfg(mask=dict(attn_layer=2)), steps_per_epoch=100)
    crops = _crops()
    expected = state.teacher.backbone(torch.cat(crops[:2]), attn_layer=2)[1]
    train_step(state, crops)
    assert seen["grid"] == (7, 7)
    torch.testing.assert_close(seen["scores"], expected)


@pytest.mark.parametrize("strategy, variant", [("attmask_high", "ibot"), ("block", "ibot"), ("attmask_high", "dino")])
def test_optimised_step_equals_reference_style_step(strategy, variant):
    """Loss, gradients and centre update of train_step == a naive per-crop, all-token step."""
    from tests.train.reference_step import reference_forward_loss

    cfg = _cfg(mask=dict(strategy=strategy, pred_ratio=(0.1, 0.5), masking_prob=0.5),
               loss=dict(variant=variant), optim=dict(clip_grad=0.0))
    fast = TrainingState.build(cfg, steps_per_epoch=100)
    slow = copy.deepcopy(fast)
    crops = _crops(3)
    # drop path off so both paths see identical networks (randomness is not the point here)
    for state in (fast, slow):
        for mod in state.student.modules():
            if hasattr(mod, "drop_prob"):
                mod.drop_prob = 0.0
    out_fast, grads_fast, cp_fast, c_fast = _grads_after_step(fast, crops, "masked")
    ref = reference_forward_loss(slow, crops)
    slow.optimizer.zero_grad(set_to_none=True)
    ref["loss"].backward()
    grads_slow = {n: p.grad.clone() for n, p in slow.student.named_parameters() if p.grad is not None}
    for key in ("loss", "cls", "mim"):
        torch.testing.assert_close(out_fast[key], ref[key].detach().float(), rtol=1e-5, atol=1e-5)
    assert out_fast["masked_ratio"].item() == pytest.approx(ref["masks"].float().mean().item())
    # the reference computes patch-head grads for local crops too; they are exactly zero there,
    # so every parameter's gradient must agree
    for name, g in grads_slow.items():
        torch.testing.assert_close(grads_fast[name], g, rtol=1e-4, atol=1e-6, msg=name)
    # centre update (after the loss) from the same teacher outputs
    m = cfg.loss.center_momentum
    torch.testing.assert_close(c_fast, (1 - m) * ref["t_cls"].mean(0, keepdim=True))
    if variant == "ibot":
        torch.testing.assert_close(cp_fast, (1 - m) * ref["t_patch"].mean((0, 1)).view(1, 1, -1))


def test_compiled_model_trains_like_the_eager_one():
    """model.compile=True (torch.compile of blocks and heads) gives the eager losses; checkpoints keep their keys."""
    cfg = _cfg(model=dict(drop_path_rate=0.0))
    eager = TrainingState.build(cfg, steps_per_epoch=100)
    compiled = TrainingState.build(_cfg(model=dict(drop_path_rate=0.0, compile=True)), steps_per_epoch=100)
    assert compiled.state_dict()["student"].keys() == eager.state_dict()["student"].keys()
    compiled.load_state_dict(eager.state_dict())
    for step in range(2):
        crops = _crops(step)
        a, b = train_step(eager, crops), train_step(compiled, crops)
        for key in ("loss", "cls", "mim"):
            torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=f"step {step} {key}")


@pytest.mark.parametrize("variant", ["ibot", "dino"])
def test_diagnostics_are_in_range_and_change_nothing(variant):
    cfg = _cfg(mask=dict(strategy="attmask_high", pred_ratio=(0.2, 0.4), masking_prob=0.5), loss=dict(variant=variant))
    plain = TrainingState.build(cfg, steps_per_epoch=100)
    diag = copy.deepcopy(plain)
    for step in range(2):
        crops = _crops(step)
        torch.manual_seed(step)  # drop path draws
        a = train_step(plain, crops)
        torch.manual_seed(step)
        b = train_step(diag, crops, diagnostics=True)
        for key, value in a.items():
            assert torch.equal(value, b[key]), key
    for name, p in unwrap(plain.student).named_parameters():
        assert torch.equal(p, dict(unwrap(diag.student).named_parameters())[name]), name
    for name, p in plain.teacher.named_parameters():
        assert torch.equal(p, dict(diag.teacher.named_parameters())[name]), name
    assert torch.equal(plain.loss.center.center, diag.loss.center.center)
    extra = {k: v.item() for k, v in b.items() if k not in a}
    patch = {"teacher_patch_entropy", "teacher_student_patch_kl"} if variant == "ibot" else set()
    assert set(extra) == {"teacher_entropy", "teacher_student_kl", "teacher_embed_std", "embed_std_ratio"} | patch
    assert all(math.isfinite(v) for v in extra.values()), extra
    assert 0.0 <= extra["teacher_entropy"] <= 1.0 and extra["teacher_student_kl"] >= -1e-6
    assert 0.0 < extra["teacher_embed_std"] <= 1.0
    assert extra["embed_std_ratio"] == pytest.approx(extra["teacher_embed_std"] * math.sqrt(TINY_MODEL["embed_dim"]))
    if variant == "ibot":
        assert 0.0 <= extra["teacher_patch_entropy"] <= 1.0 and extra["teacher_student_patch_kl"] >= -1e-6
        torch.testing.assert_close(plain.loss.center_patch.center, diag.loss.center_patch.center, rtol=0, atol=0)


def test_teacher_forward_with_embed_keeps_the_other_outputs():
    state = TrainingState.build(_cfg(), steps_per_epoch=100)
    x = torch.cat(_crops()[:2])
    plain = state.teacher.teacher_forward(x, 2)
    with_embed = state.teacher.teacher_forward(x, 2, with_embed=True)
    assert len(plain) == 3 and len(with_embed) == 4
    for u, v in zip(plain, with_embed):
        assert torch.equal(u, v)
    assert torch.equal(with_embed[3], state.teacher.backbone(x)[0][:, 0])


def test_koleo_weight_adds_the_regulariser_of_the_student_cls_embeddings():
    cfg_off = _cfg()
    cfg_on = _cfg(loss=dict(warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_teacher_patch_temp=0.04,
                            teacher_patch_temp=0.04, koleo_weight=0.5))
    state_off = TrainingState.build(cfg_off, steps_per_epoch=100)
    state_on = TrainingState.build(cfg_on, steps_per_epoch=100)
    state_on.student.load_state_dict(state_off.student.state_dict())
    state_on.teacher.load_state_dict(state_off.teacher.state_dict())
    crops = _crops()
    torch.manual_seed(0)  # the same drop-path draws
    out_off = train_step(state_off, crops)
    torch.manual_seed(0)
    out_on = train_step(state_on, crops)
    assert out_off["koleo"].item() == 0.0
    # the same step with the same weights: the distillation terms agree, the total adds 0.5 * koleo
    torch.testing.assert_close(out_on["cls"], out_off["cls"])
    torch.testing.assert_close(out_on["mim"], out_off["mim"])
    torch.testing.assert_close(out_on["loss"], out_off["loss"] + 0.5 * out_on["koleo"])
    assert torch.isfinite(out_on["koleo"]) and out_on["koleo"].item() != 0.0


def test_koleo_is_taken_on_the_student_backbone_cls_of_each_global_view():
    from attmask_ray.losses import koleo_loss

    cfg = _cfg(model=dict(TINY_MODEL, drop_path_rate=0.0), mask=dict(masking_prob=0.0),
               loss=dict(warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_teacher_patch_temp=0.04,
                         teacher_patch_temp=0.04, koleo_weight=0.5))
    state = TrainingState.build(cfg, steps_per_epoch=100)
    crops = _crops()
    with torch.no_grad():  # p = 0: no view is masked, so the student sees the clean global views
        cls = unwrap(state.student).backbone(torch.cat(crops[:2]))[0][:, 0]
    expected = koleo_loss(cls[:8]) + koleo_loss(cls[8:])
    out = train_step(state, crops)
    torch.testing.assert_close(out["koleo"], expected, rtol=1e-5, atol=1e-6)
