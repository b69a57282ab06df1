"""Multi-crop with a sharp teacher: does a 0.04 teacher keep stronger crops from uniform targets?

sweeps/multicrop.py (docs/results/multicrop/) found that global crops of scale 0.4-1.0, with or
without 6 local crops, drive the teacher's [CLS] targets to uniform at teacher_temp 0.07
(entropy 0.99-1.00 ln K) and end below the recipe (61.6-62 vs ~67-68 at 10 epochs), while a
0.04 teacher with the recipe's weak crops kept them sharp (0.69 ln K, 67.70; sweeps/plateau.py).
This 2x2 grid repeats multicrop.py with teacher_temp 0.04 (10 epochs, 5k split, attmask_high):
  data.local_crops_number  0 | 6 (14 px, scale 0.1-0.4)
  data.global_crops_scale  (0.8, 1.0) (recipe) | (0.4, 1.0)
Exploration only (one strategy, one seed); a preset change is confirmed with block too.
Expected run time: ~35 minutes on a 2-core CPU machine (two trials side by side).
Data: python -m data_prep.fashion_mnist data/fashion_mnist_5k --train-subset 5000
Run:  python -m attmask_ray.sweep sweeps/sharp_multicrop.py
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.tune_spec import TuneSpec

EPOCHS = 10
GRID = {"data.local_crops_number": [0, 6], "data.global_crops_scale": ["(0.8, 1.0)", "(0.4, 1.0)"]}


def get_config(arg: str = "") -> ExperimentConfig:
    return embedded("sharp_multicrop", root="data/fashion_mnist_5k", epochs=EPOCHS, eval_every=2,
                    extra={"mask.strategy": "attmask_high", "loss.teacher_temp": 0.04})


def search_space(trial) -> None:
    for knob, values in GRID.items():
        trial.suggest_categorical(knob, values)


TUNE = TuneSpec(metric="knn_top1", mode="max", sampler="grid", num_samples=4, max_concurrent=2, grid=GRID)
