#!/bin/bash
# Fine-tuning (paper Table 6) at small scale: one Fashion-MNIST-pretrained attmask_high teacher
# (sweeps/strategies.py, seed 0, 6 epochs on 5k images) against the same ViT from scratch, same budget,
# on MNIST digits (data/mnist5k, see sweeps/other28.py) and on Fashion-MNIST 5k itself (test split).
# Usage: bash docs/results/downstream/finetune.sh CKPT OUT_ROOT
set -euo pipefail
CKPT=$1; OUT=$2
RECIPE="eval.finetune_epochs=30,eval.finetune_warmup_epochs=3,eval.finetune_lr=2e-3"
for target in digits fashion; do
  if [ $target = digits ]; then TRAIN=data/mnist5k/train; VAL=data/mnist5k/val; else TRAIN=data/fashion_mnist_5k/train; VAL=data/fashion_mnist_5k/test; fi
  mkdir -p "$OUT/finetune_$target"
  for init in checkpoint random; do
    python -m attmask_ray.evaluate "$CKPT" --tasks finetune --train $TRAIN --val $VAL --out "$OUT/finetune_$target" \
      --trial-id "${init}_init" --set "$RECIPE,eval.finetune_init=$init"
  done
done
