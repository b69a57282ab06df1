"""Behavioural tests for attmask_ray.masking (SPEC §3)."""
from __future__ import annotations

import math

import pytest
import torch

from attmask_ray.masking import STRATEGIES, generate_masks, mask_ratio


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ranked_scores(b: int, n: int, seed: int = 0) -> torch.Tensor:
    """[b, n] scores with distinct values (a random permutation of 0..n-1 per row)."""
    return torch.stack([torch.randperm(n, generator=gen(seed + i)) for i in range(b)]).float()


def top_set(row: torch.Tensor, k: int, largest: bool = True) -> set[int]:
    return set(row.topk(k, largest=largest).indices.tolist()) if k else set()


@pytest.mark.parametrize("strategy,largest", [("attmask_high", True), ("attmask_low", False)])
@pytest.mark.parametrize("r", [0.1, 0.3, 0.5])
def test_attmask_high_low_pick_exact_extremes(strategy, largest, r):
    h, w = 7, 7
    n = h * w
    scores = ranked_scores(6, n)
    masks = generate_masks(scores, (h, w), strategy, ratio=(r, r), prob=1.0, generator=gen())
    assert masks.dtype == torch.bool and masks.shape == (6, n)
    k = int(r * n)
    for row, m in zip(scores, masks):
        assert set(m.nonzero().flatten().tolist()) == top_set(row, k, largest)


def test_attmask_high_hand_made_map():
    # 2x3 grid: scores chosen by hand; ratio 0.5 -> floor(3.0) = 3 tokens.
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3, 0.8, 0.2]])
    high = generate_masks(scores, (2, 3), "attmask_high", ratio=(0.5, 0.5), prob=1.0)
    low = generate_masks(scores, (2, 3), "attmask_low", ratio=(0.5, 0.5), prob=1.0)
    assert high.tolist() == [[True, False, True, False, True, False]]
    assert low.tolist() == [[False, True, False, True, False, True]]


def test_hint_reveals_only_top_show_max_tokens():
    h, w, b = 14, 14, 64
    n = h * w
    show_max, (a, bb) = 0.1, (0.3, 0.5)
    scores = ranked_scores(b, n)
    c = int(show_max * n)  # 19 candidates
    seen_counts = set()
    for per_image in (False, True):
        masks = generate_masks(scores, (h, w), "attmask_hint", ratio=(a, bb), prob=1.0,
                               show_max=show_max, per_image_ratio=per_image, generator=gen(3))
        for row, m in zip(scores, masks):
            order = row.argsort(descending=True).tolist()
            masked = set(m.nonzero().flatten().tolist())
            # attmask_high set = order[:k_r]; since c < floor(a*n), its tail beyond the top c
            # stays masked, so k_r - 1 is the rank of the lowest-ranked masked token.
            k_r = max(order.index(t) for t in masked) + 1
            assert int(a * n) <= k_r <= int(bb * n)
            assert set(order[c:k_r]) <= masked  # only top-c tokens are ever revealed
            revealed = set(order[:c]) - masked
            # m = floor(s*n), s ~ U(show_max*a, show_max*b)
            assert math.floor(show_max * a * n) <= len(revealed) <= math.floor(show_max * bb * n)
            seen_counts.add(len(revealed))
    assert len(seen_counts) > 1  # s is random, so the revealed count varies


def test_hint_fixed_ratio_exact_reveal_count():
    h, w = 10, 10
    n = h * w
    scores = ranked_scores(16, n)
    masks = generate_masks(scores, (h, w), "attmask_hint", ratio=(0.5, 0.5), prob=1.0,
                           show_max=0.2, generator=gen(1))
    k, c, m = int(0.5 * n), int(0.2 * n), int(0.2 * 0.5 * n)  # 50, 20, 10
    for row, mk in zip(scores, masks):
        high, top_c = top_set(row, k), top_set(row, c)
        masked = set(mk.nonzero().flatten().tolist())
        assert masked <= high
        assert high - masked <= top_c
        assert len(high - masked) == m


