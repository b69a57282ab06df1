"""k-NN benchmark: blocked k-NN (attmask_ray.eval.knn) vs a naive full-matrix version.

    python -m attmask_ray.bench knn [--train 100000] [--queries 10000] [--dim 384]
                                    [--classes 1000] [--threads 2]

Each variant runs in a fresh child process on identical random features (same seed);
peak extra memory = peak RSS during the run minus RSS just before it (Linux VmHWM,
reset through /proc/self/clear_refs). Both variants must give the same accuracies.
Target (issue #5): blocked peak extra < 1 GiB whatever the train size, time <= 1.5x naive.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from attmask_ray.bench.flags import check_minimums
from attmask_ray.metrics import HEADLINE_K

KS = (10, 20, 100, 200)
GIB = 2**30


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def naive_knn(train: torch.Tensor, train_labels: torch.Tensor, queries: torch.Tensor, query_labels: torch.Tensor,
              ks: tuple[int, ...], num_classes: int, temperature: float = 0.07) -> dict[int, tuple[float, float]]:
    """The full [Q, N] similarity matrix at once, one top-k, DINO-style weighted votes."""
    train = F.normalize(train, dim=1)
    queries = F.normalize(queries, dim=1)
    sim, idx = (queries @ train.T).topk(max(ks), dim=1)
    weights = (sim / temperature).exp()
    nl = train_labels[idx]
    out = {}
    for k in ks:
        scores = torch.zeros(len(queries), num_classes).scatter_add_(1, nl[:, :k], weights[:, :k])
        pred = scores.topk(min(5, k), dim=1).indices
        correct = pred.eq(query_labels.view(-1, 1))
        out[k] = (100.0 * float(correct[:, 0].float().mean()), 100.0 * float(correct.any(1).float().mean()))
    return out


def _data(args: argparse.Namespace) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(args.classes, args.dim, generator=g)
    tl = torch.randint(0, args.classes, (args.train,), generator=g)
    train = centres[tl] + args.noise * torch.randn(args.train, args.dim, generator=g)
    ql = torch.randint(0, args.classes, (args.queries,), generator=g)
    queries = centres[ql] + args.noise * torch.randn(args.queries, args.dim, generator=g)
    return train, tl, queries, ql


def _child(variant: str, args: argparse.Namespace, conn) -> None:  # noqa: ANN001 - a Connection
    from attmask_ray.eval.knn import knn_classify

    torch.set_num_threads(args.threads)
    train, tl, queries, ql = _data(args)
    before = _status_kib("VmRSS")
    exact = _reset_peak()
    seconds, peak = float("inf"), 0
    for rep in range(args.repeat):
        t0 = time.perf_counter()
        if variant == "blocked":
            res = knn_classify(train, tl, queries, ql, ks=KS, num_classes=args.classes, chunk=args.chunk)
        else:
            res = naive_knn(train, tl, queries, ql, KS, args.classes)
        seconds = min(seconds, time.perf_counter() - t0)
        if rep == 0:
            peak = _status_kib("VmHWM")
    conn.send({"seconds": seconds, "extra_gib": max(peak - before, 0) / 2**20, "exact_peak": exact, "res": res})
    conn.close()


def run(variant: str, args: argparse.Namespace) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(variant, args, child))
    proc.start()
    out = parent.recv()
    proc.join()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m attmask_ray.bench knn", description="k-NN time and peak memory")
    p.add_argument("--train", type=int, default=100_000, help="train features")
    p.add_argument("--queries", type=int, default=10_000, help="query features")
    p.add_argument("--dim", type=int, default=384, help="feature width (ViT-S: 384)")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=1024, help="queries per chunk (eval.knn_chunk)")
    p.add_argument("--noise", type=float, default=3.0, help="feature noise around class centres (sets the accuracy)")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per variant (time = min; memory from the first)")
    p.add_argument("--threads", type=int, default=2, help="torch threads per variant")
    p.add_argument("--skip-naive", action="store_true", help="only the blocked version (naive needs Q*N*4 bytes)")
    args = p.parse_args(argv)
    check_minimums(args, {"train": max(KS), "queries": 1, "dim": 1, "classes": 2, "chunk": 1, "noise": 0, "repeat": 1,
                          "threads": 1})
    print(f"k-NN bench: {args.train:,} x {args.dim} train, {args.queries:,} queries, {args.classes} classes, "
          f"k={KS}, {args.threads} threads, CPU")
    results = {"blocked": run("blocked", args)}
    if not args.skip_naive:
        results["naive"] = run("naive", args)
    for name, r in results.items():
        print(f"  {name:8s} {r['seconds']:7.2f} s   peak extra {r['extra_gib']:6.2f} GiB   "
              f"top1@{HEADLINE_K} {r['res'][HEADLINE_K][0]:.2f}  top5@{HEADLINE_K} {r['res'][HEADLINE_K][1]:.2f}"
              + ("" if r["exact_peak"] else "   (peak not reset: includes set-up)"))
    if "naive" in results:
        b, n = results["blocked"], results["naive"]
        diff = max(abs(b["res"][k][i] - n["res"][k][i]) for k in KS for i in (0, 1))
        print(f"  time ratio blocked/naive {b['seconds'] / n['seconds']:.2f} (target <= 1.5); "
              f"max accuracy difference over k and top-1/5: {diff:.3f} points (float rounding of near-ties); "
              f"blocked peak extra < 1 GiB: {b['extra_gib'] < 1.0}")
    return 0
