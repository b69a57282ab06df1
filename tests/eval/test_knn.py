"""k-NN equals an obviously-correct per-query loop, also across query and train chunk boundaries."""

from __future__ import annotations

import math

import pytest
import torch

from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.knn import iter_knn_scores, knn_classify, topk_neighbours


def brute_force(train, train_labels, queries, query_labels, k, T, C):
    """Per query: cosine to every train vector, sort, k best vote exp(cos/T) for their class."""
    votes = torch.zeros(len(queries), C, dtype=torch.float64)
    top1 = top5 = 0
    for i, q in enumerate(queries.double()):
        cos = [float(q @ t / (q.norm() * t.norm())) for t in train.double()]
        order = sorted(range(len(cos)), key=lambda j: -cos[j])[:k]
        for j in order:
            votes[i, int(train_labels[j])] += math.exp(cos[j] / T)
        ranked = sorted(range(C), key=lambda c: -votes[i, c])
        top1 += ranked[0] == int(query_labels[i])
        top5 += int(query_labels[i]) in ranked[:min(5, k)]
    n = len(queries)
    return votes, 100.0 * top1 / n, 100.0 * top5 / n


@pytest.mark.parametrize("chunk,block_bytes", [(1000, 1 << 30), (7, 4 * 7 * 13), (3, 4 * 3 * 50)])
def test_knn_matches_brute_force_across_chunks(chunk, block_bytes):
    g = torch.Generator().manual_seed(0)
    C, N, Q, D = 6, 120, 40, 16
    centres = torch.randn(C, D, generator=g)
    train_labels = torch.randint(0, C, (N,), generator=g)
    train = centres[train_labels] + 1.5 * torch.randn(N, D, generator=g)
    query_labels = torch.randint(0, C, (Q,), generator=g)
    queries = centres[query_labels] + 1.5 * torch.randn(Q, D, generator=g)
    ks = (1, 10, 20, 50)
    res = knn_classify(train, train_labels, queries, query_labels, ks=ks, temperature=0.07, num_classes=C,
                       chunk=chunk, max_block_bytes=block_bytes)
    scores = {k: [] for k in ks}
    for _, s in iter_knn_scores(train, train_labels, queries, ks, C, 0.07, chunk, block_bytes):
        for k in ks:
            scores[k].append(s[k])
    for k in ks:
        votes, t1, t5 = brute_force(train, train_labels, queries, query_labels, k, 0.07, C)
        torch.testing.assert_close(torch.cat(scores[k]).double(), votes, rtol=1e-4, atol=1e-3)
        assert res[k][0] == pytest.approx(t1)
        assert res[k][1] == pytest.approx(t5)
    assert 0 < res[20][0] < 100  # a non-trivial problem


def test_topk_neighbours_blocked_equals_full():
    g = torch.Generator().manual_seed(1)
    train = torch.nn.functional.normalize(torch.randn(1000, 8, generator=g), dim=1)
    q = torch.nn.functional.normalize(torch.randn(17, 8, generator=g), dim=1)
    full_v, full_i = (q @ train.T).topk(30, dim=1)
    v, i = topk_neighbours(train, q, 30, max_block_bytes=4 * 17 * 64)  # 64-row train blocks
    torch.testing.assert_close(v, full_v)
    assert torch.equal(i, full_i)


def test_k_larger_than_train_set_uses_all():
    train = torch.randn(5, 4)
    labels = torch.tensor([0, 1, 0, 1, 1])
    res = knn_classify(train, labels, train, labels, ks=(200,), num_classes=2)
    assert set(res) == {200}


def test_bad_inputs_raise_clear_errors():
    train, labels = torch.randn(10, 4), torch.randint(0, 3, (10,))
    with pytest.raises(EvalError, match="train features are empty"):
        knn_classify(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), train, labels, num_classes=3)
    with pytest.raises(EvalError, match="query features are empty"):
        knn_classify(train, labels, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), num_classes=3)
    with pytest.raises(EvalError, match="share one class list"):
        knn_classify(train, labels, train, labels + 5, num_classes=3)
    with pytest.raises(EvalError, match="same model"):
        knn_classify(train, labels, torch.randn(10, 5), labels, num_classes=3)


def test_check_bank_refuses_k_beyond_the_bank_in_one_line():
    from attmask_ray.eval.knn import check_bank

    check_bank((10, 16), 16, "bank")  # k equal to the bank size is fine
    with pytest.raises(EvalError) as exc:
        check_bank((10, 20, 100, 200), 16, "/data/bank")
    msg = str(exc.value)
    assert "\n" not in msg and "k=20,100,200" in msg and "/data/bank holds only 16 images" in msg
    assert "eval.knn_k=(10,)" in msg and "data.knn_train_path" in msg
    with pytest.raises(EvalError, match=r"set eval.knn_k=\(4,\)"):
        check_bank((5,), 4)


def test_knn_task_refuses_a_small_bank_instead_of_naming_a_capped_k(tiny_checkpoint):
    import functools

    from attmask_ray.eval.in_memory import tensor_loader
    from attmask_ray.eval.runner import run_evaluations
    from tests.eval.toy import tiny_config, toy_split

    loader = functools.partial(tensor_loader, datasets={"train": toy_split(4, 0), "val": toy_split(2, 1)})  # 12 images
    with pytest.raises(EvalError, match="k=20 but the k-NN bank train holds only 12 images"):
        run_evaluations(tiny_checkpoint, "knn", local=True, loader_factory=loader, eval_cfg=tiny_config().eval)
