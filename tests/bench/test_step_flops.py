"""The step benchmark's FLOP count (behind its GFLOP/img and MFU) against a count written out by hand.

Convention (the usual MFU one, and the bench's): matrix products only, one multiply-add =
2 FLOPs; layer norms, softmax, GELU, the weight norm and the loss are not counted; the
backward pass = 2x the forward (input and weight gradients), so a student forward counts 3x.
"""

from __future__ import annotations

import argparse

import pytest
import torch

from attmask_ray.bench.step import expected_masked_tokens, flop_counter, flops_per_image
from attmask_ray.config import from_dict
from attmask_ray.train.state import TrainingState
from tests.conftest import TINY_MODEL

P, D, DEPTH, MLP_RATIO = TINY_MODEL["patch_size"], TINY_MODEL["embed_dim"], TINY_MODEL["depth"], 4
HIDDEN, BOTTLENECK, K = TINY_MODEL["head_hidden_dim"], TINY_MODEL["head_bottleneck_dim"], TINY_MODEL["out_dim"]
GLOBAL, LOCAL, N_LOCAL = 28, 12, 2


def vit_forward_flops(image: int) -> int:
    """One image through the backbone (no head)."""
    n = (image // P) ** 2  # patches
    t = n + 1  # tokens with [CLS]
    patch_embed = 2 * n * (3 * P * P) * D  # conv P x P, stride P = one (3 P^2 -> D) product per patch
    qkv = 2 * t * D * (3 * D)
    scores = 2 * t * t * D  # q k^T over all heads: heads * t * t * head_dim = t * t * D multiply-adds
    attn_v = 2 * t * t * D
    proj = 2 * t * D * D
    mlp = 2 * t * D * (MLP_RATIO * D) + 2 * t * (MLP_RATIO * D) * D
    return patch_embed + DEPTH * (qkv + scores + attn_v + proj + mlp)


def head_flops(tokens: int) -> int:
    """Projection head on ``tokens`` tokens: MLP D -> h -> h -> bottleneck, then bottleneck -> K."""
    return tokens * 2 * (D * HIDDEN + HIDDEN * HIDDEN + HIDDEN * BOTTLENECK + BOTTLENECK * K)


def _state(**mask) -> TrainingState:
    cfg = from_dict(dict(model=dict(TINY_MODEL),
                         data=dict(global_crop_size=GLOBAL, local_crop_size=LOCAL, local_crops_number=N_LOCAL,
                                   eval_resize=32),
                         mask=mask))
    return TrainingState.build(cfg, steps_per_epoch=10)


def _bench_args(patch_mode: str = "masked") -> argparse.Namespace:
    return argparse.Namespace(global_size=GLOBAL, local_size=LOCAL, n_local=N_LOCAL, patch_size=P,
                              patch_mode=patch_mode, device="cpu", batch=4)


@pytest.mark.parametrize("patch_mode", ["masked", "all"])
def test_bench_flops_per_image_equal_the_analytic_count(patch_mode):
    state = _state(pred_ratio=(0.2, 0.6), masking_prob=0.5)
    n = (GLOBAL // P) ** 2
    masked = expected_masked_tokens(state.cfg, n)
    assert masked == round(0.5 * 0.4 * n) == 10
    patch_tokens = 2 * (masked if patch_mode == "masked" else n)
    # teacher: 2 clean globals, head on their [CLS] and on all their patch tokens (iBOT targets)
    teacher = 2 * vit_forward_flops(GLOBAL) + head_flops(2) + head_flops(2 * n)
    # student: 2 masked globals + m locals, head on every [CLS] and on the masked patch tokens
    student = (2 * vit_forward_flops(GLOBAL) + N_LOCAL * vit_forward_flops(LOCAL)
               + head_flops(2 + N_LOCAL) + head_flops(patch_tokens))
    expected = teacher + 3 * student
    assert flops_per_image(state, _bench_args(patch_mode)) == expected


def test_counter_sees_cpu_fused_attention():
    """torch's FlopCounterMode alone counts 0 for SDPA on a CPU; the bench's counter does not."""
    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 4)
    with flop_counter() as fc:
        torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert fc.get_total_flops() == 2 * (2 * 2 * 3 * 5 * 7 * 4)  # scores + attention x V, 2 FLOPs per multiply-add
