#!/bin/bash
# Fine-tuning (paper Table 6) at small scale: one Fashion-MNIST-pretrained attmask_high teacher
# (sweeps/strategies.py, seed 0, 6 epochs on 5k images) against the same ViT from scratch, same budget,
# on MNIST digits (data/mnist5k, see sweeps/other28.py) and on Fashion-MNIST 5k itself (test split).
# Two recipes, 30 epochs each (lr 2e-3 per 512 images, 3 warm-up epochs):
#   reference: the task's defaults (RandomResizedCrop 0.08-1, mixup 0.8 / cutmix 1.0, label smoothing, ...)
#   small:     RandomResizedCrop 0.5-1 and no mixup / cutmix (28 px images, 4x4 patches)
# Usage: bash docs/results/downstream/finetune.sh CKPT OUT_ROOT [reference|small ...]  (default: both)
set -euo pipefail
CKPT=$1; OUT=$2; shift 2
RECIPES=${*:-reference small}
BASE="eval.finetune_epochs=30,eval.finetune_warmup_epochs=3,eval.finetune_lr=2e-3"
for recipe in $RECIPES; do
  case $recipe in
    reference) SET=$BASE ;;
    small) SET="$BASE,eval.finetune_mixup=0,eval.finetune_cutmix=0,eval.finetune_crop_scale=(0.5,1.0)" ;;
    *) echo "finetune.sh: unknown recipe $recipe (reference or small)" >&2; exit 2 ;;
  esac
  for target in digits fashion; do
    if [ $target = digits ]; then TRAIN=data/mnist5k/train; VAL=data/mnist5k/val; else TRAIN=data/fashion_mnist_5k/train; VAL=data/fashion_mnist_5k/test; fi
    mkdir -p "$OUT/finetune_${recipe}_$target"
    for init in checkpoint random; do
      python -m attmask_ray.evaluate "$CKPT" --tasks finetune --train $TRAIN --val $VAL --out "$OUT/finetune_${recipe}_$target" \
        --trial-id "${init}_init" --set "$SET,eval.finetune_init=$init"
    done
  done
done
