"""What one trial needs and how many trials a cluster can hold: refuse instead of waiting forever."""

from __future__ import annotations

import os
from dataclasses import dataclass

from attmask_ray.config import ConfigError, ExperimentConfig
from attmask_ray.devices import local_gpu_count


@dataclass(frozen=True)
class TrialNeed:
    cpus: float  # trial driver (1) + Train workers (+ an evaluation task afterwards, not concurrent)
    gpus: float

    @classmethod
    def of(cls, cfg: ExperimentConfig) -> "TrialNeed":
        s = cfg.scaling
        workers = max(s.num_workers, 1)
        worker_cpus = 0.0 if s.num_workers == 0 else workers * s.cpus_per_worker
        return cls(cpus=1.0 + worker_cpus, gpus=float(workers) if s.use_gpu else 0.0)


def local_cluster_cpus(need: TrialNeed, max_concurrent: int) -> int:
    """Logical CPUs for a local cluster: the machine's cores for Train workers plus one slot per trial driver."""
    cores = os.cpu_count() or 1
    return max(int(cores + max_concurrent), int(need.cpus))


def check_local(cfg: ExperimentConfig) -> None:
    """Refuse, before starting anything, a trial this machine can never hold."""
    s = cfg.scaling
    cores = os.cpu_count() or 1
    worker_cpus = max(s.num_workers, 1) * s.cpus_per_worker
    if worker_cpus > cores:
        raise ConfigError(f"scaling needs {worker_cpus:g} CPUs for Train workers ({s.num_workers} x {s.cpus_per_worker:g}) "
                          f"but this machine has {cores}; lower scaling.num_workers / cpus_per_worker or pass --address of a larger cluster")
    if s.use_gpu and local_gpu_count() < max(s.num_workers, 1):
        raise ConfigError(f"scaling.use_gpu=True needs {max(s.num_workers, 1)} GPU(s) but this machine has {local_gpu_count()}; "
                          "set scaling.use_gpu=False or pass --address of a GPU cluster")


def concurrency(need: TrialNeed, cluster_cpus: float, cluster_gpus: float, wanted: int) -> int:
    """How many trials fit side by side; ConfigError when not even one fits."""
    fit = int(cluster_cpus // need.cpus) if need.cpus else wanted
    if need.gpus:
        fit = min(fit, int(cluster_gpus // need.gpus))
    if fit < 1:
        raise ConfigError(f"one trial needs {need.cpus:g} CPUs and {need.gpus:g} GPUs but the cluster has "
                          f"{cluster_cpus:g} CPUs and {cluster_gpus:g} GPUs; lower scaling.num_workers or use a larger cluster")
    return max(1, min(wanted, fit))
