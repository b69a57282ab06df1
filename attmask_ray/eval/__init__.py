"""Downstream evaluations of a checkpoint (SPEC §6): k-NN, few-shot k-NN, linear probe,
robustness to hidden salient patches, run as Ray tasks sharing one feature extraction
(:mod:`~attmask_ray.eval.runner`); the registry of tasks is :data:`~attmask_ray.eval.tasks.TASKS`.
Also the online k-NN of training (:mod:`~attmask_ray.eval.online`) and the k-NN floors.
Imports nothing from train/ or the sweep layer (checkpoints: attmask_ray.checkpoint)."""

from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features, extract_features
from attmask_ray.eval.fewshot import fewshot_knn, fewshot_slices
from attmask_ray.eval.in_memory import tensor_batches, tensor_loader
from attmask_ray.eval.knn import knn_classify, topk_neighbours
from attmask_ray.eval.linear import train_linear, train_linear_augmented
from attmask_ray.eval.masked import black_out, masked_robustness, top_attended_mask
from attmask_ray.eval.runner import run_evaluations
from attmask_ray.eval.tasks import TASKS

__all__ = ["EvalError", "Features", "TASKS", "black_out", "extract_features", "fewshot_knn", "fewshot_slices",
           "knn_classify", "masked_robustness", "run_evaluations", "tensor_batches", "tensor_loader",
           "top_attended_mask", "topk_neighbours", "train_linear", "train_linear_augmented"]
