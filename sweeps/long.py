"""The learning curve of one long run: attmask_high with the embedded preset on 2 CPU cores.

One trial (1 Train worker x 2 threads) of the embedded preset (the recipe of sweeps/recipe.py,
attmask_ray/presets.py) on the first 5,000 Fashion-MNIST training images, online k-NN
(k = 20, T = 0.07, the 10,000 test images) every 2 epochs of 30, final k-NN and few-shot k-NN.
This is the "what does a laptop user get in ~45 minutes" run; compare its curve with the
floors (python -m attmask_ray.floors sweeps/long.py --out ray_results/long).
Expected run time: ~45 minutes on a 2-core CPU machine.
Data: python -m data_prep.fashion_mnist data/fashion_mnist_5k --train-subset 5000
Run:  python -m attmask_ray.sweep sweeps/long.py      (another strategy: sweeps/long.py:mask.strategy=block)
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

EPOCHS = 30  # ~1.3 min per epoch + evals: training fits the 45-minute budget


def get_config(arg: str = "") -> ExperimentConfig:
    return embedded("long", root="data/fashion_mnist_5k", epochs=EPOCHS, eval_every=2,
                    extra={"mask.strategy": "attmask_high", "scaling.cpus_per_worker": 2.0})


def search_space(trial) -> None:
    return None


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=1, max_concurrent=1, sampler="random",
                eval_tasks=("knn", "fewshot"))
