"""Bad inputs over every CLI: each is a non-zero exit with one clear line, no traceback, no hang,
no cluster started, and nothing written or lost.

One table, one row per distinct bad input: (cli, argv, a fragment of the expected message[,
exit code]). ``{name}`` in argv is a path of the module's workspace (a tiny checkpoint, a damaged
one, shards and damaged shards, results tables, broken sweep files, photos). The sweep rows run
with --dry-run where the input must already be refused there (a dry run that accepts an invalid
value would let a real run fail late, on the cluster); the others would start work if the
input were accepted, so the check also proves that nothing started: Ray's init is replaced by a
failure, every call has a time limit, and the workspace is byte-for-byte the same afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shutil
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

MAINS = {"sweep": "attmask_ray.sweep.cli", "evaluate": "attmask_ray.evaluate", "export": "attmask_ray.export",
         "report": "attmask_ray.report.__main__", "floors": "attmask_ray.sweep.floors", "viz": "attmask_ray.viz.cli",
         "fashion_mnist": "data_prep.fashion_mnist", "imagefolder": "data_prep.imagefolder",
         "verify": "data_prep.verify", "bench": "attmask_ray.bench.__main__", "in9": "data_prep.in9",
         "fashion_in9": "data_prep.fashion_in9"}

CASES = [
    # --- sweep ---
    ('sweep', ['sweeps/smoke.py:model.depth=0', '--dry-run'], 'model.depth must be > 0'),
    ('sweep', ['sweeps/smoke.py:model.embed_dim=-64', '--dry-run'], 'model.embed_dim must be > 0'),
    ('sweep', ['sweeps/smoke.py:model.num_heads=-2', '--dry-run'], 'model.num_heads must be > 0'),
    ('sweep', ['sweeps/smoke.py:model.num_heads=0', '--dry-run'], 'model.num_heads must be > 0'),
    ('sweep', ['sweeps/smoke.py:model.arch=vit_bogus_patch4', '--dry-run'], "model.arch 'vit_bogus_patch4' is not a timm model"),
    ('sweep', ['sweeps/smoke.py:eval.linear_epochs=0', '--dry-run'], 'eval.linear_epochs must be >= 1'),
    ('sweep', ['sweeps/smoke.py:model.pos_interp=nearest', '--dry-run'], "model.pos_interp must be 'reference' or 'timm'"),
    ('sweep', ['sweeps/smoke.py:mask.per_image_ratio=maybe', '--dry-run'], 'mask.per_image_ratio must be true/false'),
    ('sweep', ['sweeps/smoke.py:data.blur_sigma=(0,1)', '--dry-run'], 'data.blur_sigma must satisfy 0 < a <= b'),
    ('sweep', ['sweeps/smoke.py:data.blur_sigma=(2,1)', '--dry-run'], 'data.blur_sigma must satisfy 0 < a <= b'),
    ('sweep', ['sweeps/smoke.py:bogus', '--dry-run'], "unknown preset 'bogus' (it declares no PRESETS)"),
    ('sweep', ['sweeps/ablation.py:embeded', '--dry-run'], "unknown preset 'embeded' (its presets: embedded)"),
    ('sweep', ['sweeps/smoke.py', '--num-samples', '-1', '--dry-run'], '--num-samples must be >= 1, got -1'),
    ('sweep', ['sweeps/smoke.py', '--num-samples', '0', '--dry-run'], '--num-samples must be >= 1, got 0'),
    ('sweep', ['sweeps/smoke.py', '--num-cpus', '0', '--dry-run'], '--num-cpus must be >= 1, got 0'),
    ('sweep', ['sweeps/nope.py', '--dry-run'], 'sweep file sweeps/nope.py does not exist; pass a module from sweeps/ (e.g. sweeps/smoke.py'),
    ('sweep', ['README.md', '--dry-run'], 'sweep file README.md must be a Python module (.py'),
    ('sweep', ['{sweeps}/syntax.py', '--dry-run'], 'has a syntax error at line 1: invalid syntax; fix the file'),
    ('sweep', ['{sweeps}/imports.py', '--dry-run'], "failed to import: ModuleNotFoundError: No module named 'not_a_module_xyz'; fix the file (i"),
    ('sweep', ['{sweeps}/raises.py', '--dry-run'], "get_config('') raised RuntimeError: boom; fix the sweep file"),
    ('sweep', ['{sweeps}/no_config.py', '--dry-run'], "must define get_config(arg: str = '') -> ExperimentConfig"),
    ('sweep', ['{sweeps}/tune_type.py', '--dry-run'], 'TUNE must be a TuneSpec, got int'),
    ('sweep', ['{sweeps}/metric_typo.py', '--dry-run'], "TuneSpec.metric 'knn_top' is not reported by the trials; did you mean 'knn_top5'? reported"),
    ('sweep', ['{sweeps}/eval_task.py', '--dry-run'], "TuneSpec.eval_tasks ['bogus'] unknown; choose from knn, fewshot, linear, masked, retrieval, in9, finetune"),
    ('sweep', ['{sweeps}/grid_value.py', '--dry-run'], "TuneSpec.grid point {'mask.strategy': 'rand'} is not a point of search_space (ValueError: "),
    ('sweep', ['{sweeps}/no_space.py', '--dry-run'], 'defines no search_space, so its 8 trials would train the same config; add search_space(tri'),
    ('sweep', ['sweeps/smoke.py:model.bogus=1', '--dry-run'], "unknown config key 'model.bogus' (did you mean 'model.out_dim'?"),
    ('sweep', ['sweeps/smoke.py:bogus.key=1', '--dry-run'], "unknown config key 'bogus.key"),
    ('sweep', ['sweeps/smoke.py:optim.lr=abc', '--dry-run'], "optim.lr must be a number, got 'abc"),
    ('sweep', ['sweeps/smoke.py:optim.lr=-1', '--dry-run'], 'optim.lr must be > 0 and optim.min_lr >= 0, got -1.0, 1e-06'),
    ('sweep', ['sweeps/smoke.py:optim.epochs=0', '--dry-run'], 'optim.epochs must be >= 1, got 0'),
    ('sweep', ['sweeps/smoke.py:optim.batch_size=0', '--dry-run'], 'optim.batch_size must be >= 1, got 0'),
    ('sweep', ['sweeps/smoke.py:mask.strategy=bogus', '--dry-run'], "mask.strategy 'bogus' is unknown; allowed: block, random, attmask_high, attmask_low, attma"),
    ('sweep', ['sweeps/smoke.py:mask.masking_prob=1.5', '--dry-run'], 'mask.masking_prob must be in [0, 1], got 1.5'),
    ('sweep', ['sweeps/smoke.py:mask.pred_ratio=(0.5,0.1)', '--dry-run'], 'mask.pred_ratio must satisfy 0 <= a <= b <= 1, got (0.5, 0.1'),
    ('sweep', ['sweeps/smoke.py:loss.teacher_temp=0', '--dry-run'], 'loss.teacher_temp must be > 0, got 0.0'),
    ('sweep', ['sweeps/smoke.py:data.global_crop_size=30', '--dry-run'], 'data.eval_resize (28) must be >= global_crop_size (30'),
    ('sweep', ['sweeps/smoke.py:scaling.num_workers=-1', '--dry-run'], 'scaling.num_workers must be >= 0, got -1'),
    ('sweep', ['sweeps/smoke.py:eval.eval_every=-1', '--dry-run'], 'eval.eval_every must be >= 1, got -1'),
    ('sweep', ['sweeps/smoke.py:optim.momentum_teacher=1.5', '--dry-run'], 'optim.momentum_teacher must be in [0, 1], got 1.5'),
    ('sweep', ['sweeps/smoke.py:model.drop_path_rate=1.5', '--dry-run'], 'model.drop_path_rate must be in [0, 1), got 1.5'),
    ('sweep', ['sweeps/smoke.py:mask.attn_layer=99', '--dry-run'], 'mask.attn_layer must be in [1, 4] for a 4-block model, got 99'),
    ('sweep', ['sweeps/smoke.py:optim.batch_size=63,scaling.num_workers=2', '--dry-run'], 'optim.batch_size (63) must be divisible by scaling.num_workers (2'),
    ('sweep', ['sweeps/smoke.py:optim.lr', '--dry-run'], "sweeps/smoke.py: unknown preset 'optim.lr' (it declares no PRESETS); overrides need key=va"),
    ('sweep', ['sweeps/smoke.py:name=bad name', '--dry-run'], "name 'bad name' must use letters, digits, '_', '-', '.' only"),
    ('sweep', ['sweeps/smoke.py:data.color_jitter=(1,2)', '--dry-run'], 'data.color_jitter needs 4 values, got [1, 2]'),
    ('sweep', ['sweeps/smoke.py:optim.warmup_epochs=99', '--dry-run'], 'optim.warmup_epochs must be in [0, epochs='),
    ('sweep', ['sweeps/smoke.py:scaling.max_failures=-2', '--dry-run'], 'scaling.max_failures must be >= -1 (-1: unlimited'),
    ('sweep', ['sweeps/smoke.py:data.train_path={nowhere},data.val_path={data}/test'], 'does not exist; build it with `python -m data_prep.fashion_mnist data/fashion_mnist` or `p'),
    ('sweep', ['sweeps/smoke.py:data.train_path={data}/train,data.val_path={nowhere}'], 'does not exist; build it with `python -m data_prep.fashion_mnist data/fashion_mnist` or `p'),
    ('sweep', ['sweeps/smoke.py:data.train_path={empty},data.val_path={data}/test'], 'is missing (conversion unfinished?); re-run the converter into'),
    ('sweep', ['sweeps/smoke.py', '--storage', '/proc/attmask_results'], 'pass a writable folder (or an s3:// / gs:// URI'),
    ('sweep', ['sweeps/smoke.py', '--storage', '{file}/results'], 'cannot be created under it; pass a writable folder (or an s3:// / gs:// URI'),
    ('sweep', ['sweeps/smoke.py', '--resume', '--storage', '{empty}'], 'run without --resume first (same --storage and --name'),
    ('sweep', ['sweeps/smoke.py:scaling.use_gpu=True', '--storage', '{tmp}/rr'], 'scaling.use_gpu=True needs 1 GPU(s) but this machine has 0; set scaling.use_gpu=False or p'),
    ('sweep', ['sweeps/smoke.py:scaling.num_workers=16', '--storage', '{tmp}/rr'], 'scaling needs 16 CPUs for Train workers (16 x 1)'),
    ('sweep', ['sweeps/smoke.py', '--name', 'a/b', '--dry-run'], "--name 'a/b' must use letters, digits, '_', '-', '.' only (it is a folder under --storage"),
    ('sweep', ['sweeps/smoke.py:optim.epochs=abc', '--dry-run'], "optim.epochs must be an integer, got 'abc"),
    ('sweep', ['sweeps/smoke.py:model.patch_size=5', '--dry-run'], 'data.global_crop_size (28) must be divisible by model.patch_size (5'),
    ('sweep', ['sweeps/smoke.py:data.mean=(0.5,0.5)', '--dry-run'], 'data.mean needs 3 values, got [0.5, 0.5]'),
    ('sweep', ['sweeps/smoke.py:optim.batch_size=1.5', '--dry-run'], 'optim.batch_size must be an integer, got 1.5'),
    ('sweep', ['sweeps/smoke.py:scaling.use_gpu=maybe', '--dry-run'], "scaling.use_gpu must be true/false, got 'maybe"),
    ('sweep', ['sweeps/smoke.py:loss.lambda_mim=-1', '--dry-run'], 'loss.lambda_mim must be >= 0, got -1.0'),
    ('sweep', ['sweeps/smoke.py:loss.koleo_weight=-0.1', '--dry-run'], 'loss.koleo_weight must be >= 0 (0 turns it off), got -0.1'),
    ('sweep', ['sweeps/smoke.py:data.global_crops_scale=(0.9,0.2)', '--dry-run'], 'data.global_crops_scale must satisfy 0 <= a <= b <= 1, got (0.9, 0.2'),
    ('sweep', ['sweeps/smoke.py:seed=-1', '--dry-run'], 'seed and data.seed must be in [0, 2**32), got -1 and 0'),
    ('sweep', ['sweeps/smoke.py:optim.weight_decay=-0.1', '--dry-run'], 'optim.weight_decay and weight_decay_end must be >= 0'),
    ('sweep', ['sweeps/smoke.py:eval.knn_temperature=0', '--dry-run'], 'eval.knn_temperature must be > 0'),
    ('sweep', ['sweeps/smoke.py:data.num_workers=-1', '--dry-run'], 'data.num_workers must be >= 1, got -1'),
    ('sweep', ['sweeps/smoke.py:scaling.cpus_per_worker=0', '--dry-run'], 'scaling.cpus_per_worker must be > 0, got 0.0'),
    ('sweep', ['sweeps/smoke.py:scaling.checkpoint_every=0', '--dry-run'], 'scaling.checkpoint_every, num_to_keep and log_every must be >= 1'),
    ('sweep', ['sweeps/smoke.py:scaling.num_to_keep=0', '--dry-run'], 'scaling.checkpoint_every, num_to_keep and log_every must be >= 1'),
    ('sweep', ['sweeps/smoke.py:optim.clip_grad=-1', '--dry-run'], 'optim.clip_grad must be >= 0 (0 disables), got -1.0'),
    ('sweep', ['sweeps/smoke.py:model.arch=resnet50', '--dry-run'], "model.arch 'resnet50' is not a plain ViT (AttMask needs the [CLS] attention of timm's Visi"),
    ('sweep', ['sweeps/smoke.py:optim.precision=fp16', '--dry-run'], "optim.precision must be 'auto', 'fp32' or 'bf16', got 'fp16"),
    ('sweep', ['sweeps/smoke.py:eval.knn_k=()', '--dry-run'], 'eval.knn_k must be positive ints, got'),
    ('sweep', ['sweeps/smoke.py:data.train_path={data}/train,data.val_path={data}/test,data.knn_train_path={nowhere}'], 'does not exist; build it with `python -m data_prep.fashion_mnist data/fashion_mnist` or `p'),
    ('sweep', ['sweeps/strategies.py:data.train_path={data}/train,data.val_path={data}/test,eval.in9_root={nowhere}'], 'does not exist; build it with python -m data_prep.in9 SRC'),
    ('sweep', ['sweeps/retrieval.py:data.train_path={data}/train,data.val_path={data}/test,eval.retrieval_path={nowhere}'], 'does not exist; build it with `python -m data_prep.fashion_mnist data/fashion_mnist` or `p'),
    ('sweep', ['sweeps/smoke.py', '--address', 'bogus-host:1', '--dry-run', '--num-samples', 'x'], "argument --num-samples: invalid int value: 'x"),
    ('sweep', ['sweeps/smoke.py:data.train_path={data}/train,data.val_path={data}/test', '--address', '127.0.0.1:1',
               '--storage', '{tmp}/rr'], 'nothing answers at 127.0.0.1:1'),
    ('sweep', ['sweeps/smoke.py:data.train_path={data}/train,data.val_path={data}/test', '--address', 'ray://127.0.0.1:1',
               '--storage', '{tmp}/rr'], 'nothing answers at 127.0.0.1:1 (from ray://127.0.0.1:1)'),
    # --- evaluate ---
    ('evaluate', ['{ckpt}', '--train', '{data}/train', '--val', '{data}/test', '--address', '127.0.0.1:1',
                  '--set', 'eval.knn_k=(5,)'], 'cannot connect to the Ray cluster: nothing answers at 127.0.0.1:1'),
    ('evaluate', ['{mismatched_ckpt}', '--train', '{data}/train', '--val', '{data}/test', '--local',
                  '--set', 'eval.knn_k=(5,)'], 'weights do not fit the model its config describes'),
    ('evaluate', ['{ckpt}', '--train', '{corrupt_data}', '--val', '{data}/test', '--verify-data'], 'differs from the recorded'),
    ('evaluate', ['{nowhere}'], "pass a checkpoint directory holding state.pt (see the trial's checkpoint_* folders"),
    ('evaluate', ['{empty}'], "pass a checkpoint directory holding state.pt (see the trial's checkpoint_* folders"),
    ('evaluate', ['{corrupt_ckpt}'], 'cannot read checkpoint'),
    ('evaluate', ['{ckpt}', '--tasks', 'bogus'], "unknown evaluation task(s) ['bogus']; choose from knn, fewshot, linear, masked, retrieval, in9, finetune"),
    ('evaluate', ['{ckpt}', '--tasks', ''], 'unknown evaluation task(s) []; choose from knn, fewshot, linear, masked, retrieval, in9, finetune'),
    ('evaluate', ['{ckpt}', '--train', '{nowhere}', '--val', '{data}/test'], 'does not exist; build it with `python -m data_prep.fashion_mnist data/fashion_mnist` or `p'),
    ('evaluate', ['{ckpt}', '--train', '{data}/train', '--val', '{nowhere}'], 'does not exist; build it with `python -m data_prep.fashion_mnist data/fashion_mnist` or `p'),
    ('evaluate', ['{ckpt}', '--set', 'eval.bogus=1'], "unknown config key 'eval.bogus' (did you mean 'eval.num_gpus'?"),
    ('evaluate', ['{ckpt}', '--set', 'eval.linear_epochs=0'], 'eval.linear_epochs must be >= 1, got 0'),
    ('evaluate', ['{ckpt}', '--set', 'eval.knn_k=(0,)'], 'eval.knn_k must be positive ints, got (0'),
    ('evaluate', ['{ckpt}', '--set', 'mask.strategy=block'], '--set only takes eval.* keys here, got mask.strategy'),
    ('evaluate', ['{ckpt}', '--tasks', 'in9', '--set', 'eval.in9_root={nowhere}'], 'does not exist; build it with python -m data_prep.in9 SRC'),
    ('evaluate', ['{ckpt}', '--tasks', 'in9', '--set', 'eval.in9_root={data}'], 'lacks the original/ split; re-run python -m data_prep.in9 into it'),
    ('evaluate', ['{ckpt}', '--tasks', 'retrieval', '--train', '{data}/train', '--val', '{data}/test', '--set', 'eval.retrieval_path={nowhere}'], 'does not exist; build it with `python -m data_prep.fashion_mnist data/fashion_mnist` or `p'),
    ('evaluate', ['{ckpt}', '--tasks', 'retrieval', '--train', '{data}/train', '--val', '{data}/test', '--set', 'eval.retrieval_k=(1,20000)'], 'retrieval: Recall@k needs 1 <= k <= 9999 (gallery size - 1), got k = [1, 20000]; lower eval.r'),
    ('evaluate', ['{ckpt}', '--tasks', 'finetune', '--set', 'eval.finetune_init=imagenet'], "eval.finetune_init must be 'checkpoint' or 'random', got 'imagenet'"),
    ('evaluate', ['{ckpt}', '--out', '{file}', '--train', '{data}/train', '--val', '{data}/test'], 'is a file, not a folder; pass an experiment folder to append results.parquet to'),
    ('evaluate', ['{ckpt}', '--tasks', 'masked', '--attn-checkpoint', '{nowhere}'], "pass a checkpoint directory holding state.pt (see the trial's checkpoint_* folders"),
    ('evaluate', ['{ckpt}', '--tasks', 'masked', '--attn-checkpoint', '{ckpt_other}', '--train', '{data}/train', '--val', '{data}/test'], 'has patch 7 (4x4 grid at 28 px) but the evaluated checkpoint has patch 4 (7x7); pass a che'),
    ('evaluate', ['{ckpt}', '--train', '{data}/train', '--val', '{data}/test', '--set', 'eval.knn_k=(500,)'], 'holds only 300 images (a larger k would silently mean k=300); set eval.knn_k=(300,) (evalu'),
    ('evaluate', ['{ckpt}', '--train', '{empty}', '--val', '{data}/test'], 'is missing (conversion unfinished?); re-run the converter into'),
    ('evaluate', ['{ckpt}', '--out', '{corrupt_results}', '--train', '{data}/train', '--val', '{data}/test', '--set', 'eval.knn_k=(5,)'], 'is not a readable parquet table (ArrowInvalid); restore it from a copy or move it away (a '),
    # --- export ---
    ('export', ['{nowhere}', '{tmp}/x.pth'], "pass a checkpoint directory holding state.pt (see the trial's checkpoint_* folders"),
    ('export', ['{empty}', '{tmp}/x.pth'], "pass a checkpoint directory holding state.pt (see the trial's checkpoint_* folders"),
    ('export', ['{corrupt_ckpt}', '{tmp}/x.pth'], 'cannot read checkpoint'),
    ('export', ['{ckpt}', '{tmp}/x.json'], 'ends in .json, where the timm kwargs go; name the weights file e.g.'),
    ('export', ['{ckpt}', '{empty}'], 'is a directory; give a file name, e.g.'),
    ('export', ['{ckpt}', '{file}/x.pth'], 'cannot be created under it; choose another OUT path'),
    ('export', ['{ckpt}', '/proc/x.pth'], 'choose another OUT path'),
    ('export', ['{ckpt}', '{file}'], 'must end in .pth or .pt (the weights; the timm kwargs go next to it as .json), e.g.'),
    ('export', ['{mismatched_ckpt}', '{tmp}/x.pth'], 'weights do not fit the model its config describes'),
    # --- report ---
    ('report', ['{nowhere}'], 'run a sweep (python -m attmask_ray.sweep ...) or an evaluation first'),
    ('report', ['{empty}'], 'run a sweep (python -m attmask_ray.sweep ...) or an evaluation first'),
    ('report', ['{corrupt_results}'], 'is not a readable parquet table (ArrowInvalid); restore it from a copy or move it away (a '),
    ('report', ['{results}', '--metric', 'bogus'], "--metric 'bogus' is not a column of"),
    ('report', ['{results}', '--out', '{file}'], 'is a file, not a folder; pass --out a writable folder'),
    ('report', ['{file}'], 'run a sweep (python -m attmask_ray.sweep ...) or an evaluation first'),
    ('report', ['{results}', '--out', '/proc/rep'], 'pass --out a writable folder'),
    # --- floors ---
    ('floors', ['sweeps/nope.py'], 'sweep file sweeps/nope.py does not exist; pass a module from sweeps/ (e.g. sweeps/smoke.py'),
    ('floors', ['sweeps/smoke.py:data.train_path={nowhere},data.val_path={data}/test'], 'does not exist; build it with `python -m data_prep.fashion_mnist data/fashion_mnist` or `p'),
    ('floors', ['sweeps/smoke.py:model.bogus=1'], "unknown config key 'model.bogus' (did you mean 'model.out_dim'?"),
    ('floors', ['sweeps/smoke.py:data.train_path={data}/train,data.val_path={data}/test', '--out', '{file}'], 'is a file, not a folder; pass an experiment folder'),
    ('floors', ['sweeps/smoke.py:data.train_path={data}/train,data.val_path={data}/test', '--out', '{corrupt_results}'], 'is not a readable parquet table (ArrowInvalid); restore it from a copy or move it away (a '),
    # --- viz ---
    ('viz', ['masks', '--out', '{tmp}/m.png', '--images', '{photo}'], 'one of the arguments --checkpoint --random-init is required'),
    ('viz', ['masks', '--checkpoint', '{nowhere}', '--images', '{photo}', '--out', '{tmp}/m.png'], "pass a checkpoint directory holding state.pt (see the trial's checkpoint_* folders"),
    ('viz', ['masks', '--random-init', '--images', '{nowhere}', '--out', '{tmp}/m.png'], 'no image file or folder at'),
    ('viz', ['masks', '--random-init', '--images', '{photo}', '--num-images', '0', '--out', '{tmp}/m.png'], '--num-images must be >= 1'),
    ('viz', ['masks', '--random-init', '--images', '{photo}', '--ratio', '1.5', '--out', '{tmp}/m.png'], 'argument --ratio: ratio must be in [0, 1], got 1.5'),
    ('viz', ['masks', '--random-init', '--images', '{photo}', '--layer', '99', '--out', '{tmp}/m.png'], 'attn_layer must be in [1, 12], got 99'),
    ('viz', ['heads', '--random-init', '--images', '{photo}', '--mass', '0', '--out', '{tmp}/m.png'], 'mass must be in (0, 1], got 0.0'),
    ('viz', ['heads', '--random-init', '--images', '{photo}', '--mass', '1.5', '--out', '{tmp}/m.png'], 'mass must be in (0, 1], got 1.5'),
    ('viz', ['masks', '--random-init', '--images', '{photo}', '--override', 'model.bogus=1', '--out', '{tmp}/m.png'], "unknown config key 'model.bogus' (did you mean 'model.out_dim'?"),
    ('viz', ['masks', '--random-init', '--data', '{nowhere}', '--out', '{tmp}/m.png'], 'does not exist; build it with `python -m data_prep.fashion_mnist data/fashion_mnist` or `p'),
    ('viz', ['masks', '--random-init', '--images', '{photo}', '--out', '{file}/m.png'], 'cannot be created under it; choose another PNG path'),
    ('viz', ['masks', '--random-init', '--images', '{photo}', '--device', 'cuda', '--out', '{tmp}/m.png'], '--device cuda needs a CUDA GPU but this machine has none; use --device cpu'),
    ('viz', ['masks', '--random-init', '--images', '{file}', '--out', '{tmp}/m.png'], 'cannot identify image file'),
    ('viz', ['masks', '--random-init', '--images', '{photo}', '--strategies', 'bogus', '--out', '{tmp}/m.png'], "argument --strategies: invalid choice: 'bogus' (choose from 'block', 'random', 'attmask_hi"),
    ('viz', ['masks', '--checkpoint', '{corrupt_ckpt}', '--images', '{photo}', '--out', '{tmp}/m.png'], 'cannot read checkpoint'),
    ('viz', ['masks', '--random-init', '--images', '{photo}', '--device', 'tpu', '--out', '{tmp}/m.png'], 'is not a torch device'),
    ('viz', ['masks', '--checkpoint', '{mismatched_ckpt}', '--images', '{photo}', '--out', '{tmp}/m.png'],
     'weights do not fit the model its config describes'),
    # --- fashion_mnist ---
    ('fashion_mnist', ['{tmp}/fm', '--train-subset', '0'], '--train-subset must be a positive multiple of 10 (the kept classes), got 0'),
    ('fashion_mnist', ['{tmp}/fm', '--train-subset', '-10'], '--train-subset must be a positive multiple of 10 (the kept classes), got -10'),
    ('fashion_mnist', ['{tmp}/fm', '--train-subset', '15'], '--train-subset must be a positive multiple of 10 (the kept classes), got 15'),
    ('fashion_mnist', ['{tmp}/fm', '--train-subset', '70000'], '--train-subset 70000 asks for 7000 images per class but the train split has 6000 per class'),
    ('fashion_mnist', ['{tmp}/fm', '--idx-dir', '{nowhere}'], 'is missing; install the Debian package dataset-fashion-mnist (apt-get install dataset-fash'),
    ('fashion_mnist', ['{tmp}/fm', '--shards', '0'], '--shards must be >= 1, got 0'),
    ('fashion_mnist', ['{file}'], 'is a file, not a folder; choose another OUT folder'),
    ('fashion_mnist', ['{tmp}/fm', '--idx-dir', '{corrupt_idx}'], 'cannot be read (BadGzipFile: Unknown compression method); reinstall dataset-fashion-mnist'),
    ('fashion_mnist', ['/proc/fm'], 'choose another OUT folder'),
    ('fashion_mnist', ['{tmp}/fm', '--classes', '3-5'], '--classes must be A:B (a slice of the 10 sorted classes), got'),
    ('fashion_mnist', ['{tmp}/fm', '--classes', '4:4'], '--classes 4:4 keeps none of the 10 classes'),
    # --- in9 / fashion_in9 ---
    ('in9', ['{nowhere}', '{tmp}/in9'], 'does not exist; pass the unzipped bg_challenge folder'),
    ('in9', ['{photos}', '{tmp}/in9'], 'lacks original/train, original/val, only_fg/val'),
    ('fashion_in9', ['{tmp}/fi9', '--val-per-class', '1'], '--train-per-class must be >= 1 and --val-per-class >= 2, got 500, 1'),
    ('fashion_in9', ['{tmp}/fi9', '--idx-dir', '{nowhere}'], 'is missing; install the Debian package dataset-fashion-mnist'),
    ('fashion_in9', ['{file}'], 'is a file, not a folder; choose another folder'),
    ('fashion_in9', ['{tmp}/fi9', '--bg-correlation', '1.5'], '--bg-correlation must be in [0, 1], got 1.5'),
    # --- imagefolder ---
    ('imagefolder', ['{nowhere}', '{tmp}/if'], 'does not exist; pass an ImageFolder root (SRC/train/<class>/...'),
    ('imagefolder', ['{empty}', '{tmp}/if'], 'has no class folders; expected'),
    ('imagefolder', ['{flat_src}', '{tmp}/if'], 'has no class folders; expected'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--shards', '0'], '--shards must be >= 1, got 0'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--max-resolution', '-1'], '--max-resolution must be >= 8, got -1'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--jpeg-quality', '0'], '--jpeg-quality must be in [1, 100], got 0'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--jpeg-quality', '101'], '--jpeg-quality must be in [1, 100], got 101'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--workers', '0'], '--workers must be >= 1, got 0'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--per-class', '0'], '--per-class must be >= 1, got 0'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--fraction', '0'], '--fraction must be in (0, 1], got 0.0'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--fraction', '1.5'], '--fraction must be in (0, 1], got 1.5'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--offset', '-1'], '--offset must be >= 0, got -1'),
    ('imagefolder', ['{photos}', '{file}'], 'is a file, not a folder; choose another OUT folder'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--per-class', '2', '--fraction', '0.5'], 'give either --per-class or --fraction, not both'),
    ('imagefolder', ['{photos}', '{photos}'], 'overlap (one holds the other); write the shards to a folder outside the source tree'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--max-resolution', '4'], '--max-resolution must be >= 8, got 4'),
    ('imagefolder', ['{photos}', '{tmp}/if', '--write-mode', 'png'], "argument --write-mode: invalid choice: 'png' (choose from 'auto', 'jpg', 'raw"),
    ('imagefolder', ['{photos}', '{photos}/train/out'], 'overlap (one holds the other); write the shards to a folder outside the source tree'),
    ('imagefolder', ['{photos}', '/proc/shards'], 'choose another OUT folder'),
    # --- verify ---
    ('verify', ['{nowhere}'], 'is missing; pass a shards folder written by data_prep (python -m data_prep.imagefolder or '),
    ('verify', ['{empty}'], 'is missing; pass a shards folder written by data_prep (python -m data_prep.imagefolder or '),
    ('verify', ['{corrupt_data}'], 'differs from the recorded', 1),
    ('verify', ['{data}/train', '--threads', '0'], '--threads must be >= 1, got 0'),
    # --- bench ---
    ('bench', ['bogus'], "unknown benchmark 'bogus'; choose from step, data, knn"),
    ('bench', ['step', '--batch', '0'], '--batch must be >= 1, got 0'),
    ('bench', ['step', '--steps', '0'], '--steps must be >= 1, got 0'),
    ('bench', ['step', '--device', 'cuda'], '--device cuda needs a CUDA GPU but this machine has none; use --device cpu'),
    ('bench', ['step', '--arch', 'bogus'], "model.arch 'bogus' is not a timm model; pick a ViT name from timm.list_models('vit_*'), e."),
    ('bench', ['step', '--patch-size', '0'], '--patch-size must be >= 1, got 0'),
    ('bench', ['step', '--global-size', '30'], 'data.global_crop_size (30) must be divisible by model.patch_size (16'),
    ('bench', ['step', '--strategy', 'bogus'], '--strategy bogus unknown; choose from block, random, attmask_high, attmask_low, attmask_hi'),
    ('bench', ['step', '--n-local', '-1'], '--n-local must be >= 0, got -1'),
    ('bench', ['step', '--dtype', 'fp8'], "argument --dtype: invalid choice: 'fp8' (choose from 'fp32', 'bf16"),
    ('bench', ['knn', '--train', '0'], '--train must be >= 200, got 0'),
    ('bench', ['knn', '--chunk', '0'], '--chunk must be >= 1, got 0'),
    ('bench', ['knn', '--dim', '0'], '--dim must be >= 1, got 0'),
    ('bench', ['knn', '--classes', '0'], '--classes must be >= 2, got 0'),
    ('bench', ['data', '--src', '{nowhere}'], 'is not a folder; pass an ImageFolder of JPEGs (or leave --src out'),
    ('bench', ['data', '--images', '0'], '--images must be >= 9, got 0'),
    ('bench', ['data', '--batch', '0'], '--batch must be >= 1, got 0'),
    ('bench', ['data', '--skip', 'bogus'], '--skip bogus unknown; choose from device, host, aug, per-crop, torchvision'),
]

_BASE = "from attmask_ray.presets import embedded\nfrom attmask_ray.sweep.spec import TuneSpec\n"
_GET = "def get_config(arg=''):\n    return embedded('t', root='data/fashion_mnist_2k', epochs=2)\n"
_SPACE = "def search_space(trial):\n    trial.suggest_categorical('mask.strategy', ['attmask_high', 'block'])\n"
SWEEP_FILES = {
    "syntax.py": "def get_config(:\n",
    "imports.py": "import not_a_module_xyz\n",
    "raises.py": _BASE + "def get_config(arg=''):\n    raise RuntimeError('boom')\n" + _SPACE + "TUNE = TuneSpec()\n",
    "no_config.py": _BASE + _SPACE + "TUNE = TuneSpec()\n",
    "tune_type.py": _BASE + _GET + _SPACE + "TUNE = 3\n",
    "metric_typo.py": _BASE + _GET + _SPACE + "TUNE = TuneSpec(metric='knn_top')\n",
    "eval_task.py": _BASE + _GET + _SPACE + "TUNE = TuneSpec(eval_tasks=['bogus'])\n",
    "grid_value.py": _BASE + _GET + _SPACE + "TUNE = TuneSpec(sampler='grid', grid={'mask.strategy': ['rand']})\n",
    "no_space.py": _BASE + _GET + "TUNE = TuneSpec()\n",
}
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, embedded_root: Path) -> dict[str, Path]:
    """Every path the table refers to, built once."""
    from attmask_ray.config import apply_overrides
    from attmask_ray.checkpoint import save_checkpoint
    from attmask_ray.train.state import TrainingState
    from data_prep.sample_photos import make_photo_folder
    from tests.eval.toy import tiny_config

    w = tmp_path_factory.mktemp("bad_inputs")
    cfg = tiny_config()
    save_checkpoint(w / "ckpt", TrainingState.build(cfg, steps_per_epoch=1).state_dict(), cfg, metrics={"epoch": 0})
    other = apply_overrides(cfg, {"model.patch_size": 7, "data.local_crop_size": 14})  # another patch grid
    save_checkpoint(w / "ckpt_other", TrainingState.build(other, steps_per_epoch=1).state_dict(), other,
                    metrics={"epoch": 0})
    shutil.copytree(w / "ckpt", w / "mismatched_ckpt")  # weights of a 48-wide model, config says 96
    payload = torch.load(w / "mismatched_ckpt" / "state.pt", weights_only=False)
    payload["config"]["model"]["embed_dim"] = 96
    torch.save(payload, w / "mismatched_ckpt" / "state.pt")
    (w / "corrupt_ckpt").mkdir()
    (w / "corrupt_ckpt" / "state.pt").write_bytes(b"not a torch checkpoint " * 200)
    (w / "empty").mkdir()
    (w / "file").write_text("a plain file\n")
    shutil.copytree(embedded_root / "train", w / "corrupt_data")
    shard = next((w / "corrupt_data").glob("*.beton"))
    raw = bytearray(shard.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 4096] = bytes(b ^ 0xFF for b in raw[mid:mid + 4096])  # payload damaged, header intact
    shard.write_bytes(bytes(raw))
    (w / "corrupt_results").mkdir()
    (w / "corrupt_results" / "results.parquet").write_bytes(b"PAR1 not a parquet table")
    (w / "results").mkdir()
    pd.DataFrame({"trial_id": ["a"], "epoch": [1.0], "knn_top1": [50.0], "source": ["online"]}).to_parquet(
        w / "results" / "results.parquet")
    (w / "corrupt_idx").mkdir()
    for name in IDX_FILES:
        (w / "corrupt_idx" / name).write_bytes(b"\x1f\x8b not gzip")
    make_photo_folder(w / "photos" / "train", per_class=3, classes=2, size=(64, 80))
    make_photo_folder(w / "photos" / "val", per_class=2, classes=2, size=(64, 80), seed=1)
    photo = sorted((w / "photos" / "train").rglob("*.JPEG"))[0]
    (w / "flat_src").mkdir()
    shutil.copy(photo, w / "flat_src" / "a.jpg")
    (w / "sweeps").mkdir()
    for name, text in SWEEP_FILES.items():
        (w / "sweeps" / name).write_text(text)
    paths = {p.name: p for p in w.iterdir()}
    return {**paths, "data": embedded_root, "nowhere": w / "nowhere", "photo": photo}


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under ``roots``: equal before and after = nothing written or lost."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for root in roots for p in sorted(root.rglob("*"))}


def _run(cli: str, argv: list[str]) -> tuple[object, str]:
    """Run a CLI's main in this process with a 120 s limit; (exit code or exception, stdout+stderr)."""
    out = io.StringIO()

    def hang(*_: object) -> None:
        raise TimeoutError(f"{cli} {argv} did not return within 120 s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(120)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                code: object = importlib.import_module(MAINS[cli]).main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue()


def _ids() -> list[str]:
    return [f"{row[0]} " + " ".join(row[1]) for row in CASES]


def test_the_table_has_at_least_100_distinct_inputs_over_every_cli():
    assert len({(row[0], tuple(row[1])) for row in CASES}) == len(CASES) >= 100
    assert {row[0] for row in CASES} == set(MAINS)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=_ids())
def test_bad_input_is_one_clear_line(case, workspace, tmp_path, monkeypatch):
    import ray

    cli, argv, message, *rest = case
    expected_code = rest[0] if rest else 2
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("a Ray cluster was started for a bad input"))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as a fresh CLI process (the suite's cluster may run)
    argv = [a.format(tmp=tmp_path, **{k: str(v) for k, v in workspace.items()}) for a in argv]
    roots = [p for p in {*workspace.values(), tmp_path} if p.is_dir()]
    before = _snapshot(*roots)
    code, out = _run(cli, argv)
    assert code == expected_code, out
    assert "Traceback" not in out, out
    pattern = r"^bad shard " if expected_code == 1 else r"(^|: )error: "
    errors = [line for line in out.splitlines() if re.search(pattern, line)]
    assert len(errors) == 1, out
    assert message in errors[0], out
    assert _snapshot(*roots) == before, "a bad input wrote or removed files"
    assert not os.listdir(tmp_path), "a bad input created output"
