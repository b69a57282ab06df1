from __future__ import annotations

import torch

from attmask_ray.models.head import IBOTHead


def test_head_shapes_and_l2_bottleneck():
    head = IBOTHead(48, out_dim=64, hidden_dim=32, bottleneck_dim=16)
    x = torch.randn(5, 48)
    assert head(x).shape == (5, 64)
    assert head.forward_patch(torch.randn(2, 9, 48)).shape == (2, 9, 64)
    z = head._project(x)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(5))


def test_shared_head_uses_one_last_layer_and_separate_otherwise():
    shared = IBOTHead(48, 64, 64, hidden_dim=32, bottleneck_dim=16, shared_head=True)
    x = torch.randn(3, 48)
    torch.testing.assert_close(shared(x), shared.forward_patch(x))
    separate = IBOTHead(48, 64, 32, hidden_dim=32, bottleneck_dim=16, shared_head=False)
    assert separate.forward_patch(x).shape == (3, 32)


def test_norm_last_layer_freezes_the_weight_norm_gain():
    free = IBOTHead(48, 64, hidden_dim=32, bottleneck_dim=16, norm_last_layer=False)
    frozen = IBOTHead(48, 64, hidden_dim=32, bottleneck_dim=16, norm_last_layer=True)
    assert free.last_layer.parametrizations.weight.original0.requires_grad
    assert not frozen.last_layer.parametrizations.weight.original0.requires_grad
    # weight-norm with g = 1: every output unit's weight row has unit norm
    w = frozen.last_layer.weight
    torch.testing.assert_close(w.norm(dim=1), torch.ones(64))
