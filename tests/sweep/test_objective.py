"""A trial whose metric is the mean over runs (TuneSpec.objective_over): maths, validation, a real sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from attmask_ray.config import ConfigError
from attmask_ray.sweep import cli as sweep_cli
from attmask_ray.sweep.objective import mean_objective
from attmask_ray.sweep.spec import TuneSpec
from attmask_ray.sweep.trial import objective_members

REPO = Path(__file__).resolve().parents[2]


def test_mean_objective_waits_for_every_member_and_averages():
    history = {"attmask_high": {1.0: {"knn_top1": 50.0, "knn_top5": 90.0}, 2.0: {"knn_top1": 60.0}}}
    labels = ["attmask_high", "block"]
    assert mean_objective(history, labels, 1.0) == {}  # block has not reported epoch 1 yet
    history["block"] = {1.0: {"knn_top1": 40.0, "knn_top5": 80.0}}
    assert mean_objective(history, labels, 1.0) == {"knn_top1": 45.0, "knn_top5": 85.0}
    assert mean_objective(history, labels, 2.0) == {}


def test_objective_members_are_config_overrides():
    assert objective_members({}) == []
    assert objective_members({"mask.pred_ratio": ["(0.1, 0.5)", "(0.3, 0.3)"]}) == [
        ("(0.1, 0.5)", {"mask.pred_ratio": (0.1, 0.5)}), ("(0.3, 0.3)", {"mask.pred_ratio": (0.3, 0.3)})]


@pytest.mark.parametrize("spec,message", [
    (dict(objective_over={"mask.strategy": ["block"]}), "one knob with >= 2 values"),
    (dict(objective_over={"mask.strategy": ["block", "random"], "seed": [0, 1]}), "one knob with >= 2 values"),
    (dict(metric="loss", mode="min", objective_over={"seed": [0, 1]}), "must start with 'knn_'"),
])
def test_tune_spec_checks_objective_over(spec, message):
    with pytest.raises(ConfigError, match=message):
        TuneSpec(**spec)


SWEEP = '''"""objective test sweep"""
from tests.conftest import tiny_experiment
from attmask_ray.sweep.spec import TuneSpec

def get_config(arg=""):
    return tiny_experiment({root!r}, **{{"optim.epochs": 1, "name": "objective_test"}})

def search_space(trial):
    trial.suggest_categorical("{knob}", {values!r})

TUNE = TuneSpec(num_samples=1, max_concurrent=1, scheduler="asha", grace_period=1, eval_tasks=("knn",),
                objective_over={{"mask.strategy": {members!r}}})
'''


@pytest.mark.parametrize("knob,values,members,message", [
    ("mask.strategy", ["block"], ["attmask_high", "block"], "both searched and in TuneSpec.objective_over"),
    ("seed", [0], ["attmask_high", "blok"], "objective_over mask.strategy='blok' is invalid"),
])
def test_bad_objective_is_one_line_in_dry_run(tmp_path, capsys, knob, values, members, message):
    path = tmp_path / "bad_objective.py"
    path.write_text(SWEEP.format(root=str(tmp_path), knob=knob, values=values, members=members))
    assert sweep_cli.main([str(path), "--dry-run"]) == 2
    assert message in capsys.readouterr().out


@pytest.mark.timeout(900)
def test_sweep_with_mean_objective_runs_every_member(ray_cluster, embedded_root, tmp_path):
    address = ray_cluster.get_runtime_context().gcs_address
    path = tmp_path / "objective_sweep.py"
    path.write_text(SWEEP.format(root=str(embedded_root), knob="seed", values=[3],
                                 members=["attmask_high", "block"]))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "attmask_ray.sweep", str(path), "--storage", str(tmp_path / "rr"),
                           "--address", address, "--no-report"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = pd.read_parquet(tmp_path / "rr" / "objective_test" / "results.parquet")
    online = table[table["source"] == "online"]
    assert sorted(online["member"].unique()) == ["attmask_high", "block"]
    # each member's rows carry its own strategy and k-NN; the last member's rows carry the mean
    for member, rows in online.groupby("member"):
        assert (rows["config/mask.strategy"] == member).all()
        assert rows["member_knn_top1"].between(0, 100).all()
    high = online[online["member"] == "attmask_high"].set_index("epoch")
    block = online[online["member"] == "block"].set_index("epoch")
    assert high["knn_top1"].isna().all()
    mean = (high["member_knn_top1"] + block["member_knn_top1"]) / 2
    assert (block["knn_top1"] - mean).abs().max() < 1e-9
    final = table[table["source"] == "final_eval"]  # the evaluation ran on both members' checkpoints
    assert sorted(final["member"]) == ["attmask_high", "block"]
    assert len({Path(c).parent.name for c in final["checkpoint"]}) == 2
    assert "best trials by knn_top1" in done.stdout


def test_member_row_renames_own_objective_and_adds_the_mean():
    from attmask_ray.sweep.objective import member_row

    row = {"knn_top1": 60.0, "loss": 1.0, "epoch": 2.0}
    assert member_row(row, "block", "mask.strategy", None) == {
        "loss": 1.0, "epoch": 2.0, "member_knn_top1": 60.0, "member": "block", "member_knob": "mask.strategy"}
    assert member_row(row, "block", "mask.strategy", {"knn_top1": 55.0})["knn_top1"] == 55.0
