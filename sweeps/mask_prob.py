"""Table 9b at small scale: masking probability p in {0, 0.5, 1} for attmask_high, 3 seeds each.

The paper (20% ImageNet, ViT-S/16, 100 epochs): p = 0 -> 43.4, 0.5 -> 49.4, 1 -> 44.2 k-NN;
both extremes hurt. Same shared embedded config as sweeps/strategies.py (no per-p tuning).
Expected run time: 9 trials x ~6 min, 2 at a time, on a 2-core CPU machine (~30 min).
p = 0.5 with seeds 0-2 is the same config as attmask_high in sweeps/strategies.py.
Data: python -m data_prep.fashion_mnist data/fashion_mnist_5k --train-subset 5000
Run:  python -m attmask_ray.sweep sweeps/mask_prob.py
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

PROBS = [0.0, 0.5, 1.0]
SEEDS = [0, 1, 2]


def get_config(arg: str = "") -> ExperimentConfig:
    return embedded("mask_prob", root="data/fashion_mnist_5k", epochs=6, eval_every=2,
                    extra={"mask.strategy": "attmask_high"})


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=len(PROBS) * len(SEEDS), max_concurrent=2,
                sampler="grid", grid={"mask.masking_prob": PROBS, "seed": SEEDS}, eval_tasks=("knn", "fewshot"))
