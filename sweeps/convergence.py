"""How fast attmask_high learns against block: the paper's "AttMask reaches block's accuracy in
~42 % fewer epochs", at small scale.

block (iBOT) and attmask_high, seeds 0 and 1, with the embedded preset (the recipe of
sweeps/recipe.py, attmask_ray/presets.py) for 20 epochs on the first 5,000 Fashion-MNIST training
images, online k-NN (k = 20, T = 0.07, the 10,000 test images) every 2 epochs, final k-NN and
few-shot k-NN. sweeps/strategies.py compares the strategies after 6 epochs; this one asks whether
attmask_high catches up or pulls ahead when its teacher has trained longer (the masks follow that
teacher's attention, so they change as it learns). Read the answer in the report's k-NN-vs-epoch
plot: the first epoch at which each strategy reaches block's final accuracy.
Expected run time: 4 trials x ~16 min, 2 at a time, on a 2-core CPU machine (~35 min).
docs/results/convergence/: attmask_high is ~1.2 points behind block at epochs 2-8 and level from
epoch 10 on (77.54 vs 77.77 at epoch 20, mean of 2 seeds): no speed-up at this scale.
Data: python -m data_prep.fashion_mnist data/fashion_mnist_5k --train-subset 5000
Run:  python -m attmask_ray.sweep sweeps/convergence.py
Floors: python -m attmask_ray.floors sweeps/convergence.py --out ray_results/convergence
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

STRATEGIES = ["block", "attmask_high"]
SEEDS = [0, 1]
EPOCHS = 20


def get_config(arg: str = "") -> ExperimentConfig:
    return embedded("convergence", root="data/fashion_mnist_5k", epochs=EPOCHS, eval_every=2)


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=len(STRATEGIES) * len(SEEDS), max_concurrent=2,
                sampler="grid", grid={"mask.strategy": STRATEGIES, "seed": SEEDS}, eval_tasks=("knn", "fewshot"))
