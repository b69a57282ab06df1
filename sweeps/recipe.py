"""Recipe search: which small-scale SSL knobs make the embedded preset learn (Optuna TPE + ASHA).

Question: with a fixed per-trial budget on a 2-core CPU, which values of the knobs that
decide small-scale DINO/iBOT training (lr and warm-up, batch size, head size, last-layer
normalisation/freezing, teacher temperatures and momentum, weight decay, crop scales and
number of local crops, blur and solarize, ViT width/depth/heads, drop path, lambda) give the best
k-NN top-1 on Fashion-MNIST? The objective is the MEAN over attmask_high and block
(``TuneSpec.objective_over``): every trial trains both strategies with the same knobs and
seed, so the recipe is chosen for the method, never per strategy. The best trial becomes
the ``embedded`` preset (attmask_ray/presets.py cites this sweep and its report).

Budget: 6 epochs on the first 5,000 training images per strategy (x2), online k-NN on the
10,000 test images every 2 epochs (k = 20, T = 0.07); ASHA (grace 2 epochs, factor 3)
stops weak trials while their second strategy trains. About 10-25 min per completed trial,
2 trials at a time on 2 cores: 12 trials in ~1.5 h.
Data: python -m data_prep.fashion_mnist data/fashion_mnist_5k --train-subset 5000
Run:  python -m attmask_ray.sweep sweeps/recipe.py --num-cpus 4 --no-dashboard
Report: python -m attmask_ray.report ray_results/recipe
"""

from attmask_ray.config import ExperimentConfig
from attmask_ray.presets import embedded
from attmask_ray.sweep.spec import TuneSpec

EPOCHS = 6

# The best partial trial of a first, broader run of this search (patch 4 or 7, 23 knobs;
# 60.3 % k-NN at epoch 4 of 6 for attmask_high before the run was interrupted): patch 7
# was ~2x faster per image and the only setting clearly above the old preset, so the
# search below fixes patch 7 and starts from that point.
KNOWN_GOOD = {
    "optim.lr": 0.003604, "optim.batch_size": 64, "optim.warmup_epochs": 2, "optim.weight_decay_end": 0.1,
    "optim.momentum_teacher": 0.95, "optim.freeze_last_layer": 0, "model.norm_last_layer": False,
    "model.out_dim": 1024, "model.head_hidden_dim": 512, "model.head_bottleneck_dim": 128,
    "loss.teacher_temp": 0.07, "loss.warmup_teacher_temp": 0.02, "loss.warmup_teacher_temp_epochs": 2,
    "loss.lambda_mim": 1.0, "data.global_crops_scale": "(0.6, 1.0)", "data.local_crops_scale": "(0.1, 0.4)",
    "data.local_crops_number": 0, "data.blur_prob": "(1.0, 0.1, 0.5)", "data.blur_sigma": "(0.1, 2.0)",
    "data.solarize_prob": 0.0, "model.embed_dim": 128, "model.depth": 4, "model.num_heads": 2,
    "model.drop_path_rate": 0.1,
}


def get_config(arg: str = "") -> ExperimentConfig:
    # patch 7 on 28 px: 4x4 global grid, 2x2 local grid (14 px local crops)
    return embedded("recipe", root="data/fashion_mnist_5k", epochs=EPOCHS, eval_every=2,
                    extra={"model.patch_size": 7, "data.local_crop_size": 14})


def search_space(trial) -> dict:
    """Define-by-run over config keys; tuple values are written as strings (Optuna needs scalars)."""
    trial.suggest_float("optim.lr", 1e-3, 2e-2, log=True)  # base lr for batch 256
    trial.suggest_categorical("optim.batch_size", [64, 128])
    trial.suggest_int("optim.warmup_epochs", 1, 2)
    trial.suggest_categorical("optim.weight_decay_end", [0.1, 0.4])
    trial.suggest_categorical("optim.momentum_teacher", [0.9, 0.95, 0.98, 0.99])
    trial.suggest_categorical("optim.freeze_last_layer", [0, 1])
    trial.suggest_categorical("model.norm_last_layer", [True, False])
    out_dim = trial.suggest_categorical("model.out_dim", [256, 1024, 4096])
    trial.suggest_categorical("model.head_hidden_dim", [256, 512])
    trial.suggest_categorical("model.head_bottleneck_dim", [64, 128])
    trial.suggest_categorical("loss.teacher_temp", [0.04, 0.07])
    trial.suggest_categorical("loss.warmup_teacher_temp", [0.02, 0.04])
    trial.suggest_int("loss.warmup_teacher_temp_epochs", 0, 2)
    trial.suggest_categorical("loss.lambda_mim", [0.5, 1.0, 2.0])
    trial.suggest_categorical("data.global_crops_scale", ["(0.4, 1.0)", "(0.6, 1.0)", "(0.8, 1.0)"])
    trial.suggest_categorical("data.local_crops_scale", ["(0.1, 0.4)", "(0.2, 0.6)"])
    trial.suggest_categorical("data.local_crops_number", [0, 2, 4])
    # blur radius is in pixels (sized for 224 px crops): at 28 px sigma 2 erases the garment
    trial.suggest_categorical("data.blur_prob", ["(1.0, 0.1, 0.5)", "(0.5, 0.1, 0.2)", "(0.0, 0.0, 0.0)"])
    trial.suggest_categorical("data.blur_sigma", ["(0.1, 2.0)", "(0.1, 0.5)"])
    trial.suggest_categorical("data.solarize_prob", [0.0, 0.2])
    trial.suggest_categorical("model.embed_dim", [96, 128, 192])
    trial.suggest_categorical("model.depth", [4, 6])
    trial.suggest_categorical("model.num_heads", [2, 4])
    trial.suggest_categorical("model.drop_path_rate", [0.0, 0.1])
    return {"model.patch_out_dim": out_dim}


TUNE = TuneSpec(metric="knn_top1", mode="max", num_samples=12, max_concurrent=2, sampler="tpe", seed=0,
                scheduler="asha", grace_period=2, reduction_factor=3, points_to_evaluate=(KNOWN_GOOD,),
                objective_over={"mask.strategy": ["attmask_high", "block"]})
