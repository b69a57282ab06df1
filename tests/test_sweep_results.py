from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from attmask_ray.config import ExperimentConfig, to_dict
from attmask_ray.results import append_results
from attmask_ray.sweep_results import result_rows, write_sweep_results


@dataclass
class FakeResult:
    config: dict
    path: str
    error: object
    metrics_dataframe: pd.DataFrame


def _grid():
    history = pd.DataFrame([
        {"step": 10, "epoch": 0.5, "loss": 7.0},  # mid-epoch checkpoint report: no k-NN -> no row
        {"step": 20, "epoch": 1.0, "loss": 6.5, "knn_top1": 40.0, "knn_top5": 80.0},
        {"step": 40, "epoch": 2.0, "loss": 6.0, "knn_top1": 45.0, "knn_top5": 85.0},
        {"step": 40, "epoch": 2.0, "knn_top1": 45.0, "source": "final_eval", "eval/knn_top1": 46.0,
         "eval/fewshot_nu5_mean": 30.0, "checkpoint_path": "/x/checkpoint_1"},
    ])
    return [FakeResult({"mask.strategy": "block", "seed": 1}, "/exp/trial_a", None, history),
            FakeResult({"mask.strategy": "random"}, "/exp/trial_b", RuntimeError("boom"), pd.DataFrame())]


def test_result_rows_one_per_trial_and_evaluation():
    rows = result_rows(_grid(), to_dict(ExperimentConfig()))
    a = [r for r in rows if r["trial_id"] == "trial_a"]
    assert [r["source"] for r in a] == ["online", "online", "final_eval"]
    assert [r["epoch"] for r in a] == [1.0, 2.0, 2.0]
    final = a[-1]
    assert final["knn_top1"] == 46.0 and final["fewshot_nu5_mean"] == 30.0 and final["checkpoint"] == "/x/checkpoint_1"
    assert a[0]["config/mask.strategy"] == "block" and a[0]["config/seed"] == 1
    b = [r for r in rows if r["trial_id"] == "trial_b"]
    assert len(b) == 1 and b[0]["status"] == "error" and "boom" in b[0]["error"]


def test_rewriting_keeps_rows_from_other_writers(tmp_path):
    append_results(tmp_path, [{"trial_id": "manual", "source": "knn", "knn_top1": 1.0}])
    rows = result_rows(_grid(), to_dict(ExperimentConfig()))
    write_sweep_results(tmp_path, rows)
    write_sweep_results(tmp_path, rows)  # a resumed sweep rewrites its own rows, no duplicates
    table = pd.read_parquet(tmp_path / "results.parquet")
    assert len(table) == len(rows) + 1
    assert (table["trial_id"] == "manual").sum() == 1


def test_epoch_reports_with_diagnostics_become_train_rows():
    history = pd.DataFrame([
        {"step": 10, "epoch": 0.5, "loss": 7.0},  # mid-epoch checkpoint report: no row
        {"step": 20, "epoch": 1.0, "loss": 6.5, "teacher_entropy": 0.8, "embed_std_ratio": 0.9, "images_per_s": 5.0},
        {"step": 40, "epoch": 2.0, "loss": 6.0, "teacher_entropy": 0.7, "embed_std_ratio": 0.8,
         "knn_top1": 45.0, "val_mean_cosine": 0.3, "fg_attention_share": 0.6, "fg_patch_frac": 0.4},
    ])
    rows = result_rows([FakeResult({"mask.strategy": "block"}, "/exp/t", None, history)], to_dict(ExperimentConfig()))
    assert [(r["source"], r["epoch"]) for r in rows] == [("train", 1.0), ("online", 2.0)]
    assert rows[0]["teacher_entropy"] == 0.8 and rows[0]["embed_std_ratio"] == 0.9
    assert pd.isna(rows[0].get("knn_top1", float("nan")))
    assert "images_per_s" not in rows[0]
    assert rows[1]["val_mean_cosine"] == 0.3 and rows[1]["fg_attention_share"] == 0.6 and rows[1]["knn_top1"] == 45.0
