"""The learning curve of one long run: attmask_high with the embedded preset on 2 CPU cores.

One trial (1 Train worker x 2 threads) of the embedded preset (the recipe of sweeps/recipe.py,
attmask_ray/presets.py) on the first 5,000 Fashion-MNIST training images, online k-NN
(k = 20, T = 0.07, the 10,000 test images) every 10 epochs of 100, final k-NN and few-shot k-NN.
This is the "what does a laptop user get in ~45 minutes" run (the learning-health target:
k-NN >= 75 % within 45 minutes; the whole 100 epochs take ~54); compare its curve with the floors
(python -m attmask_ray.floors sweeps/long.py --out ray_results/long).
Expected run time: ~31 s per epoch on an idle 2-core CPU machine (150-187 img/s at batch 16; batch 32
ran ~180 img/s, ~27 s), ~54 minutes with the evaluations. docs/results/long100_b16/: k-NN 74.1 / 77.5 /
81.7 / 82.9 / 83.0 at epochs 10 / 20 / 60 / 80 / 100 (5.8 / 10.8 / 31.4 / 42.1 / 52.7 minutes of
training), above raw pixels (80.7 %) from epoch 60; batch 32: long100_b32/, 75.0 / 78.1 / 81.3 /
83.2 at epochs 10 / 20 / 40 / 100 (45.5 minutes); batch 64: long_t04/, 74.9 at 10, 80.7 at 40, 82.0
at 100; without KoLeo, long100/: 69.1 and 78.0 at 10 and 40).
Data: python -m data_prep.fashion_mnist data/fashion_mnist_5k --train-subset 5000
Run:  python -m attmask_ray.sweep sweeps/long.py      (another strategy: sweeps/long.py:mask.strategy=block)
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

EPOCHS = 100  # ~31 s per epoch with the 10 online k-NN: ~54 min (epoch 80 at 42.1 min in long100_b16/)


def get_config(arg: str = "") -> ExperimentConfig:
    return embedded("long", root="data/fashion_mnist_5k", epochs=EPOCHS, eval_every=10,
                    extra={"mask.strategy": "attmask_high", "scaling.cpus_per_worker": 2.0})


def search_space(trial) -> None:
    return None


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=1, max_concurrent=1, sampler="random",
                eval_tasks=("knn", "fewshot"))
