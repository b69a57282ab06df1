"""The Ray Train worker loop: ``train_loop_per_worker(config)``.

Every rank builds its rank-sharded FFCV loader once, the training state (DDP student when
world size > 1), resumes from ``ray.train.get_checkpoint()`` at the exact step, runs
``train_step``, and calls ``ray.train.report`` at the same points as every other rank
(rank 0 attaches the checkpoint). Scalars are read from the device only every
``scaling.log_every`` steps (and at epoch ends and checkpoints); only those steps of rank 0
also compute the collapse diagnostics (attmask_ray.diagnostics), averaged per epoch; rank 0
runs the online k-NN (attmask_ray.eval.online) every ``eval.eval_every`` epochs and at the end.
A non-finite loss stops training cleanly: nothing is saved after it, earlier checkpoints
stay, and the report carries ``stop_reason``.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import torch

from attmask_ray.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from attmask_ray.config import ExperimentConfig, from_dict
from attmask_ray.diagnostics import DIAGNOSTICS, TRAIN_DIAGNOSTICS
from attmask_ray.eval.online import OnlineKnn
from attmask_ray.metrics import knn_names
from attmask_ray.monitoring import ProgressExporter
from attmask_ray.train.state import TrainingState, resolve_device
from attmask_ray.train.step import train_step

SCALARS = ("loss", "cls", "mim", "koleo", "masked_ratio")
EPOCH_METRICS = SCALARS + ("lr", "images_per_s", "data_wait_frac")


def reported_metrics(cfg: ExperimentConfig) -> list[str]:
    """Every metric a trial of ``cfg`` reports to Tune (a TuneSpec.metric must be one of them):
    the epoch scalars, the collapse diagnostics and the online k-NN's (``knn_top1``/``knn_top5``
    at k = 20, or the first k, and ``knn_top{1,5}_k{k}`` for each k)."""
    return knn_names(cfg.eval.knn_k) + list(EPOCH_METRICS) + list(DIAGNOSTICS)


class _Window:
    """Device-side sums of the step scalars between two host reads.

    Diagnostics (present only on the steps that asked for them) are averaged over the
    steps that carry them."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.diag_sums: dict[str, torch.Tensor] = {}
        self.diag_count = 0

    def add(self, out: dict[str, torch.Tensor]) -> None:
        for k in SCALARS:
            self.sums[k] = self.sums.get(k, 0) + out[k].float()
        self.count += 1
        diag = [k for k in TRAIN_DIAGNOSTICS if k in out]
        for k in diag:
            self.diag_sums[k] = self.diag_sums.get(k, 0) + out[k].float()
        self.diag_count += bool(diag)

    def read(self) -> dict[str, float]:
        vals = {k: float(v) / max(self.count, 1) for k, v in self.sums.items()}
        vals |= {k: float(v) / max(self.diag_count, 1) for k, v in self.diag_sums.items()}
        self.sums, self.count, self.diag_sums, self.diag_count = {}, 0, {}, 0
        return vals


class _EpochMean:
    """Host-side running mean per key over the reads of one epoch."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, vals: dict[str, float]) -> None:
        for k, v in vals.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: v / self.counts[k] for k, v in self.sums.items()}


class EpochProgress:
    """What one epoch's report averages, kept in mid-epoch checkpoints so that an epoch resumed
    from one reports over all its steps: the loss and diagnostic reads before and after the
    restart, the steps trained and their wall/data-wait time (the replayed, skipped batches of
    a resumed epoch excluded)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.loss_sum, self.n_logs, self.done = 0.0, 0, 0
        self.seconds, self.wait = 0.0, 0.0  # of the steps counted in ``done``, before this process's segment
        self.diag = _EpochMean()

    def state_dict(self, seconds: float, wait: float) -> dict[str, Any]:
        """The progress so far, ``seconds``/``wait`` of this process's segment added."""
        return {"epoch": self.epoch, "loss_sum": self.loss_sum, "n_logs": self.n_logs, "done": self.done,
                "seconds": self.seconds + seconds, "wait": self.wait + wait,
                "diag_sums": dict(self.diag.sums), "diag_counts": dict(self.diag.counts)}

    @classmethod
    def resume(cls, saved: dict[str, Any] | None, epoch: int) -> "EpochProgress":
        """The saved progress when it belongs to ``epoch`` (a mid-epoch checkpoint), else a fresh one."""
        out = cls(epoch)
        if saved and int(saved.get("epoch", -1)) == epoch:
            out.loss_sum, out.n_logs, out.done = float(saved["loss_sum"]), int(saved["n_logs"]), int(saved["done"])
            out.seconds, out.wait = float(saved["seconds"]), float(saved["wait"])
            out.diag.sums, out.diag.counts = dict(saved["diag_sums"]), dict(saved["diag_counts"])
        return out

    def rates(self, images_per_step: int, seconds: float, wait: float) -> dict[str, float]:
        """images/s and data-wait share over every counted step (``seconds``/``wait``: this segment)."""
        total = max(self.seconds + seconds, 1e-9)
        return {"images_per_s": self.done * images_per_step / total, "data_wait_frac": (self.wait + wait) / total}


