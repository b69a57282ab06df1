"""The main entry point: dry runs, one-line errors before any cluster, a real sweep and --resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from attmask_ray.sweep import cli as sweep_cli

REPO = Path(__file__).resolve().parents[2]
SWEEPS = sorted((REPO / "sweeps").glob("*.py"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_dry_run_works_for_every_sweep_file(path, capsys):
    assert sweep_cli.main([str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "resolved base config" in out and "search space" in out


def test_dry_run_of_ablation_embedded_preset(capsys):
    assert sweep_cli.main([str(REPO / "sweeps/ablation.py") + ":embedded,optim.epochs=3,optim.warmup_epochs=1", "--dry-run"]) == 0
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
from attmask_ray.sweep.spec import TuneSpec

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
    from attmask_ray.sweep.plugins import SparseMetricOptunaSearch

    def space(trial):
        trial.suggest_categorical("seed", [0, 1])

    search = SparseMetricOptunaSearch(space=space, metric="knn_top1", mode="max")
    config = search.suggest("t1")
    assert config["seed"] in (0, 1)
    search.on_trial_result("t1", {"loss": 1.0, "epoch": 0.5})  # stock OptunaSearch raises KeyError here
    search.on_trial_result("t1", {"knn_top1": 50.0, "epoch": 1.0, "training_iteration": 1})
    search.on_trial_complete("t1", {"knn_top1": 55.0, "epoch": 1.0})


KILL_TEMPLATE = '''"""Test sweep: 1 tiny trial, 2 epochs, online k-NN after each."""
from tests.conftest import tiny_experiment
from attmask_ray.sweep.spec import TuneSpec

def get_config(arg=""):
    return tiny_experiment({root!r}, **{{"optim.epochs": 2, "eval.eval_every": 1, "name": "kill_test"}})

def search_space(trial):
    trial.suggest_categorical("mask.strategy", ["block"])

TUNE = TuneSpec(num_samples=1, max_concurrent=1, sampler="grid", grid={{"mask.strategy": ["block"]}})
'''


def _online_steps(journal: Path) -> dict[float, int]:
    """{epoch: step} of the online k-NN reports in the results journal."""
    from attmask_ray.sweep.journal import read_journal

    return {float(r["result"]["epoch"]): int(r["result"]["step"]) for r in read_journal(journal)
            if "knn_top1" in r["result"]}


@pytest.mark.timeout(900)
def test_sigkilled_driver_resumed_keeps_every_reported_row(ray_cluster, embedded_root, tmp_path):
    """A driver SIGKILLed mid-trial, then --resume: the trial continues from its epoch-1 checkpoint
    and Tune's own history of it starts again at the resumed step (when its last copy predates the
    report); the results journal keeps the epoch-1 row, so results.parquet has both epochs."""
    from attmask_ray.sweep.journal import read_journal

    address = ray_cluster.get_runtime_context().gcs_address
    sweep_file = tmp_path / "kill_sweep.py"
    sweep_file.write_text(KILL_TEMPLATE.format(root=str(embedded_root)))
    storage = tmp_path / "results"
    exp = storage / "kill_test"
    journal = exp / "results_journal.jsonl"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(_sweep_cmd(sweep_file, storage, address), cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 500
    while time.time() < deadline and 1.0 not in _online_steps(journal) and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None and 1.0 in _online_steps(journal), (tmp_path / "first.log").read_text()[-3000:]
    os.kill(proc.pid, signal.SIGKILL)  # the driver dies mid-trial: no shutdown, no final results
    proc.wait(timeout=60)
    before = _online_steps(journal)
    assert 2.0 not in before, "the trial finished before the kill; nothing was tested"
    assert not (exp / "results.parquet").exists()
    # Tune writes a trial's result.json/progress.csv in a staging folder of the Ray session and copies
    # them to the storage now and then. A rerun without --address is a new session: the restored trial
    # starts from the storage copy, which misses every report since the last copy. Make that certain:
    # a storage copy from before epoch 1, and no staging folder (this test's cluster outlives the driver).
    trial_dir = exp / next(read_journal(journal))["trial_id"]
    progress_csv = trial_dir / "progress.csv"
    for stale in (progress_csv, trial_dir / "result.json"):
        if stale.exists():
            lines = stale.read_text().splitlines(keepends=True)
            stale.write_text(lines[0] if stale == progress_csv and lines else "")  # the CSV keeps its header
    session = Path(ray_cluster._private.worker._global_node.get_session_dir_path())
    for staged in session.glob("artifacts/*/kill_test"):
        shutil.rmtree(staged)

    resumed = subprocess.run(_sweep_cmd(sweep_file, storage, address, "--resume"), cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    records = list(read_journal(journal))
    assert {r["trial_id"] for r in records} == {trial_dir.name}
    epoch2 = [r["result"] for r in records if r["result"].get("epoch") == 2.0 and "knn_top1" in r["result"]]
    assert epoch2 and epoch2[-1]["resumed_from_step"] == before[1.0], "the trial must continue from its checkpoint"
    assert set(pd.read_csv(progress_csv)["epoch"]) == {2.0}  # Tune's own history lacks epoch 1

    table = pd.read_parquet(exp / "results.parquet")
    online = table[table["source"] == "online"].sort_values("epoch")
    assert online["epoch"].tolist() == [1.0, 2.0] and online["trial_id"].nunique() == 1
    assert online["step"].tolist() == [before[1.0], 2 * before[1.0]]
    assert online["knn_top1"].between(0, 100).all() and online["config/mask.strategy"].eq("block").all()


def test_online_knn_k_larger_than_the_bank_is_refused_before_any_cluster(photo_shards, no_cluster, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    target = (f"sweeps/smoke.py:data.train_path={photo_shards / 'train'},data.val_path={photo_shards / 'val'},"
              "data.global_crop_size=28,eval.knn_k=(10,20,100)")
    assert sweep_cli.main([target, "--storage", "/tmp/never"]) == 2
    out = capsys.readouterr().out
    assert out.count("error:") == 1 and "Traceback" not in out
    assert "k=100 but the k-NN bank" in out and "holds only 27 images" in out


def test_data_root_resolves_relative_data_paths_only(tmp_path, monkeypatch):
    from attmask_ray.sweep.file import load_sweep, with_data_root

    monkeypatch.chdir(REPO)
    sweep = with_data_root(load_sweep("sweeps/smoke.py:data.val_path=/abs/test"), tmp_path)
    assert sweep.config.data.train_path == str(tmp_path.resolve() / "data/fashion_mnist_2k/train")
    assert sweep.config.data.val_path == "/abs/test"  # absolute paths stay as given


def test_data_root_that_is_not_a_directory_is_one_line(no_cluster, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    assert sweep_cli.main(["sweeps/smoke.py", "--data-root", str(tmp_path / "nope"), "--storage", "/tmp/never"]) == 2
    out = capsys.readouterr().out
    assert out.count("error:") == 1 and "Traceback" not in out and "--data-root" in out and "not a directory" in out


def test_version_mismatch_on_connect_is_one_line_with_the_fix(embedded_root, capsys, monkeypatch, tmp_path):
    import ray

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "fashion_mnist_2k").symlink_to(embedded_root)
    message = ("Version mismatch: The cluster was started with:\n    Ray: 2.59.0\n    Python: 3.10.12\n"
               "This process on node 10.0.0.2 was started with:\n    Ray: 2.60.0\n    Python: 3.11.9\n")

    def mismatch(*a, **k):
        raise RuntimeError(message)

    monkeypatch.setattr(ray, "init", mismatch)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.chdir(REPO)
    rc = sweep_cli.main(["sweeps/smoke.py", "--address", "10.0.0.1:6379", "--data-root", str(project),
                         "--storage", str(tmp_path / "results")])
    out = capsys.readouterr().out
    assert rc == 2 and "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    assert "Ray: 2.59.0 Python: 3.10.12" in errors[0] and "source .venv/bin/activate" in errors[0]
