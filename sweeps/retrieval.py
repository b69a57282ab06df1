"""Retrieval without fine-tuning (paper Table 8) at small scale: classes never seen in pre-training.

Pre-training on Fashion-MNIST classes 0-4 only (T-shirt, trouser, pullover, dress, coat; the first
1,000 training images of each), online k-NN on their test images; after training, Recall@1/2/4/8
of the frozen teacher's [CLS] on the 5,000 test images of classes 5-9 (sandal, shirt, sneaker, bag,
ankle boot), each querying the other 4,999 (the CUB / Cars / SOP protocol). The embedded preset,
10 epochs, attmask_high vs block, 2 seeds each. Compare with the same ViT at random init and raw
pixels: python -m attmask_ray.floors sweeps/retrieval.py (k-NN and Recall@k floors; figures in
docs/results/downstream/README.md).
Expected run time: 4 trials x ~7 min, 2 at a time, on a 2-core CPU machine (~15 minutes).
Data: python -m data_prep.fashion_mnist data/fashion_mnist_0to4 --classes 0:5 --train-subset 5000
      python -m data_prep.fashion_mnist data/fashion_mnist_5to9 --classes 5:10 --train-subset 50
Run:  python -m attmask_ray.sweep sweeps/retrieval.py
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec


def get_config(arg: str = "") -> ExperimentConfig:
    return embedded("retrieval", root="data/fashion_mnist_0to4", epochs=10, eval_every=2,
                    extra={"eval.retrieval_path": "data/fashion_mnist_5to9/test"})


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=4, max_concurrent=2, sampler="grid",
                grid={"mask.strategy": ["attmask_high", "block"], "seed": [0, 1]}, eval_tasks=("knn", "retrieval"))
