"""Table 1 at small scale: the five masking strategies, 3 fixed seeds each, one shared config.

block (iBOT) / random / attmask_low / attmask_hint / attmask_high with r ~ U(0.1, 0.5),
p = 0.5, attention from the last teacher layer; everything else identical across
strategies (no per-strategy tuning): the embedded preset, i.e. the recipe of
sweeps/recipe.py (attmask_ray/presets.py), on the first 5,000 Fashion-MNIST training images
for 6 epochs (the recipe search's budget); online k-NN and final k-NN / few-shot k-NN on the 10,000 test images,
and background robustness (paper Table 4) on the small IN-9 analogue (data_prep.fashion_in9).
Expected run time: 15 trials x ~6 min, 2 at a time, on a 2-core CPU machine (~50 min).
Data: python -m data_prep.fashion_mnist data/fashion_mnist_5k --train-subset 5000
      python -m data_prep.fashion_in9 data/fashion_in9
Run:  python -m attmask_ray.sweep sweeps/strategies.py
Floors: python -m attmask_ray.floors sweeps/strategies.py --out ray_results/strategies
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

STRATEGIES = ["block", "random", "attmask_low", "attmask_hint", "attmask_high"]
SEEDS = [0, 1, 2]


def get_config(arg: str = "") -> ExperimentConfig:
    return embedded("strategies", root="data/fashion_mnist_5k", epochs=6, eval_every=2,
                    extra={"eval.in9_root": "data/fashion_in9"})


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=len(STRATEGIES) * len(SEEDS), max_concurrent=2,
                sampler="grid", grid={"mask.strategy": STRATEGIES, "seed": SEEDS}, eval_tasks=("knn", "fewshot", "in9"))
