"""AttMask ablation over the paper's knobs (Table 9a/b/c, Table A15, Table 1 strategies).

Knobs: teacher attention layer (attn_layer), masking probability p (masking_prob), ratio
range (a, b) (pred_ratio), MIM weight lambda (lambda_mim) and the masking strategy,
searched with Optuna TPE and stopped early with ASHA.
Base: the paper's ViT-S/16 on the 20% ImageNet-1k subset (first 260 images per class),
batch 240, 100 epochs, 6 local crops; expect ~1 GPU-day per trial on one 8-GPU node.
Data: python -m data_prep.imagefolder /path/to/imagenet data/imagenet --per-class 260
Run:  python -m attmask_ray.sweep sweeps/ablation.py --address auto
Embedded variant (2-core CPU, tiny ViT on 10k Fashion-MNIST, ~10 min per trial):
      python -m data_prep.fashion_mnist data/fashion_mnist_10k --train-subset 10000
      python -m attmask_ray.sweep sweeps/ablation.py:embedded
"""

from attmask_ray.config import ExperimentConfig, apply_overrides
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

PRESETS = ("embedded",)  # python -m attmask_ray.sweep sweeps/ablation.py:embedded


def get_config(arg: str = "") -> ExperimentConfig:
    if arg == "embedded":
        return embedded("ablation_embedded", root="data/fashion_mnist_10k", epochs=20, depth=6,  # attn layers 3..6
                        eval_every=5)
    cfg = ExperimentConfig(name="ablation")
    return apply_overrides(cfg, {"scaling.num_workers": 8, "scaling.use_gpu": True, "scaling.cpus_per_worker": 8.0,
                                 "data.num_workers": 8, "scaling.checkpoint_every": 1000})


def search_space(trial, cfg: ExperimentConfig) -> None:
    depth = cfg.model.resolved_depth  # 12 for ViT-S, 6 for the embedded preset
    layers = [depth // 2, depth * 3 // 4, depth - 1, depth]  # ViT-S: 6, 9, 11, 12 (Table 9a)
    trial.suggest_categorical("mask.strategy", ["attmask_high", "attmask_hint", "random", "block", "attmask_low"])
    trial.suggest_categorical("mask.attn_layer", layers)
    trial.suggest_categorical("mask.masking_prob", [0.0, 0.25, 0.5, 0.75, 1.0])  # Table 9b
    trial.suggest_categorical("mask.pred_ratio", ["(0.1, 0.3)", "(0.1, 0.5)", "(0.1, 0.7)", "(0.3, 0.3)"])  # Table 9c
    trial.suggest_categorical("loss.lambda_mim", [0.0, 0.5, 1.0, 2.0])  # Table A15


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=24, max_concurrent=2, sampler="tpe",
                scheduler="asha", grace_period=5, seed=0)
