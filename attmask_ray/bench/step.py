"""``python -m attmask_ray.bench step``: training-step time, throughput, memory and split.

Measures the real ``train_step`` (same code the Ray loop runs) on synthetic crops:
s/step and img/s (median over timed steps after warm-up), peak memory, the time split
(teacher fwd, mask generation, student backbone, head + loss, backward, optimiser + EMA),
AttMask's own cost (attmask_high vs block masking, and the cheap [CLS]-attention path vs
the full attention matrix), and model FLOPs per image / MFU when a peak is given.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import time

import torch

from attmask_ray.bench.flags import check_choices, check_device, check_minimums
from attmask_ray.config import from_dict
from attmask_ray.masking import STRATEGIES
from attmask_ray.optim import unwrap
from attmask_ray.train.state import TrainingState
from attmask_ray.train.step import train_step

PHASES = ("teacher", "masks", "student_backbone", "head_loss", "backward", "optimizer")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m attmask_ray.bench step", description=__doc__)
    p.add_argument("--arch", default="vit_tiny_patch16_224", help="timm ViT name (vit_small_patch16_224 = ViT-S/16)")
    p.add_argument("--patch-size", type=int, default=16)
    p.add_argument("--batch", type=int, default=8, help="images per step")
    p.add_argument("--global-size", type=int, default=224)
    p.add_argument("--local-size", type=int, default=96)
    p.add_argument("--n-local", type=int, default=6)
    p.add_argument("--out-dim", type=int, default=8192)
    p.add_argument("--strategy", default="attmask_high", help="masking strategy, or 'compare' for block vs attmask_high")
    p.add_argument("--patch-mode", default="masked", choices=["masked", "all"], help="student patch head on masked tokens only, or on all")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true", help="torch.compile backbone and head")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--peak-tflops", type=float, default=0.0, help="device peak for MFU (e.g. 790 for H200 bf16)")
    p.add_argument("--no-split", action="store_true", help="skip the synchronised per-phase split run")
    a = p.parse_args(argv)
    check_minimums(a, {"patch_size": 1, "batch": 1, "global_size": 1, "local_size": 1, "n_local": 0, "out_dim": 1,
                       "threads": 0, "warmup": 0, "steps": 1, "peak_tflops": 0})
    if a.strategy != "compare":
        check_choices("--strategy", [a.strategy], (*STRATEGIES, "compare"))
    check_device(a.device)
    return a


def build_state(a: argparse.Namespace, strategy: str) -> TrainingState:
    cfg = from_dict(dict(
        model=dict(arch=a.arch, patch_size=a.patch_size, out_dim=a.out_dim, patch_out_dim=a.out_dim, compile=a.compile),
        mask=dict(strategy=strategy),
        data=dict(global_crop_size=a.global_size, local_crop_size=a.local_size, local_crops_number=a.n_local,
                  eval_resize=a.global_size),
        optim=dict(batch_size=a.batch, precision="bf16" if a.dtype == "bf16" else "fp32", epochs=100, warmup_epochs=1),
    ))
    state = TrainingState.build(cfg, steps_per_epoch=1000, device=a.device)
    state.step = 1000  # past epoch 0, so the last layer is trained as in a real run
    return state


def make_crops(a: argparse.Namespace) -> list[torch.Tensor]:
    g = [torch.randn(a.batch, 3, a.global_size, a.global_size, device=a.device) for _ in range(2)]
    loc = [torch.randn(a.batch, 3, a.local_size, a.local_size, device=a.device) for _ in range(a.n_local)]
    return g + loc


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class PhaseTimer:
    """Collects per-phase wall time; the student head pre-hook splits backbone from head."""

    def __init__(self, device: str) -> None:
        self.device, self.times, self.t0 = device, {k: 0.0 for k in PHASES}, 0.0

    def start(self) -> None:
        _sync(self.device)
        self.t0 = time.perf_counter()

    def __call__(self, name: str) -> None:
        _sync(self.device)
        now = time.perf_counter()
        key = {"student": "head_loss", "loss": "head_loss"}.get(name, name)
        self.times[key] += now - self.t0
        self.t0 = now

    def head_hook(self, *_args) -> None:
        self("student_backbone")


def time_steps(state: TrainingState, crops: list[torch.Tensor], a: argparse.Namespace) -> list[float]:
    times = []
    for i in range(a.warmup + a.steps):
        _sync(a.device)
        t = time.perf_counter()
        train_step(state, crops, patch_mode=a.patch_mode)
        _sync(a.device)
        if i >= a.warmup:
            times.append(time.perf_counter() - t)
    return times


def split(state: TrainingState, crops: list[torch.Tensor], a: argparse.Namespace) -> dict[str, float]:
    timer = PhaseTimer(a.device)
    handle = unwrap(state.student).head.register_forward_pre_hook(lambda *x: timer.head_hook())
    try:
        for i in range(a.warmup + a.steps):
            if i == a.warmup:
                timer.times = {k: 0.0 for k in PHASES}
            timer.start()
            train_step(state, crops, patch_mode=a.patch_mode, mark=timer)
    finally:
        handle.remove()
    total = sum(timer.times.values())
    return {k: v / total for k, v in timer.times.items()}


def attention_cost(state: TrainingState, crops: list[torch.Tensor], a: argparse.Namespace) -> dict[str, float]:
    """Teacher forward time: no read-out vs cheap q_cls.K^T path vs full (unfused) attention matrix."""
    backbone, layer = state.teacher.backbone, state.cfg.attn_layer
    x = torch.cat(crops[:2])
    blk = backbone.vit.blocks[layer - 1].attn
    full_rows: list[torch.Tensor] = []

    def run(mode: str) -> float:
        out = []
        for i in range(a.warmup + a.steps):
            _sync(a.device)
            t = time.perf_counter()
            with torch.no_grad():
                if mode == "none":
                    backbone(x)
                elif mode == "cheap":
                    backbone(x, attn_layer=layer)
                else:
                    blk.fused_attn = False
                    h = blk.attn_drop.register_forward_hook(lambda _m, inp, _o: full_rows.append(inp[0]))
                    try:
                        backbone(x)
                        full_rows.pop()[:, :, 0, 1:].mean(1)
                    finally:
                        h.remove()
                        blk.fused_attn = True
            _sync(a.device)
            if i >= a.warmup:
                out.append(time.perf_counter() - t)
        return statistics.median(out)

    return {m: run(m) for m in ("none", "cheap", "full")}


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *_args, out_shape=None, **_kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def flop_counter():
    """``FlopCounterMode`` that also counts the CPU fused attention kernel (torch registers
    only the CUDA ones, so on a CPU the scores and attention x V products went uncounted)."""
    from torch.utils.flop_counter import FlopCounterMode

    extra = {}
    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_sdpa is not None:
        extra[cpu_sdpa] = _cpu_sdpa_flops
    return FlopCounterMode(display=False, custom_mapping=extra)


def expected_masked_tokens(cfg, n_tokens: int) -> int:
    """Mean masked tokens per global crop: p * mean(r) * n (r ~ U(a, b), masking probability p)."""
    a, b = cfg.mask.pred_ratio
    return round(cfg.mask.masking_prob * (a + b) / 2 * n_tokens)


def flops_per_image(state: TrainingState, a: argparse.Namespace) -> float:
    """Model FLOPs per image for one step: teacher fwd (2 globals) + 3x student fwd (fwd + bwd).

    Convention: matrix products only (a multiply-add = 2 FLOPs: linear layers, patch-embed
    convolution, attention scores and attention x V, head), norms / softmax / GELU / loss not
    counted; backward = 2x forward. The student patch head runs on the expected number of
    masked tokens (:func:`expected_masked_tokens`) when ``patch_mode`` is "masked".
    Counted eagerly (compiled modules run eager here) on one image.
    """
    crops = [c[:1] for c in make_crops(argparse.Namespace(**{**vars(a), "batch": 1}))]
    stance = getattr(torch.compiler, "set_stance", None)
    eager = stance("force_eager") if stance is not None else contextlib.nullcontext()
    with eager:
        with flop_counter() as fc:
            with torch.no_grad():
                state.teacher.teacher_forward(torch.cat(crops[:2]), None)
        teacher = fc.get_total_flops()
        n = (a.global_size // a.patch_size) ** 2
        masks = torch.zeros(2, n, dtype=torch.bool, device=a.device)
        masks[:, :expected_masked_tokens(state.cfg, n)] = True
        with flop_counter() as fc:
            state.student(torch.cat(crops[:2]), masks, torch.cat(crops[2:]) if a.n_local else None,
                          patch_mode=a.patch_mode)
        student = fc.get_total_flops()
    return teacher + 3 * student


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    strategies = ["block", "attmask_high"] if a.strategy == "compare" else [a.strategy]
    crops = make_crops(a)
    print(f"device={a.device} threads={torch.get_num_threads()} arch={a.arch} batch={a.batch} "
          f"crops=2x{a.global_size}+{a.n_local}x{a.local_size} K={a.out_dim} dtype={a.dtype} "
          f"compile={a.compile} patch_mode={a.patch_mode}")
    results = {}
    for strategy in strategies:
        state = build_state(a, strategy)
        if a.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        times = time_steps(state, crops, a)
        med = statistics.median(times)
        results[strategy] = med
        mem = (torch.cuda.max_memory_allocated() / 2**30 if a.device.startswith("cuda")
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
        line = f"[{strategy}] s/step={med:.3f} img/s={a.batch / med:.2f} peak_mem={mem:.2f}GiB"
        fpi = flops_per_image(state, a)
        n_tok = (a.global_size // a.patch_size) ** 2
        counted = n_tok if a.patch_mode == "all" else expected_masked_tokens(state.cfg, n_tok)
        line += f" GFLOP/img={fpi / 1e9:.1f} (student patch head on {counted}/{n_tok} tokens per global crop)"
        if a.peak_tflops:
            line += f" MFU={fpi * a.batch / med / (a.peak_tflops * 1e12) * 100:.1f}%"
        print(line, flush=True)
        if not a.no_split:
            shares = split(state, crops, a)
            print("  split: " + ", ".join(f"{k} {v * 100:.1f}%" for k, v in shares.items()), flush=True)
    if "block" in results and "attmask_high" in results:
        extra = (results["attmask_high"] - results["block"]) / results["block"] * 100
        print(f"AttMask extra cost vs block: {extra:+.2f}% of a step (noise level: compare repeated runs)")
    att = attention_cost(state, crops, a)
    print(f"teacher fwd: no read-out {att['none'] * 1e3:.1f} ms, cheap [CLS] path {att['cheap'] * 1e3:.1f} ms "
          f"({(att['cheap'] / att['none'] - 1) * 100:+.2f}%), full matrix {att['full'] * 1e3:.1f} ms "
          f"({(att['full'] / att['none'] - 1) * 100:+.2f}%)")
    return 0
