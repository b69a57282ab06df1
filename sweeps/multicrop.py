"""Multi-crop against the embedded recipe's plateau: local crops and global crop strength.

The recipe (sweeps/recipe.py, chosen at 6 epochs, where extra crops cost more than they give)
trains without local crops and with weak global crops (scale 0.8-1.0); it plateaus near 67-68%
k-NN (sweeps/long.py). Neither a sharper teacher (0.04: 67.70 at 10 epochs) nor patch 4 (47.35
after 4 epochs, 5x slower) fixes that (sweeps/plateau.py, docs/results/plateau/). Multi-crop is
DINO's main lever and cheap here: a 14 px local crop is a 2x2 grid of 7 px patches.
This sweep is a 2x2 grid, 10 epochs on the 5k split, attmask_high, everything else the recipe:
  data.local_crops_number  0 (recipe) | 6 (14 px, scale 0.1-0.4, as the recipe's local scale)
  data.global_crops_scale  (0.8, 1.0) (recipe) | (0.4, 1.0) (DINO's default for multi-crop)
Preset ``sharp`` (experiment sharp_multicrop, docs/results/sharp_multicrop/): the same grid with
teacher_temp 0.04, to see whether a sharper teacher keeps the stronger crops from uniform targets.
Exploration only (one strategy, one seed); a preset change is confirmed with block too.
Expected run time: ~35 minutes on a 2-core CPU machine (two trials side by side).
Data: python -m data_prep.fashion_mnist data/fashion_mnist_5k --train-subset 5000
Run:  python -m attmask_ray.sweep sweeps/multicrop.py          (or sweeps/multicrop.py:sharp)
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

EPOCHS = 10
GRID = {"data.local_crops_number": [0, 6], "data.global_crops_scale": ["(0.8, 1.0)", "(0.4, 1.0)"]}


PRESETS = ("sharp",)


def get_config(arg: str = "") -> ExperimentConfig:
    extra = {"mask.strategy": "attmask_high"} | ({"loss.teacher_temp": 0.04} if arg == "sharp" else {})
    return embedded("sharp_multicrop" if arg == "sharp" else "multicrop", root="data/fashion_mnist_5k",
                    epochs=EPOCHS, eval_every=2, extra=extra)


TUNE = TuneSpec(metric="knn_top1", mode="max", sampler="grid", num_samples=4, max_concurrent=2, grid=GRID)