@pytest.mark.parametrize("grid,show_max", [((2, 2), 0.1), ((3, 3), 0.1), ((1, 1), 1.0), ((2, 3), 0.2)])
def test_hint_tiny_grid_does_not_crash(grid, show_max):
    n = grid[0] * grid[1]
    scores = torch.rand(5, n, generator=gen())
    masks = generate_masks(scores, grid, "attmask_hint", ratio=(0.1, 0.5), prob=1.0,
                           show_max=show_max, generator=gen())
    high = generate_masks(scores, grid, "attmask_high", ratio=(0.5, 0.5), prob=1.0)
    assert masks.shape == (5, n)
    assert not (masks & ~high).any()  # never masks outside the top floor(b*n)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_prob_zero_and_one(strategy):
    scores = torch.rand(32, 49, generator=gen())
    none = generate_masks(scores, (7, 7), strategy, ratio=(0.3, 0.5), prob=0.0, generator=gen())
    assert not none.any()
    every = generate_masks(scores, (7, 7), strategy, ratio=(0.3, 0.5), prob=1.0, generator=gen())
    assert every.any(dim=1).all()


@pytest.mark.parametrize("strategy", ["random", "attmask_high", "block"])
def test_prob_half_masks_about_half_the_images(strategy):
    scores = torch.rand(2000, 36, generator=gen())
    masks = generate_masks(scores, (6, 6), strategy, ratio=(0.3, 0.5), prob=0.5, generator=gen(7))
    frac = masks.any(dim=1).float().mean().item()
    assert 0.45 < frac < 0.55


@pytest.mark.parametrize("strategy", ["random", "attmask_high", "attmask_low"])
@pytest.mark.parametrize("grid", [(14, 14), (6, 6), (7, 7), (4, 9)])
def test_counts_within_ratio_bounds_and_per_image_variation(strategy, grid):
    n = grid[0] * grid[1]
    a, b = 0.1, 0.5
    scores = torch.rand(64, n, generator=gen())
    shared = generate_masks(scores, grid, strategy, ratio=(a, b), prob=1.0, per_image_ratio=False,
                            generator=gen(1))
    per_img = generate_masks(scores, grid, strategy, ratio=(a, b), prob=1.0,
                             per_image_ratio=True, generator=gen(1))
    for masks in (shared, per_img):
        assert masks.shape == (64, n)
        counts = masks.sum(dim=1)
        assert counts.min() >= int(a * n) and counts.max() <= int(b * n)
    assert shared.sum(dim=1).unique().numel() == 1  # one ratio per batch
    assert per_img.sum(dim=1).unique().numel() > 1  # one ratio per image


@pytest.mark.parametrize("grid", [(14, 14), (7, 7)])
def test_default_ratio_draw_follows_the_reference_per_strategy(grid):
    """Reference: block/random draw r per image and global crop (its loader), attmask_* once
    per batch (its training loop)."""
    n, (a, b), bsz = grid[0] * grid[1], (0.1, 0.5), 2 * 128  # two global crops of 128 images
    scores = torch.rand(bsz, n, generator=gen())
    for strategy in ("attmask_high", "attmask_low", "attmask_hint"):
        counts = generate_masks(scores, grid, strategy, ratio=(a, b), prob=1.0, generator=gen(2)).sum(1)
        k = counts.max().item()
        assert int(a * n) <= k <= int(b * n)
        assert counts.unique().numel() == 1  # one r (and, for hint, one s) for the whole batch
    rand = generate_masks(None, grid, "random", ratio=(a, b), prob=1.0, generator=gen(3), batch_size=bsz).sum(1)
    # per image floor(r*n), r ~ U(a, b): counts spread over the whole [floor(a n), floor(b n)] range
    assert rand.min() >= int(a * n) and rand.max() <= int(b * n)
    assert rand.unique().numel() >= 0.6 * (int(b * n) - int(a * n) + 1)
    uniform = torch.floor((a + (b - a) * torch.rand(200_000, dtype=torch.float64, generator=gen(9))) * n)
    assert abs(rand.float().mean() - uniform.mean()) < 4 * uniform.std() / bsz ** 0.5
    # the two global crops of one image get their own ratios
    assert (rand[:128] != rand[128:]).float().mean() > 0.5
    block = generate_masks(None, grid, "block", ratio=(a, b), prob=1.0, generator=gen(4), batch_size=bsz).sum(1)
    assert block.max() <= int(b * n) and block.unique().numel() > 5


