"""Losses vs. a direct, loop-based re-computation on tiny tensors."""

import math

import pytest
import torch

from attmask_ray.losses import Centering, DINOLoss, IBOTLoss

B, N_LOCAL, N_TOK, K, KP = 3, 2, 5, 7, 6
TS, TT, TP = 0.1, 0.05, 0.06


def _softmax(x, T):
    e = [math.exp(v / T) for v in x]
    s = sum(e)
    return [v / s for v in e]


def _log_softmax(x, T):
    m = max(v / T for v in x)
    lse = m + math.log(sum(math.exp(v / T - m) for v in x))
    return [v / T - lse for v in x]


def _ce(t_logits, c, s_logits, t_temp):
    """Explicit CE(softmax((t - c)/T_t), log_softmax(s/T_s)) on python floats."""
    p = _softmax([a - b for a, b in zip(t_logits, c)], t_temp)
    lq = _log_softmax(s_logits, TS)
    return -sum(pi * li for pi, li in zip(p, lq))


def ref_cls(s_cls, t_cls, center, n_local, t_temp):
    n_views = 2 + n_local
    total, pairs = 0.0, 0
    for q in range(2):
        for v in range(n_views):
            if v == q:
                continue
            total += sum(
                _ce(t_cls[q * B + b].tolist(), center[0].tolist(), s_cls[v * B + b].tolist(), t_temp)
                for b in range(B)
            ) / B
            pairs += 1
    assert pairs == 2 * (2 + n_local) - 2
    return total / pairs


def ref_mim(s_patch, t_patch, masks, center):
    total = 0.0
    for q in range(2):
        view = 0.0
        for b in range(B):
            i = q * B + b
            tok = [j for j in range(N_TOK) if masks[i, j]]
            loss = sum(
                _ce(t_patch[i, j].tolist(), center[0, 0].tolist(), s_patch[i, j].tolist(), TP)
                for j in tok
            )
            view += loss / max(len(tok), 1)
        total += view / B
    return total / 2


def make_inputs(seed=0):
    """float64 inputs (the loss keeps float64) so 1e-6 comparisons are meaningful."""
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    s_cls = torch.randn((2 + N_LOCAL) * B, K, generator=g, dtype=f64)
    t_cls = torch.randn(2 * B, K, generator=g, dtype=f64)
    s_patch = torch.randn(2 * B, N_TOK, KP, generator=g, dtype=f64)
    t_patch = torch.randn(2 * B, N_TOK, KP, generator=g, dtype=f64)
    masks = torch.rand(2 * B, N_TOK, generator=g) < 0.5
    masks[1] = False  # an image without a masked token (view 0)
    masks[B + 2] = False  # and one in view 1
    masks[0, 0] = True
    return s_cls, s_patch, t_cls, t_patch, masks


def make_loss(lambda_mim=1.0):
    loss = IBOTLoss(K, KP, n_global=2, n_local=N_LOCAL, student_temp=TS, lambda_mim=lambda_mim)
    # non-zero centres so that centring is exercised
    loss.center.center.copy_(torch.linspace(-0.3, 0.3, K).view(1, K))
    loss.center_patch.center.copy_(torch.linspace(0.2, -0.2, KP).view(1, 1, KP))
    return loss


def test_ibot_matches_reference():
    s_cls, s_patch, t_cls, t_patch, masks = make_inputs()
    loss = make_loss()
    c, c2 = loss.center.center.clone(), loss.center_patch.center.clone()
    out = loss(s_cls, s_patch, t_cls, t_patch, masks, TT, TP)
    cls_ref = ref_cls(s_cls, t_cls, c, N_LOCAL, TT)
    mim_ref = ref_mim(s_patch, t_patch, masks, c2)
    assert out["cls"].item() == pytest.approx(cls_ref, abs=1e-6)
    assert out["mim"].item() == pytest.approx(mim_ref, abs=1e-6)
    assert out["loss"].item() == pytest.approx(cls_ref + mim_ref, abs=1e-6)


