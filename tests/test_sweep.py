"""The main entry point: dry runs, one-line errors before any cluster, a real sweep and --resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from attmask_ray import sweep as sweep_cli

REPO = Path(__file__).resolve().parents[1]
SWEEPS = sorted((REPO / "sweeps").glob("*.py"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_dry_run_works_for_every_sweep_file(path, capsys):
    assert sweep_cli.main([str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "resolved base config" in out and "search space" in out


def test_dry_run_of_ablation_embedded_preset(capsys):
    assert sweep_cli.main([str(REPO / "sweeps/ablation.py") + ":embedded,optim.epochs=3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "mask.attn_layer" in out and "loss.lambda_mim" in out


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if anything tries to start or join a Ray cluster."""
    import ray

    def refuse(*a, **k):
        raise AssertionError("a cluster was started before the input was validated")

    monkeypatch.setattr(ray, "init", refuse)


@pytest.mark.parametrize("target, message", [
    ("sweeps/smoke.py:mask.stratgy=block", "unknown config key 'mask.stratgy' (did you mean 'mask.strategy'?)"),
    ("sweeps/smoke.py:optim.epochs=abc", "optim.epochs must be an integer"),
    ("sweeps/smoke.py:mask.pred_ratio=(0.6,0.2)", "mask.pred_ratio must satisfy 0 <= a <= b <= 1"),
    ("sweeps/nope.py", "sweep file sweeps/nope.py does not exist"),
    ("sweeps/smoke.py:data.train_path=/nonexistent/shards", "/nonexistent/shards"),
    ("sweeps/smoke.py:scaling.num_workers=64,optim.batch_size=64", "needs 64 CPUs for Train workers"),
    ("sweeps/smoke.py:scaling.use_gpu=True", "scaling.use_gpu=True needs 1 GPU(s)"),
])
def test_bad_input_is_one_clear_line_before_any_cluster(target, message, no_cluster, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert sweep_cli.main([target, "--storage", "/tmp/never"]) == 2
    out = capsys.readouterr().out
    assert message in out
    assert out.count("error:") == 1 and "Traceback" not in out


def test_search_space_knobs_must_be_config_keys(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("from attmask_ray.config import ExperimentConfig\n"
                   "def get_config(arg=''):\n    return ExperimentConfig()\n"
                   "def search_space(trial):\n    trial.suggest_categorical('mask.ratio', [0.1])\n")
    assert sweep_cli.main([str(bad), "--dry-run"]) == 2
    assert "search space knob 'mask.ratio' is not a config key" in capsys.readouterr().out


SWEEP_TEMPLATE = '''"""Test sweep: 2 tiny trials, one at a time."""
from tests.conftest import tiny_experiment
from attmask_ray.tune_spec import TuneSpec

def get_config(arg=""):
    # mid-epoch checkpoint reports carry no k-NN: the searcher must cope with sparse metrics
    return tiny_experiment({root!r}, **{{"optim.epochs": 1, "name": "resume_test", "scaling.checkpoint_every": 4}})

def search_space(trial):
    trial.suggest_categorical("mask.strategy", ["attmask_high", "block"])

TUNE = TuneSpec(num_samples=2, max_concurrent=1, sampler="grid", grid={{"mask.strategy": ["attmask_high", "block"]}},
                eval_tasks=("knn",))
'''


def _sweep_cmd(sweep_file, storage, address, *extra):
    return [sys.executable, "-m", "attmask_ray.sweep", str(sweep_file), "--storage", str(storage), "--address", address,
            "--no-report", *extra]


@pytest.mark.timeout(900)
def test_two_trial_sweep_stopped_and_resumed(ray_cluster, embedded_root, tmp_path):
    address = ray_cluster.get_runtime_context().gcs_address
    sweep_file = tmp_path / "resume_sweep.py"
    sweep_file.write_text(SWEEP_TEMPLATE.format(root=str(embedded_root)))
    storage = tmp_path / "results"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(_sweep_cmd(sweep_file, storage, address), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    exp = storage / "resume_test"
    deadline = time.time() + 500
    while time.time() < deadline and len(list(exp.glob("*_train"))) < 2 and proc.poll() is None:
        time.sleep(0.5)  # the second trial's trainer starts only after the first trial finished
    assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    first_train = min(exp.glob("*_train"), key=lambda p: p.stat().st_mtime)
    snapshot = first_train / "checkpoint_manager_snapshot.json"
    finished_at = snapshot.stat().st_mtime
    proc.send_signal(signal.SIGINT)  # a user stopping the driver
    proc.wait(timeout=120)

    resumed = subprocess.run(_sweep_cmd(sweep_file, storage, address, "--resume"), cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert snapshot.stat().st_mtime == finished_at, "the finished trial must not run again"
    table = pd.read_parquet(exp / "results.parquet")
    online = table[table["source"] == "online"]
    assert sorted(online["config/mask.strategy"].unique()) == ["attmask_high", "block"]
    assert online.groupby("trial_id")["epoch"].max().eq(1.0).all()
    assert online["knn_top1"].between(0, 100).all()
    final = table[table["source"] == "final_eval"]  # the k-NN evaluation task ran on each final checkpoint
    assert len(final) >= 1 and final["knn_top1"].between(0, 100).all() and (final["error"] == "").all()


def test_searcher_ignores_results_without_the_metric():
    from attmask_ray.tune_plugins import SparseMetricOptunaSearch

    def space(trial):
        trial.suggest_categorical("seed", [0, 1])

    search = SparseMetricOptunaSearch(space=space, metric="knn_top1", mode="max")
    config = search.suggest("t1")
    assert config["seed"] in (0, 1)
    search.on_trial_result("t1", {"loss": 1.0, "epoch": 0.5})  # stock OptunaSearch raises KeyError here
    search.on_trial_result("t1", {"knn_top1": 50.0, "epoch": 1.0, "training_iteration": 1})
    search.on_trial_complete("t1", {"knn_top1": 55.0, "epoch": 1.0})
