"""The Ray Train worker loop on real Fashion-MNIST shards: DDP run, fault tolerance, NaN stop."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest
import torch

from attmask_ray.config import to_dict
from attmask_ray.checkpoint import load_checkpoint
from attmask_ray.train.loop import train_loop_per_worker
from tests.conftest import tiny_experiment


def _trainer(cfg, storage, name, workers, max_failures=0):
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"experiment": to_dict(cfg), "trial": name},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(name=name, storage_path=str(storage), failure_config=FailureConfig(max_failures=max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=3)),
    )


@pytest.mark.timeout(420)
def test_two_worker_cpu_torchtrainer_runs_and_checkpoints(ray_cluster, embedded_root, tmp_path):
    cfg = tiny_experiment(embedded_root, **{"optim.epochs": 1, "eval.foreground_threshold": 0.2})
    result = _trainer(cfg, tmp_path, "ddp", workers=2).fit()
    assert result.error is None
    m = result.metrics
    steps = 300 // 32  # 300 images, global batch 32 split over 2 ranks, drop_last
    assert m["step"] == steps and m["epoch"] == 1.0
    assert 0 <= m["knn_top1"] <= 100 and m["images_per_s"] > 0 and 0 <= m["data_wait_frac"] < 1
    # collapse diagnostics: epoch means of the read steps, plus the k-NN-time ones
    assert 0 <= m["teacher_entropy"] <= 1 and m["teacher_student_kl"] >= 0 and 0 <= m["teacher_patch_entropy"] <= 1
    assert m["embed_std_ratio"] > 0 and -1 <= m["val_mean_cosine"] <= 1
    assert 0 <= m["fg_attention_share"] <= 1 and 0 < m["fg_patch_frac"] < 1  # Fashion-MNIST: object on black
    ckpt = load_checkpoint(result.checkpoint.path)
    assert ckpt.step == steps
    assert ckpt.payload["git_sha"]
    # DDP kept the student identical on both ranks -> EMA teacher is a valid network
    teacher = ckpt.network("teacher")
    tokens, attn = teacher.backbone(torch.randn(2, 3, 28, 28), attn_layer=3)
    assert torch.isfinite(tokens).all() and attn.shape == (2, 49)


def _registered(snapshot) -> bool:
    try:
        return bool(json.loads(snapshot.read_text()).get("latest_checkpoint_result"))
    except ValueError:  # being written
        return False


def _train_workers_of(ray_module) -> list:
    """RayTrainWorker processes of THIS test session's cluster only (children of its raylet):
    other Ray clusters on the machine (a user's sweep) are never touched."""
    import psutil

    session = ray_module._private.worker._global_node.get_session_dir_path()
    raylets = [p for p in psutil.process_iter(["cmdline"])
               if any("raylet" in part for part in (p.info["cmdline"] or [])[:1])
               and any(session in part for part in (p.info["cmdline"] or []))]
    workers = []
    for raylet in raylets:
        for child in raylet.children(recursive=True):
            try:
                if any("RayTrainWorker" in part for part in child.cmdline()):
                    workers.append(child)
            except psutil.NoSuchProcess:
                continue
    return workers


@pytest.mark.timeout(480)
def test_killed_worker_resumes_from_last_checkpoint(ray_cluster, embedded_root, tmp_path):
    cfg = tiny_experiment(embedded_root, **{"optim.epochs": 3, "scaling.checkpoint_every": 3,
                                            "eval.eval_every": 10})
    trainer = _trainer(cfg, tmp_path, "ft", workers=1, max_failures=1)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            # kill once the controller has registered a checkpoint (its snapshot names one)
            snapshot = tmp_path / "ft" / "checkpoint_manager_snapshot.json"
            if snapshot.exists() and _registered(snapshot):
                for proc in _train_workers_of(ray_cluster):
                    proc.kill()
                    killed.append(proc.pid)
                return
            time.sleep(0.2)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = trainer.fit()
    thread.join(timeout=5)
    assert killed, "no Train worker was found to kill"
    assert result.error is None
    total = 3 * (300 // 32)
    assert result.metrics["step"] == total
    history = result.metrics_dataframe
    resumed = history["resumed_from_step"].max()
    assert resumed >= 3 and resumed % 3 == 0, "the restarted worker group must continue from a checkpoint"


@pytest.mark.timeout(300)
def test_non_finite_loss_stops_cleanly_and_keeps_earlier_checkpoints(embedded_root, tmp_path, monkeypatch):
    import attmask_ray.train.loop as loop

    real = loop.train_step

    def poisoned(state, crops, rank=0, **kw):
        out = real(state, crops, rank, **kw)
        if state.step > 4:
            out["loss"] = torch.tensor(float("nan"))
        return out

    monkeypatch.setattr(loop, "train_step", poisoned)
    saved: list[int] = []
    real_save = loop.save_checkpoint

    def keep(directory, state_dict, cfg, metrics=None, **kw):  # local mode keeps no files: record what was saved
        path = real_save(directory, state_dict, cfg, metrics, **kw)
        shutil.copytree(directory, tmp_path / "kept" / f"step_{state_dict['step']}")
        saved.append(state_dict["step"])
        return path

    monkeypatch.setattr(loop, "save_checkpoint", keep)
    cfg = tiny_experiment(embedded_root, **{"scaling.checkpoint_every": 2, "eval.eval_every": 10})
    result = _trainer(cfg, tmp_path, "nan", workers=0).fit()  # local mode: the loop runs in this process
    assert "non-finite loss at step 6" in result.metrics["stop_reason"]
    assert saved == [2, 4], "checkpoints before the NaN are written, none after it"
    kept = load_checkpoint(tmp_path / "kept" / "step_4")
    assert kept.step == 4
    # a mid-epoch checkpoint carries the epoch's statistics so far (a resumed epoch reports all its steps)
    assert kept.payload["epoch_progress"]["epoch"] == 0 and kept.payload["epoch_progress"]["done"] == 4


def test_window_averages_diagnostics_over_the_steps_that_carry_them():
    from attmask_ray.train.loop import _EpochMean, _Window

    window = _Window()
    base = {"loss": torch.tensor(2.0), "cls": torch.tensor(1.0), "mim": torch.tensor(1.0), "koleo": torch.tensor(0.0),
            "masked_ratio": torch.tensor(0.3)}
    window.add(base)
    window.add({**base, "loss": torch.tensor(4.0), "teacher_entropy": torch.tensor(0.5)})
    vals = window.read()
    assert vals["loss"] == 3.0 and vals["teacher_entropy"] == 0.5
    window.add(base)
    assert "teacher_entropy" not in window.read()
    epoch = _EpochMean()
    epoch.add({"teacher_entropy": 0.5})
    epoch.add({"teacher_entropy": 0.7})
    epoch.add({})
    assert epoch.means() == {"teacher_entropy": 0.6}


def test_epoch_progress_survives_a_mid_epoch_checkpoint():
    from attmask_ray.train.loop import EpochProgress

    before = EpochProgress(epoch=2)
    for loss in (3.0, 2.0):  # two reads before the crash, 10 steps of 8 images in 4 s (1 s waiting)
        before.loss_sum += loss
        before.n_logs += 1
        before.diag.add({"teacher_entropy": loss / 10})
    before.done = 10
    saved = before.state_dict(seconds=4.0, wait=1.0)

    after = EpochProgress.resume(saved, epoch=2)  # the restarted process trains 5 more steps in 2 s
    after.loss_sum += 1.0
    after.n_logs += 1
    after.diag.add({"teacher_entropy": 0.1})
    after.done += 5
    assert after.loss_sum / after.n_logs == pytest.approx(2.0)  # all three reads of the epoch
    assert after.diag.means()["teacher_entropy"] == pytest.approx(0.2)
    rates = after.rates(images_per_step=8, seconds=2.0, wait=0.5)
    assert rates["images_per_s"] == pytest.approx(15 * 8 / 6.0)
    assert rates["data_wait_frac"] == pytest.approx(1.5 / 6.0)
    # a checkpoint of another epoch (or none) starts the epoch afresh
    assert EpochProgress.resume(saved, epoch=3).done == 0
    assert EpochProgress.resume(None, epoch=2).n_logs == 0
