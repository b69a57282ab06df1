import torch
from torch import nn

from attmask_ray.optim import (
    apply_schedule,
    cancel_last_layer_grads,
    clip_gradients,
    ema_update,
    param_groups,
)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.randn(1, 3, 4))
        self.mask_token = nn.Parameter(torch.zeros(1, 4))
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 4)
        self.last_layer = nn.Linear(4, 2, bias=False)
        self.frozen = nn.Parameter(torch.ones(2, 2), requires_grad=False)

    def forward(self, x):
        return self.last_layer(self.fc(self.norm(x + self.pos_embed.sum(1)) + self.mask_token))


def _backward(model):
    model(torch.randn(5, 4)).pow(2).sum().mul(100).backward()


def test_param_groups_and_apply_schedule():
    model = Tiny()
    groups = param_groups(model, 0.04)
    decay, no_decay = groups
    assert decay["apply_wd"] and not no_decay["apply_wd"]
    assert set(decay["param_names"]) == {"pos_embed", "mask_token", "fc.weight", "last_layer.weight"}
    assert set(no_decay["param_names"]) == {"norm.weight", "norm.bias", "fc.bias"}
    opt = torch.optim.AdamW(groups, lr=0.0)
    apply_schedule(opt, lr=0.1, wd=0.3)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.1]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.3, 0.0]


def test_clip_matches_per_param_reference():
    model = Tiny()
    _backward(model)
    model.fc.bias.grad.mul_(1e-4)  # one small gradient stays unclipped
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    norms = clip_gradients(model, 3.0)
    assert norms.shape == (len(grads),)
    for (name, g), norm in zip(grads.items(), norms):
        ref_norm = g.norm(2)
        coef = 3.0 / (ref_norm + 1e-6)
        expected = g * coef if coef < 1 else g
        torch.testing.assert_close(norm, ref_norm)
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, expected)
    assert norms.max() > 3.0  # clipping was actually exercised


def test_clip_zero_disables():
    model = Tiny()
    _backward(model)
    before = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    norms = clip_gradients(model, 0.0)
    after = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    torch.testing.assert_close(norms, torch.stack([g.norm() for g in before]))


def test_cancel_last_layer_grads():
    model = Tiny()
    _backward(model)
    cancel_last_layer_grads(model, epoch=0, freeze_last_layer=1, set_to_none=False)
    assert torch.count_nonzero(model.last_layer.weight.grad) == 0
    assert torch.count_nonzero(model.fc.weight.grad) > 0
    cancel_last_layer_grads(model, epoch=0)
    assert model.last_layer.weight.grad is None
    _backward(model)
    g = model.last_layer.weight.grad.clone()
    cancel_last_layer_grads(model, epoch=1, freeze_last_layer=1)
    assert torch.equal(model.last_layer.weight.grad, g)


def test_ema_update():
    teacher, student = Tiny(), Tiny()
    del teacher.mask_token  # teacher may lack student-only params
    teacher.mask_token = None
    t0 = {n: p.clone() for n, p in teacher.named_parameters()}
    s0 = {n: p.clone() for n, p in student.named_parameters()}
    m = 0.9
    ema_update(teacher, student, m)
    for n, p in teacher.named_parameters():
        torch.testing.assert_close(p, m * t0[n] + (1 - m) * s0[n], atol=1e-7, rtol=1e-6)
    for n, p in student.named_parameters():
        assert torch.equal(p, s0[n])


def test_ema_lerp_equals_the_mul_add_form():
    """ema_update uses teacher.lerp_(student, 1 - m); the reference writes m * teacher + (1 - m) * student.

    Same maths, rounded differently: they agree to 1e-7 absolute plus one float32 ulp relative
    (a plain 1e-7 bound cannot hold for |x| >= 1, e.g. LayerNorm weights = 1, where one ulp is
    1.19e-7), and both stay within one ulp of the float64 value."""
    from attmask_ray.models import build_model
    from attmask_ray.config import ModelConfig
    from tests.conftest import TINY_MODEL

    torch.manual_seed(0)
    cfg = ModelConfig(**TINY_MODEL)
    student = build_model(cfg, 28, student=True)
    teacher = build_model(cfg, 28, student=False)
    with torch.no_grad():  # a trained-looking pair: teacher = student + a small drift (LayerNorm weights near 1)
        for (_, t), (_, s) in zip(teacher.named_parameters(), student.named_parameters()):
            s.add_(0.05 * torch.randn_like(s))
            t.copy_(s + 0.01 * torch.randn_like(s))
    eps = torch.finfo(torch.float32).eps
    for m in (0.0, 0.5, 0.9, 0.99, 0.996, 0.9999, 1.0):
        t0 = {n: p.detach().clone() for n, p in teacher.named_parameters()}
        s0 = {n: p.detach().clone() for n, p in student.named_parameters()}
        ema_update(teacher, student, m)
        for n, p in teacher.named_parameters():
            mul_add = t0[n] * m + s0[n] * (1.0 - m)  # the two-kernel form ema_update used before
            torch.testing.assert_close(p, mul_add, atol=1e-7, rtol=eps, msg=f"{n} m={m}")
            exact = t0[n].double() * m + s0[n].double() * (1.0 - m)
            scale = torch.maximum(t0[n].abs(), s0[n].abs()).double()
            assert ((p.double() - exact).abs() <= eps * scale + 1e-30).all(), (n, m)
        with torch.no_grad():  # back to the same pair for the next momentum
            for n, p in teacher.named_parameters():
                p.copy_(t0[n])
    assert all(torch.equal(p, s0[n]) for n, p in student.named_parameters())
