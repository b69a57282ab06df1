"""The host-side count of masked tokens (``generate_masks(..., return_count=True)``) and the
sync-free gather of the masked tokens it allows (``models.ssl.masked_tokens``)."""

from __future__ import annotations

import itertools

import pytest
import torch

from attmask_ray.masking import STRATEGIES, generate_masks
from attmask_ray.models.ssl import masked_tokens

@pytest.mark.parametrize("strategy", STRATEGIES)
def test_host_count_equals_the_masks_sum(strategy):
    cases = itertools.product([(7, 7), (3, 5), (14, 14)], [(0.1, 0.5), (0.0, 0.0), (1.0, 1.0), (0.3, 0.3)],
                              [0.0, 0.5, 1.0], [None, True, False], [0.1, 0.5, 1.0])
    for i, (grid, ratio, prob, per_image, show_max) in enumerate(cases):
        if strategy != "attmask_hint" and show_max != 0.1:
            continue
        g = torch.Generator().manual_seed(i)
        scores = torch.rand(6, grid[0] * grid[1], generator=g) if STRATEGIES[strategy].needs_attention else None
        kw = dict(ratio=ratio, prob=prob, per_image_ratio=per_image, show_max=show_max, batch_size=6)
        plain = generate_masks(scores, grid, strategy, generator=torch.Generator().manual_seed(100 + i), **kw)
        masks, count = generate_masks(scores, grid, strategy, generator=torch.Generator().manual_seed(100 + i),
                                      return_count=True, **kw)
        assert torch.equal(masks, plain)  # asking for the count changes no draw
        assert isinstance(count, int) and count == int(masks.sum()), (grid, ratio, prob, per_image, show_max)


def test_default_generator_on_the_cpu_gives_a_count():
    """generator=None draws from the default RNG of the masks' device: on the CPU still a host count
    (with CUDA scores and no CPU generator the count is None: tests/gpu/test_gpu_step.py)."""
    masks, count = generate_masks(None, (4, 4), "random", batch_size=3, prob=1.0, return_count=True)
    assert count == int(masks.sum()) > 0


@pytest.mark.parametrize("skip", [0, 1, 2])
def test_masked_tokens_without_sync_equals_boolean_indexing(skip):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(5, skip + 12, 8, generator=g, requires_grad=True)
    masks = torch.rand(5, 12, generator=g) < 0.4
    masks[2] = False  # an image without masked tokens
    ref = tokens[:, skip:][masks]
    got = masked_tokens(tokens, masks, int(masks.sum()), skip=skip)
    assert torch.equal(got, ref)
    assert torch.equal(masked_tokens(tokens, masks, None, skip=skip), ref)
    w = torch.randn(ref.shape, generator=g)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), tokens)
    (g_got,) = torch.autograd.grad((got * w).sum(), tokens)
    assert torch.equal(g_got, g_ref)
    empty = masked_tokens(tokens, torch.zeros_like(masks), 0, skip=skip)
    assert empty.shape == (0, 8)


def test_masked_tokens_refuses_a_wrong_count():
    tokens = torch.randn(2, 5, 4)
    masks = torch.tensor([[True, False, True, False, False], [False] * 5])
    with pytest.raises(RuntimeError, match="n_masked does not match"):
        masked_tokens(tokens, masks, 3)
