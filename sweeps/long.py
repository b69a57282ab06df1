"""The learning curve of one long run: attmask_high with the embedded preset on 2 CPU cores.

One trial (1 Train worker x 2 threads) of the embedded preset (the recipe of sweeps/recipe.py,
attmask_ray/presets.py) on the first 5,000 Fashion-MNIST training images, online k-NN
(k = 20, T = 0.07, the 10,000 test images) every 10 epochs of 100, final k-NN and few-shot k-NN.
This is the "what does a laptop user get in ~45 minutes" run (the learning-health target:
k-NN >= 75 % within 45 minutes); compare its curve with the floors
(python -m attmask_ray.floors sweeps/long.py --out ray_results/long).
Expected run time: ~27 s per epoch on an idle 2-core CPU machine (~180 img/s at batch 32; batch 64
ran 220-250 img/s), ~46 minutes with the evaluations. docs/results/long100_b32/: k-NN 75.0 / 78.1 /
81.3 / 83.1 / 83.2 at epochs 10 / 20 / 40 / 80 / 100 (4.9 / 9.3 / 18.4 / 35.7 / 45.5 minutes of
training), above raw pixels (80.7 %) from epoch 40; batch 64: long_t04/, 74.9 at 10, 80.7 at 40,
82.0 at 100; teacher temperature 0.07: long_koleo/, 75.1 and 80.6 at 10 and 40; without KoLeo,
long100/: 69.1 and 78.0).
Data: python -m data_prep.fashion_mnist data/fashion_mnist_5k --train-subset 5000
Run:  python -m attmask_ray.sweep sweeps/long.py      (another strategy: sweeps/long.py:mask.strategy=block)
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

EPOCHS = 100  # ~27 s per epoch with the 10 online k-NN: ~46 min (epoch 90 at 40.6 min in long100_b32/)


def get_config(arg: str = "") -> ExperimentConfig:
    return embedded("long", root="data/fashion_mnist_5k", epochs=EPOCHS, eval_every=10,
                    extra={"mask.strategy": "attmask_high", "scaling.cpus_per_worker": 2.0})


def search_space(trial) -> None:
    return None


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=1, max_concurrent=1, sampler="random",
                eval_tasks=("knn", "fewshot"))