def _is_read_step(step: int, cfg: ExperimentConfig, steps_per_epoch: int) -> bool:
    """Whether the scalars are read on the host after optimiser step ``step`` (1-based count)."""
    return (step % cfg.scaling.log_every == 0 or step % steps_per_epoch == 0
            or step % cfg.scaling.checkpoint_every == 0)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point; ``config = {"experiment": nested config dict, "trial": name}``."""
    import ray.train
    from attmask_ray.data import build_train_loader

    cfg = from_dict(config["experiment"])
    trial = str(config.get("trial", cfg.name))
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = resolve_device(cfg.scaling.use_gpu)
    if device.type == "cpu":
        torch.set_num_threads(max(1, int(cfg.scaling.cpus_per_worker)))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    # one line per worker (scripts/gpu_check.sh counts them: every worker of every trial on cuda)
    print(f"[attmask_ray] {trial} rank {rank}/{world}: training on {device} ({where})", flush=True)
    loader = build_train_loader(cfg.data, cfg.optim.batch_size // world, rank, world, device, seed=cfg.data.seed)
    state = TrainingState.build(cfg, steps_per_epoch=len(loader), device=device)
    online_knn = OnlineKnn(cfg, device)  # keeps its eval loaders for every later evaluation
    ckpt = ray.train.get_checkpoint()
    resumed_from = -1  # reported so a restart from a checkpoint is visible in the results
    saved_progress = None  # a mid-epoch checkpoint's EpochProgress
    if ckpt is not None:
        with ckpt.as_directory() as d:
            restored = load_checkpoint(d, map_location=device)
            state.load_state_dict(restored.payload["state"])
            set_rng_state(restored.payload["rng"])
            resumed_from = state.step
            saved_progress = restored.payload.get("epoch_progress")
            print(f"[attmask_ray] rank {rank}: resumed from checkpoint at step {state.step}", flush=True)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        state.student = DDP(state.student, device_ids=[device.index] if device.type == "cuda" else None)
    exporter = ProgressExporter(trial) if rank == 0 else None
    spe = len(loader)
    images_per_step = cfg.optim.batch_size

    progress = EpochProgress.resume(saved_progress, state.epoch)
    segment = {"t0": time.perf_counter(), "wait0": 0.0}  # this process's timed span of the epoch

    def segment_times() -> tuple[float, float]:
        return time.perf_counter() - segment["t0"], loader.wait_time - segment["wait0"]

    def report(metrics: dict[str, Any], with_checkpoint: bool) -> None:
        metrics = {**metrics, "step": state.step, "epoch": state.step / spe, "resumed_from_step": resumed_from}
        if exporter is not None:
            exporter.update(metrics)
        if with_checkpoint:
            with tempfile.TemporaryDirectory() as tmp:
                checkpoint = None
                if rank == 0:
                    mid_epoch = state.step % spe != 0
                    save_checkpoint(tmp, state.state_dict(), cfg, metrics,
                                    epoch_progress=progress.state_dict(*segment_times()) if mid_epoch else None)
                    checkpoint = ray.train.Checkpoint.from_directory(tmp)
                ray.train.report(metrics, checkpoint=checkpoint)
        else:
            ray.train.report(metrics)

    window = _Window()
    if state.step >= state.schedules.total_steps:  # restarted after the last checkpoint: report the end state again
        report(online_knn(state.teacher.backbone) if rank == 0 else {}, with_checkpoint=False)
        return
    while state.step < state.schedules.total_steps:
        epoch = state.epoch
        skip = state.step - epoch * spe  # resuming mid-epoch: same order, skip what was done
        loader.set_epoch(epoch)
        if progress.epoch != epoch:
            progress = EpochProgress(epoch)
        segment.update(t0=time.perf_counter(), wait0=0.0)
        for i, (crops, _labels) in enumerate(loader):
            if i < skip:
                if i == skip - 1:  # replayed batches are not this epoch's training time
                    segment.update(t0=time.perf_counter(), wait0=loader.wait_time)
                continue
            # diagnostics only on rank 0 (which reports) and the steps whose scalars are read on the host
            diagnose = rank == 0 and _is_read_step(state.step + 1, cfg, spe)
            window.add(train_step(state, crops, rank, diagnostics=diagnose))
            progress.done += 1
            last_of_epoch = state.step % spe == 0
            if _is_read_step(state.step, cfg, spe):
                vals = window.read()
                progress.diag.add({k: v for k, v in vals.items() if k in TRAIN_DIAGNOSTICS})
                if not all(torch.isfinite(torch.tensor(vals[k])) for k in SCALARS):
                    report({"stop_reason": f"non-finite loss at step {state.step} (loss={vals['loss']}): "
                                           "lower optim.lr or check the data; earlier checkpoints are kept",
                            **{k: v for k, v in vals.items()}}, with_checkpoint=False)
                    return
                progress.loss_sum += vals["loss"]
                progress.n_logs += 1
                if exporter is not None:
                    exporter.update({**vals, "step": state.step})
            if state.step % cfg.scaling.checkpoint_every == 0 and not last_of_epoch:
                report({"loss": vals["loss"], "lr": state.optimizer.param_groups[0]["lr"]}, with_checkpoint=True)
        metrics: dict[str, Any] = {
            "loss": progress.loss_sum / max(progress.n_logs, 1), "mim": vals["mim"], "cls": vals["cls"], "koleo": vals["koleo"],
            "masked_ratio": vals["masked_ratio"], "lr": state.optimizer.param_groups[0]["lr"],
            **progress.rates(images_per_step, *segment_times()),
            **progress.diag.means(),  # collapse diagnostics: mean over the read steps of the epoch
        }
        finished_epochs = state.step // spe
        if finished_epochs % cfg.eval.eval_every == 0 or state.step >= state.schedules.total_steps:
            knn = online_knn(state.teacher.backbone) if rank == 0 else {}
            metrics.update(knn)
        report(metrics, with_checkpoint=True)
