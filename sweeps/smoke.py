"""Smoke sweep: 2 AttMask trials (attmask_high vs block) on a 2,000-image Fashion-MNIST subset.

Reproduces nothing; it checks the whole pipeline end to end (FFCV shards -> Ray Train
TorchTrainer -> Tune + Optuna -> online k-NN on the 10k test split -> results.parquet -> report).
Expected run time: ~5 minutes on a 2-core CPU machine (2 trials side by side, 1 worker each).
Data: python -m data_prep.fashion_mnist data/fashion_mnist_2k --train-subset 2000
Run:  python -m attmask_ray.sweep sweeps/smoke.py
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec


def get_config(arg: str = "") -> ExperimentConfig:
    return embedded("smoke", root="data/fashion_mnist_2k", epochs=2, eval_every=1)


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=2, max_concurrent=2, sampler="grid",
                grid={"mask.strategy": ["attmask_high", "block"]})
