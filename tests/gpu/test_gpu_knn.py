"""k-NN on the GPU gives the CPU's neighbours, class scores and accuracies (TF32 off: IEEE float32)."""

from __future__ import annotations

import pytest
import torch

from attmask_ray.eval.knn import iter_knn_scores, knn_classify, topk_neighbours
from tests.gpu.helpers import GPU, ieee_fp32

pytestmark = GPU


def _features(n=4000, q=600, d=64, classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=g)
    train_labels = torch.randint(0, classes, (n,), generator=g)
    query_labels = torch.randint(0, classes, (q,), generator=g)
    train = centres[train_labels] + 4.0 * torch.randn(n, d, generator=g)
    queries = centres[query_labels] + 4.0 * torch.randn(q, d, generator=g)
    return train, train_labels, queries, query_labels


@pytest.mark.parametrize("block_bytes", [256 * 2**20, 64 * 1024])  # one block, and a blocked scan with merges
def test_knn_on_gpu_equals_cpu(block_bytes):
    train, tl, queries, ql = _features()
    ks = (1, 10, 20, 100)
    with ieee_fp32():
        cpu = knn_classify(train, tl, queries, ql, ks=ks, max_block_bytes=block_bytes, chunk=256)
        gpu = knn_classify(train, tl, queries, ql, ks=ks, max_block_bytes=block_bytes, chunk=256, device="cuda")
        assert gpu == cpu
        assert 20.0 < cpu[20][0] < 100.0  # a real classification problem, not all right or all wrong
        s_cpu = list(iter_knn_scores(train, tl, queries, ks, 10, chunk=256, max_block_bytes=block_bytes))
        s_gpu = list(iter_knn_scores(train.cuda(), tl.cuda(), queries.cuda(), ks, 10, chunk=256,
                                     max_block_bytes=block_bytes))
        for (sl_c, sc), (sl_g, sg) in zip(s_cpu, s_gpu):
            assert sl_c == sl_g
            for k in ks:
                torch.testing.assert_close(sg[k].cpu(), sc[k], rtol=1e-4, atol=1e-6)


def test_topk_neighbours_on_gpu_equal_cpu():
    train, _, queries, _ = _features(n=3000, q=200)
    q = torch.nn.functional.normalize(queries, dim=1)
    with ieee_fp32():
        v_cpu, i_cpu = topk_neighbours(train, q, 50, max_block_bytes=32 * 1024)
        v_gpu, i_gpu = topk_neighbours(train.cuda(), q.cuda(), 50, max_block_bytes=32 * 1024)
    torch.testing.assert_close(v_gpu.cpu(), v_cpu, rtol=1e-5, atol=1e-5)
    # indices agree except where two scores are within float32 noise of each other
    same = (i_gpu.cpu() == i_cpu).float().mean().item()
    assert same > 0.999, same
