"""The learning curve of one long run: attmask_high with the embedded preset on 2 CPU cores.

One trial (1 Train worker x 2 threads) of the embedded preset (the recipe of sweeps/recipe.py,
attmask_ray/presets.py) on the first 5,000 Fashion-MNIST training images, online k-NN
(k = 20, T = 0.07, the 10,000 test images) every 10 epochs of 100, final k-NN and few-shot k-NN.
This is the "what does a laptop user get in ~45 minutes" run (the learning-health target:
k-NN >= 75 % within 45 minutes); compare its curve with the floors
(python -m attmask_ray.floors sweeps/long.py --out ray_results/long).
Expected run time: ~28 s per epoch on an idle 2-core CPU machine (~180 img/s at batch 32; batch 64
ran 220-250 img/s), ~50 minutes with the evaluations; k-NN 75.3 % at epoch 10 and 80.9 % at epoch 40, above raw pixels (80.7 %),
25.5 minutes after the start (docs/results/long_b32/, stopped there); batch 64: long_t04/, 74.9 at 10,
80.7 at 40, 82.0 at 100; teacher temperature 0.07: long_koleo/, 75.1 and 80.6; without KoLeo,
long100/: 69.1 and 78.0).
Data: python -m data_prep.fashion_mnist data/fashion_mnist_5k --train-subset 5000
Run:  python -m attmask_ray.sweep sweeps/long.py      (another strategy: sweeps/long.py:mask.strategy=block)
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

EPOCHS = 100  # ~28 s per epoch + 10 online k-NN (~15 s each): ~50 min; the 45-minute target falls near epoch 80


def get_config(arg: str = "") -> ExperimentConfig:
    return embedded("long", root="data/fashion_mnist_5k", epochs=EPOCHS, eval_every=10,
                    extra={"mask.strategy": "attmask_high", "scaling.cpus_per_worker": 2.0})


def search_space(trial) -> None:
    return None


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=1, max_concurrent=1, sampler="random",
                eval_tasks=("knn", "fewshot"))