@pytest.mark.parametrize("grid,area", [((7, 7), 4), ((14, 14), 16), ((15, 15), 25), ((28, 28), 81)])
def test_block_minimum_area_is_the_reference_rule(grid, area):
    from attmask_ray.masking import block_min_area

    assert block_min_area(*grid) == area  # reference: (min(H, W) // 3) ** 2 for any grid


def test_block_masks_on_a_large_grid_use_large_blocks():
    """28x28 grid, budget 60 tokens: with the reference minimum area 81, each block's target
    area is drawn from [60, 81]: an image gets about one block (often none, as in the
    reference); a 16-token minimum (the old cap) draws areas from [16, 60] and places ~2.3
    blocks per image."""
    from scipy import ndimage

    n = 28 * 28
    masks = generate_masks(None, (28, 28), "block", ratio=(60 / n, 60 / n), prob=1.0, generator=gen(),
                           batch_size=64)
    parts = [ndimage.label(m.view(28, 28).numpy())[1] for m in masks]
    assert sum(parts) / len(parts) < 1.2
    assert masks.sum(1).max() <= 60


def test_random_is_uniform_over_positions():
    masks = generate_masks(None, (6, 6), "random", ratio=(0.25, 0.25), prob=1.0,
                           generator=gen(), batch_size=4000)
    assert (masks.sum(dim=1) == 9).all()
    freq = masks.float().mean(dim=0)
    assert ((freq - 0.25).abs() < 0.04).all()


@pytest.mark.parametrize("grid", [(14, 14), (6, 6), (7, 7), (8, 12)])
@pytest.mark.parametrize("r", [0.1, 0.3, 0.5])
def test_block_coverage_bounds(grid, r):
    n = grid[0] * grid[1]
    masks = generate_masks(None, grid, "block", ratio=(r, r), prob=1.0, generator=gen(),
                           batch_size=128)
    counts = masks.sum(dim=1).float()
    assert counts.max() <= int(r * n)  # blocks never overshoot the target (reference)
    assert counts.min() >= 0.5 * int(r * n)  # ... and get close to it
    assert counts.mean() >= 0.85 * int(r * n)


