"""``python -m attmask_ray.evaluate``: table output, results row, one-line errors."""

from __future__ import annotations

import pandas as pd

from attmask_ray import evaluate
from attmask_ray.eval import runner


def test_cli_prints_table_and_appends_results(tiny_checkpoint, toy_loader, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "default_loader", toy_loader)
    monkeypatch.setattr(runner, "_check_datasets", lambda train, val, knn_k=(), retrieval=None: None)
    rc = evaluate.main([str(tiny_checkpoint), "--tasks", "knn,fewshot", "--local", "--out", str(tmp_path),
                        "--set", "eval.knn_k=(20,)"])
    out = capsys.readouterr().out
    assert rc == 0 and "knn_top1" in out and "fewshot_nu5_mean" in out and "knn_top1_k10" not in out
    assert sorted(pd.read_parquet(tmp_path / "results.parquet")["source"]) == ["fewshot", "knn"]


def test_cli_errors_are_one_line(tiny_checkpoint, tmp_path, capsys):
    assert evaluate.main([str(tmp_path / "nowhere")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert evaluate.main([str(tiny_checkpoint), "--tasks", "knn,bogus"]) == 2
    assert "unknown evaluation task" in capsys.readouterr().err
    assert evaluate.main([str(tiny_checkpoint), "--set", "mask.strategy=block"]) == 2
    assert "only takes eval.* keys" in capsys.readouterr().err
    assert evaluate.main([str(tiny_checkpoint), "--set", "eval.linear_mode=slow"]) == 2
    assert "eval.linear_mode must be" in capsys.readouterr().err