def test_unmasked_image_adds_zero_but_counts():
    s_cls, s_patch, t_cls, t_patch, masks = make_inputs()
    masks.zero_()
    masks[0, :2] = True  # only image 0 of view 0 is masked
    out = make_loss()(s_cls, s_patch, t_cls, t_patch, masks, TT, TP)
    only = make_loss()
    t = torch.softmax((t_patch[0, :2] - only.center_patch.center[0]) / TP, -1)
    per_image = -(t * torch.log_softmax(s_patch[0, :2] / TS, -1)).sum(-1).mean()
    assert out["mim"].item() == pytest.approx(per_image.item() / B / 2, abs=1e-6)
    masks.zero_()
    out = make_loss()(s_cls, s_patch, t_cls, t_patch, masks, TT, TP)
    assert out["mim"].item() == 0.0


@pytest.mark.parametrize("packed_teacher", [False, True])
def test_packed_equals_dense(packed_teacher):
    s_cls, s_patch, t_cls, t_patch, masks = make_inputs(1)
    dense_loss, packed_loss = make_loss(), make_loss()
    s_dense = s_patch.clone().requires_grad_()
    s_packed = s_patch.clone().requires_grad_()
    dense = dense_loss(s_cls, s_dense, t_cls, t_patch, masks, TT, TP)
    kwargs = {}
    t_in = t_patch
    if packed_teacher:
        t_in = t_patch[masks]
        kwargs["teacher_patch_mean"] = t_patch.mean(dim=(0, 1))
    packed = packed_loss(s_cls, s_packed[masks], t_cls, t_in, masks, TT, TP, **kwargs)
    for key in ("loss", "cls", "mim"):
        assert packed[key].item() == pytest.approx(dense[key].item(), abs=1e-6)
    dense["loss"].backward()
    packed["loss"].backward()
    torch.testing.assert_close(s_packed.grad, s_dense.grad, atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(packed_loss.center_patch.center, dense_loss.center_patch.center)


def test_packed_teacher_needs_mean():
    s_cls, s_patch, t_cls, t_patch, masks = make_inputs()
    with pytest.raises(ValueError):
        make_loss()(s_cls, s_patch[masks], t_cls, t_patch[masks], masks, TT, TP)


def test_lambda_mim_scales_mim():
    args = make_inputs()
    a = make_loss(1.0)(*args, TT, TP)
    b = make_loss(2.5)(*args, TT, TP)
    assert b["mim"].item() == pytest.approx(a["mim"].item(), abs=1e-7)
    assert b["loss"].item() == pytest.approx(a["cls"].item() + 2.5 * a["mim"].item(), abs=1e-6)


def test_centre_update_after_loss():
    s_cls, s_patch, t_cls, t_patch, masks = make_inputs()
    loss = make_loss()
    c0, c20 = loss.center.center.clone(), loss.center_patch.center.clone()
    out1 = loss(s_cls, s_patch, t_cls, t_patch, masks, TT, TP)
    # the loss used the OLD centres
    assert out1["cls"].item() == pytest.approx(ref_cls(s_cls, t_cls, c0, N_LOCAL, TT), abs=1e-6)
    torch.testing.assert_close(loss.center.center, (0.9 * c0 + 0.1 * t_cls.mean(0, keepdim=True)).float())
    torch.testing.assert_close(
        loss.center_patch.center, (0.9 * c20 + 0.1 * t_patch.mean(dim=(0, 1), keepdim=True)).float()
    )
    # a second call uses the updated centre
    c1 = loss.center.center.clone()
    out2 = loss(s_cls, s_patch, t_cls, t_patch, masks, TT, TP)
    assert out2["cls"].item() == pytest.approx(ref_cls(s_cls, t_cls, c1, N_LOCAL, TT), abs=1e-6)
    # centres are checkpointable buffers
    sd = loss.state_dict()
    assert set(sd) == {"center.center", "center_patch.center"}
    fresh = make_loss()
    fresh.load_state_dict(sd)
    torch.testing.assert_close(fresh.center_patch.center, loss.center_patch.center)


def test_centering_shapes():
    c = Centering((1, 1, 4), momentum=0.5)
    x = torch.arange(24.0).view(2, 3, 4)
    c.update(x)
    torch.testing.assert_close(c.center, 0.5 * x.mean(dim=(0, 1), keepdim=True))


def test_dino_matches_reference():
    s_cls, _, t_cls, _, _ = make_inputs(2)
    loss = DINOLoss(K, n_global=2, n_local=N_LOCAL, student_temp=TS)
    loss.center.center.copy_(torch.linspace(-0.3, 0.3, K).view(1, K))
    c0 = loss.center.center.clone()
    out = loss(s_cls, t_cls, TT)
    assert out["loss"].item() == pytest.approx(ref_cls(s_cls, t_cls, c0, N_LOCAL, TT), abs=1e-6)
    assert out["cls"] is out["loss"]
    torch.testing.assert_close(loss.center.center, (0.9 * c0 + 0.1 * t_cls.mean(0, keepdim=True)).float())


def test_bf16_autocast_and_no_locals():
    s_cls, s_patch, t_cls, t_patch, masks = make_inputs()
    loss = IBOTLoss(K, KP, n_local=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss(s_cls[: 2 * B].bfloat16(), s_patch.bfloat16(), t_cls.bfloat16(),
                   t_patch.bfloat16(), masks, TT, TP)
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    with pytest.raises(ValueError):
        loss(s_cls, s_patch, t_cls, t_patch, masks, TT, TP)  # wrong number of views


def test_float32_inputs_match_reference():
    s_cls, s_patch, t_cls, t_patch, masks = make_inputs(3)
    loss = make_loss()
    c, c2 = loss.center.center.clone(), loss.center_patch.center.clone()
    out = loss(s_cls.float(), s_patch.float(), t_cls.float(), t_patch.float(), masks, TT, TP)
    assert out["loss"].dtype == torch.float32
    ref = ref_cls(s_cls, t_cls, c, N_LOCAL, TT) + ref_mim(s_patch, t_patch, masks, c2)
    assert out["loss"].item() == pytest.approx(ref, rel=1e-6)


def test_koleo_of_hand_placed_points():
    from attmask_ray.losses import koleo_loss

    # 4 unit vectors at 90 degrees: every nearest neighbour is sqrt(2) away
    square = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert koleo_loss(square).item() == pytest.approx(-math.log(math.sqrt(2)), abs=1e-6)
    # scale does not matter (embeddings are L2-normalised); a close pair dominates the mean
    pair = torch.tensor([[3.0, 0.0], [3.0, 0.3], [0.0, -2.0]])
    d01 = (torch.nn.functional.normalize(pair[0], dim=0) - torch.nn.functional.normalize(pair[1], dim=0)).norm()
    d20 = math.sqrt(2)  # (0, -1) is nearest to (1, 0), at 90 degrees
    expected = -(2 * math.log(d01) + math.log(d20)) / 3
    assert koleo_loss(pair).item() == pytest.approx(expected, rel=1e-5)
    # identical embeddings (a collapsed batch) give a large loss
    assert koleo_loss(torch.ones(5, 8)).item() > 15


def test_koleo_gradient_spreads_a_collapsing_batch():
    from attmask_ray.losses import koleo_loss

    g = torch.Generator().manual_seed(0)
    x = (torch.ones(16, 8) + 0.05 * torch.randn(16, 8, generator=g)).requires_grad_(True)
    cos_before = torch.nn.functional.normalize(x.detach(), dim=1) @ torch.nn.functional.normalize(x.detach(), dim=1).T
    opt = torch.optim.SGD([x], lr=0.5)
    for _ in range(50):
        opt.zero_grad()
        koleo_loss(x).backward()
        opt.step()
    xn = torch.nn.functional.normalize(x.detach(), dim=1)
    off = ~torch.eye(16, dtype=torch.bool)
    assert (xn @ xn.T)[off].mean() < cos_before[off].mean() - 0.05


def test_koleo_under_bf16_autocast_is_float32_and_rejects_a_single_row():
    from attmask_ray.losses import koleo_loss

    x = torch.randn(6, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = koleo_loss(x.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, koleo_loss(x.bfloat16().float()))
    with pytest.raises(ValueError, match="B >= 2"):
        koleo_loss(torch.randn(1, 4))