def _frac_in_2x2_squares(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """masks [B, n] -> [B] fraction of masked tokens lying in a fully masked 2x2 square."""
    x = masks.view(-1, 1, *grid).float()
    full = -torch.nn.functional.max_pool2d(-x, 2, stride=1)  # 1 where a 2x2 square is all masked
    covered = torch.nn.functional.max_pool2d(torch.nn.functional.pad(full, (1, 1, 1, 1)), 2, stride=1)
    return ((covered > 0) & (x > 0)).flatten(1).sum(1) / x.flatten(1).sum(1).clamp(min=1)


def test_block_masks_are_rectangles_not_scatter():
    # Blocks are rectangles with area >= 16 while budget allows (only the last, budget-limited
    # ones can be thin), so almost every masked token lies in a fully masked 2x2 square.
    blocks = generate_masks(None, (14, 14), "block", ratio=(0.3, 0.5), prob=1.0,
                            generator=gen(), batch_size=64)
    rand = generate_masks(None, (14, 14), "random", ratio=(0.3, 0.5), prob=1.0,
                          generator=gen(), batch_size=64)
    fb, fr = _frac_in_2x2_squares(blocks, (14, 14)), _frac_in_2x2_squares(rand, (14, 14))
    assert fb.min() > 0.85 and fb.mean() > 0.95
    assert fr.mean() < 0.5


@pytest.mark.parametrize("grid", [(14, 14), (6, 6), (7, 7), (5, 11)])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_grid_follows_crop_size(grid, strategy):
    n = grid[0] * grid[1]
    scores = torch.rand(3, n, generator=gen())
    masks = generate_masks(scores, grid, strategy, generator=gen())
    assert masks.shape == (3, n) and masks.dtype == torch.bool
    masks = generate_masks(scores if STRATEGIES[strategy].needs_attention else None, grid, strategy,
                           generator=gen(), batch_size=3)
    assert masks.shape == (3, n)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_determinism(strategy):
    scores = torch.rand(16, 196, generator=gen())
    kw = dict(ratio=(0.1, 0.5), prob=0.5, per_image_ratio=True)
    m1 = generate_masks(scores, (14, 14), strategy, generator=gen(5), **kw)
    m2 = generate_masks(scores, (14, 14), strategy, generator=gen(5), **kw)
    m3 = generate_masks(scores, (14, 14), strategy, generator=gen(6), **kw)
    assert torch.equal(m1, m2)
    assert not torch.equal(m1, m3)


def test_scores_none_uses_batch_size_and_device():
    m = generate_masks(None, (6, 6), "random", batch_size=5, device="cpu", generator=gen())
    assert m.shape == (5, 36) and m.device.type == "cpu"
    assert generate_masks(None, (6, 6), "block", batch_size=0, generator=gen()).shape == (0, 36)


def test_device_follows_scores_meta():
    # The meta device stands in for CUDA here: proves no tensor is created on the CPU.
    scores = torch.empty(4, 49, device="meta")
    for strategy in ("random", "attmask_high", "attmask_low", "attmask_hint"):
        for g in (None, gen()):  # a CPU generator still yields masks on the scores' device
            masks = generate_masks(scores, (7, 7), strategy, per_image_ratio=True, generator=g)
            assert masks.device.type == "meta" and masks.shape == (4, 49)


def test_mask_ratio():
    m = torch.tensor([[True, False, False, False], [True, True, False, False]])
    assert mask_ratio(m).item() == pytest.approx(0.375)


@pytest.mark.parametrize("kwargs,name", [
    (dict(strategy="attmask_hgh"), "strategy"),
    (dict(strategy="iBOT"), "strategy"),
    (dict(ratio=(0.5, 0.1)), "ratio"),
    (dict(ratio=(-0.1, 0.5)), "ratio"),
    (dict(ratio=(0.1, 1.5)), "ratio"),
    (dict(ratio=0.3), "ratio"),
    (dict(prob=1.5), "prob"),
    (dict(prob=-0.1), "prob"),
    (dict(show_max=0.0), "show_max"),
    (dict(show_max=1.1), "show_max"),
    (dict(grid=(14, 0)), "grid"),
    (dict(grid=(14,)), "grid"),
    (dict(grid=(7, 7)), "scores"),
    (dict(scores=torch.rand(196)), "scores"),
    (dict(scores=None), "scores"),
    (dict(scores=None, strategy="random"), "batch_size"),
])
def test_bad_input_raises_value_error_naming_argument(kwargs, name):
    args = dict(scores=torch.rand(2, 196), grid=(14, 14), strategy="attmask_high")
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        generate_masks(**args)


def test_unknown_strategy_suggests_closest():
    with pytest.raises(ValueError, match="did you mean 'attmask_high'") as e:
        generate_masks(torch.rand(2, 4), (2, 2), "attmask_hgh")
    for s in STRATEGIES:
        assert s in str(e.value)


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_registered_strategy_is_complete(name):
    """One registry entry is all a strategy needs: config validation, the attention switch of the
    training step and the reference's ratio default all read it."""
    from attmask_ray.config import MaskConfig

    entry = STRATEGIES[name]
    assert entry.name == name and MaskConfig(strategy=name).strategy == name
    scores = torch.rand(4, 49, generator=gen())
    masks, count = generate_masks(scores, (7, 7), name, prob=1.0, generator=gen(), return_count=True)
    assert masks.shape == (4, 49) and masks.dtype == torch.bool and count == int(masks.sum()) > 0
    default = generate_masks(scores, (7, 7), name, prob=1.0, generator=gen(2))
    assert torch.equal(default, generate_masks(scores, (7, 7), name, prob=1.0, generator=gen(2),
                                               per_image_ratio=entry.ratio_per_image))
    if entry.needs_attention:
        with pytest.raises(ValueError, match="needs attention scores"):
            generate_masks(None, (7, 7), name, batch_size=4, generator=gen())
    else:
        assert generate_masks(None, (7, 7), name, batch_size=4, prob=1.0, generator=gen()).shape == (4, 49)
