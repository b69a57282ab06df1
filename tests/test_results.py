"""results.parquet: one row type, one writer, and tables written before read as if written now."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from attmask_ray.metrics import HEADLINE_K, canonical, knn_metrics, knn_names
from attmask_ray.results import ResultRow, read_results, write_results

REPO = Path(__file__).resolve().parents[1]
COMMITTED = sorted((REPO / "docs" / "results").glob("*/results.parquet"))


def test_knn_metric_names_are_shared():
    res = {10: (50.0, 80.0), 20: (60.0, 90.0)}
    out = knn_metrics(res)
    assert list(out) == ["knn_top1_k10", "knn_top1_k20", "knn_top5_k10", "knn_top5_k20", "knn_top1", "knn_top5"]
    assert (out["knn_top1"], out["knn_top5"]) == res[HEADLINE_K]
    assert knn_metrics({10: (1.0, 2.0)})["knn_top1"] == 1.0  # 20 not evaluated: the first k
    assert set(out) == set(knn_names((10, 20)))
    assert canonical("knn_k200_top5") == "knn_top5_k200" and canonical("knn_top1_k20") == "knn_top1_k20"
    assert canonical("member_knn_top1") == "member_knn_top1"


def test_one_writer_rewrites_its_own_rows_and_keeps_the_others(tmp_path):
    sweep = [ResultRow("t", "online", "sweep", 1, 10, "", {"knn_top1": 40.0})]
    write_results(tmp_path, [ResultRow("t", "knn", "evaluate", 1, 10, "/c", {"knn_k20_top1": 41.0})])
    write_results(tmp_path, sweep, replace_writer="sweep")
    path = write_results(tmp_path, sweep, replace_writer="sweep")
    table = pd.read_parquet(path)
    assert sorted(table["writer"]) == ["evaluate", "sweep"] and table["epoch"].dtype == float
    assert "knn_k20_top1" not in table.columns and table["knn_top1_k20"].max() == 41.0  # canonical on write
    assert not list(tmp_path.glob("*.tmp"))  # written atomically (temporary file renamed)


def test_a_table_written_before_is_upgraded_on_read(tmp_path):
    old = pd.DataFrame([
        {"trial_id": "a", "epoch": 2.0, "step": 20, "source": "online", "writer": "sweep", "knn_top1_k20": 60.0},
        {"trial_id": "a", "epoch": 2.0, "step": 20, "source": "final_eval", "writer": "sweep", "knn_k20_top1": 61.0},
        {"trial_id": "a", "epoch": 2, "step": 20, "source": "knn", "writer": None, "knn_k20_top1": 62.0},
        {"trial_id": "floor_raw_pixel", "epoch": 0.0, "step": 0, "source": "floor", "writer": None, "knn_top1": 50.0},
    ])
    old.to_parquet(tmp_path / "results.parquet")
    table = read_results(tmp_path)
    assert "knn_k20_top1" not in table.columns
    assert table["knn_top1_k20"].iloc[:3].tolist() == [60.0, 61.0, 62.0] and math.isnan(table["knn_top1_k20"].iloc[3])
    assert table["writer"].tolist() == ["sweep", "sweep", "evaluate", "floors"] and table["epoch"].dtype == float


@pytest.mark.parametrize("path", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_committed_results_read_with_one_name_per_metric(path):
    raw = pd.read_parquet(path)
    table = read_results(path)
    assert len(table) == len(raw) and table["writer"].notna().all() and table["epoch"].dtype == float
    assert not [c for c in table.columns if canonical(c) != c]
    for column in raw.columns:  # every value is still there, under its canonical name
        assert raw[column].notna().sum() <= table[canonical(column)].notna().sum(), column


def test_report_of_a_committed_table_takes_the_name_written_before(tmp_path, capsys):
    from attmask_ray.report.__main__ import main

    assert main([str(REPO / "docs/results/strategies_oldpreset"), "--metric", "knn_k20_top1", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "knn_top1_k20_vs_epoch.png").exists() and "knn_top1_k20" in capsys.readouterr().out
