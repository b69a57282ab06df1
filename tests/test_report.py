"""Reports from small hand-made results tables: rows, means, std, plots, missing metrics."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from attmask_ray.config import ExperimentConfig, apply_overrides
from attmask_ray.report import ReportError, build_report, make_report
from attmask_ray.report.__main__ import main
from attmask_ray.results import ResultRow, config_columns, write_results

BASE = ExperimentConfig()


def trial_rows(trial: str, overrides: dict, knn: list[float], final: dict | None = None) -> list[ResultRow]:
    """Online k-NN rows for epochs 1..len(knn), then one evaluation row per final metric source."""
    cfg = config_columns(apply_overrides(BASE, overrides))
    rows = [ResultRow(trial, "online", "sweep", e, 10 * e, "", {"knn_top1": v}, cfg) for e, v in enumerate(knn, start=1)]
    for source, metrics in (final or {}).items():
        rows.append(ResultRow(trial, source, "evaluate", len(knn), 10 * len(knn), f"/ckpt/{trial}", metrics, cfg))
    return rows


@pytest.fixture
def strategies_dir(tmp_path):
    """block x2 seeds, random x1, attmask_high x3 seeds; final knn/linear/fewshot evaluations."""
    rows = []
    spec = {"block": [40.0, 42.0], "random": [45.0], "attmask_high": [48.0, 50.0, 52.0]}
    for strategy, finals in spec.items():
        for seed, final in enumerate(finals):
            t = f"{strategy}_{seed}"
            rows += trial_rows(t, {"mask.strategy": strategy, "seed": seed}, [10.0, 20.0, 30.0 + seed],
                               {"knn": {"knn_top1": final, "knn_top5": final + 20},
                                "linear": {"linear_top1": final + 10},
                                "fewshot": {"fewshot_nu1_mean": final / 4, "fewshot_nu5_mean": final / 2}})
    write_results(tmp_path, rows)
    return tmp_path


def test_table_rows_means_and_std(strategies_dir):
    report = make_report(strategies_dir)
    rows = report.summary.rows.set_index("config/mask.strategy")
    assert list(rows.index) == ["block", "random", "attmask_high"]  # paper order, seeds merged
    assert rows["seeds"].tolist() == [2, 1, 3]
    assert rows.loc["block", "knn_top1/mean"] == pytest.approx(41.0)  # eval row beats online (30, 31)
    assert rows.loc["block", "knn_top1/std"] == pytest.approx(math.sqrt(2))  # sample std
    assert rows.loc["attmask_high", "knn_top1/mean"] == pytest.approx(50.0)
    assert rows.loc["attmask_high", "knn_top1/std"] == pytest.approx(2.0)
    assert rows.loc["attmask_high", "linear_top1/mean"] == pytest.approx(60.0)
    assert rows.loc["random", "fewshot_nu5_mean/mean"] == pytest.approx(22.5)
    md = report.markdown.read_text()
    assert "| attmask_high | (0.1, 0.5) | 3 | 50.00 ± 2.00 | 60.00 ± 2.00 | 12.50 ± 0.50 | 25.00 ± 1.00 |" in md
    assert "| random | (0.1, 0.5) | 1 | 45.00 | 55.00 | 11.25 | 22.50 |" in md
    assert report.notes == []


def test_plots_have_one_series_per_configuration(strategies_dir):
    report = make_report(strategies_dir)
    assert set(report.plots) == {"epoch", "config/mask.strategy"}
    assert report.plots["epoch"].series == ["block", "random", "attmask_high"]
    assert report.plots["config/mask.strategy"].series == ["knn_top1"]
    for plot in report.plots.values():
        assert plot.path.exists() and plot.path.stat().st_size > 1000
        assert plot.path.name in report.markdown.read_text()


def test_knob_sweep_missing_metrics_are_notes_not_crashes(tmp_path, capsys):
    rows = []
    for strategy in ("block", "attmask_high"):
        for p in (0.0, 0.5, 1.0):
            rows += trial_rows(f"{strategy}_{p}", {"mask.strategy": strategy, "mask.masking_prob": p},
                               [10.0, 20.0 + 10 * p])
    write_results(tmp_path, rows)
    path = build_report(tmp_path, tmp_path / "out")
    assert path == tmp_path / "out" / "report.md" and path.exists()
    report = make_report(tmp_path, tmp_path / "out")
    assert len(report.summary.rows) == 6
    assert any("'linear_top1' is not in results.parquet" in n for n in report.notes)
    assert "- metric column 'linear_top1' is not in results.parquet" in path.read_text()
    assert report.plots["epoch"].series == ["block, masking_prob=0.0", "block, masking_prob=0.5", "block, masking_prob=1.0",
                                            "attmask_high, masking_prob=0.0", "attmask_high, masking_prob=0.5",
                                            "attmask_high, masking_prob=1.0"]
    assert report.plots["config/mask.masking_prob"].series == ["block", "attmask_high"]  # one curve per strategy
    # asking to plot a metric that does not exist: a note, still a table
    report = make_report(tmp_path, tmp_path / "out2", metric="linear_top1")
    assert report.plots == {} and any("plotted metric 'linear_top1'" in n for n in report.notes)
    assert main([str(tmp_path), "--out", str(tmp_path / "out3")]) == 0
    assert "linear_top1" in capsys.readouterr().out


def test_missing_results_is_one_clear_line(tmp_path, capsys):
    with pytest.raises(ReportError, match="no results table at"):
        build_report(tmp_path)
    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no results table at") and err.count("\n") == 1


def test_floor_rows_are_references_not_trials(strategies_dir):
    cfg = config_columns(BASE)  # floors carry the base config, identical to a real trial's config
    write_results(strategies_dir, [
        ResultRow("floor_raw_pixel", "floor", "floors", 0.0, 0, "", {"knn_top1": 80.0, "knn_top5": 98.0}, cfg,
                  {"floor": "raw_pixel"}),
        ResultRow("floor_random_init", "floor", "floors", 0.0, 0, "", {"knn_top1": 50.0, "knn_top5": 90.0}, cfg,
                  {"floor": "random_init"})])
    report = make_report(strategies_dir)
    assert report.n_trials == 6  # the two floor rows did not become trials or seeds
    assert report.summary.rows.set_index("config/mask.strategy").loc["attmask_high", "seeds"] == 3
    md = report.markdown.read_text()
    assert "| raw_pixel | 80.00 | 98.00 |" in md and "| random_init | 50.00 | 90.00 |" in md


def test_learning_health_section_from_diagnostic_rows(tmp_path):
    """Per-epoch "train" rows carry the diagnostics; k-NN rows only every other epoch."""
    rows = []
    for strategy, entropy in (("block", [0.9, 0.8, 0.7, 0.6]), ("attmask_high", [0.99, 0.98, 0.97, 0.97])):
        for seed in (0, 1):
            cfg = config_columns(apply_overrides(BASE, {"mask.strategy": strategy, "seed": seed}))
            for e, h in enumerate(entropy, start=1):
                metrics = dict(teacher_entropy=h, embed_std_ratio=0.5 + seed / 10, teacher_embed_std=(0.5 + seed / 10) / 8)
                if e % 2 == 0:
                    metrics.update(knn_top1=10.0 * e, val_mean_cosine=0.2)
                rows.append(ResultRow(f"{strategy}_{seed}", "online" if e % 2 == 0 else "train", "sweep", float(e),
                                      10 * e, "", metrics, cfg))
    write_results(tmp_path, rows)
    report = make_report(tmp_path)
    health = report.health
    md = report.markdown.read_text()
    assert "## Learning health" in md and "diagnostics_vs_epoch.png" in md
    assert health.plot is not None and health.plot.path.exists() and health.plot.path.stat().st_size > 1000
    assert health.plot.series == ["block (block_0)", "block (block_1)", "attmask_high (attmask_high_0)",
                                  "attmask_high (attmask_high_1)"]  # one line per trial
    assert "| block | (0.1, 0.5) | 2 | 0.6000 ± 0.0000 | " in md  # final teacher entropy, seeds merged
    assert "0.5500 ± 0.0707" in md  # embed_std_ratio over the 2 seeds
    assert any(f.startswith("attmask_high_0: teacher targets near uniform") for f in health.flags)
    assert not any(f.startswith("block") for f in health.flags)
    assert any("fg_attention_share not reported" in n for n in health.notes)
    assert report.summary.rows.set_index("config/mask.strategy").loc["block", "knn_top1/mean"] == pytest.approx(40.0)


def test_learning_health_without_diagnostic_columns_is_a_note(strategies_dir):
    report = make_report(strategies_dir)
    assert report.health.plot is None and not (strategies_dir / "report" / "diagnostics_vs_epoch.png").exists()
    md = report.markdown.read_text()
    assert "## Learning health" in md and "no collapse-diagnostic columns" in md


def test_accuracy_axis_starts_at_the_floor_and_never_zooms_into_noise():
    from attmask_ray.report.plots import MIN_SPAN, accuracy_limits

    curve = [68.05, 68.24, 68.25, 68.32]  # a flat tail: 0.3 points of noise
    assert accuracy_limits(curve, [60.94, 80.72]) == pytest.approx((59.94, 81.72))
    lo, hi = accuracy_limits(curve)
    assert hi - lo == pytest.approx(MIN_SPAN) and lo < min(curve) and hi > max(curve)
    assert accuracy_limits([]) is None


def test_downstream_evaluations_get_one_table_each(tmp_path):
    """Masked, retrieval, in9 and finetune rows -> one table per task under "Downstream evaluations";
    a trial without them is left out of those tables."""
    rows = []
    for seed, base in enumerate((60.0, 62.0)):
        in9 = {f"in9_{v}": base + i for i, v in enumerate(("original", "only_fg", "mixed_same", "mixed_rand",
                                                            "mixed_next", "no_fg", "only_bg_b", "only_bg_t"))}
        rows += trial_rows(f"high_{seed}", {"mask.strategy": "attmask_high", "seed": seed}, [50.0],
                           {"knn": {"knn_top1": base}, "masked": {"masked_r0_top1": base, "masked_r30_top1": base - 5},
                            "retrieval": {"retrieval_r1": base, "retrieval_r2": base + 4, "retrieval_r8": base + 8},
                            "in9": in9 | {"in9_bg_gap": -1.0},
                            "finetune": {"finetune_top1": base + 20, "finetune_last_top1": base + 19}})
    rows += trial_rows("block_0", {"mask.strategy": "block"}, [40.0], {"knn": {"knn_top1": 41.0}})
    write_results(tmp_path, rows)
    report = make_report(tmp_path)
    titles = [t for t, _ in report.evals]
    assert [t.split(":")[0].split(",")[0] for t in titles] == ["Salient-patch masking", "Retrieval without fine-tuning",
                                                              "Background robustness", "Fine-tuning"]
    md = report.markdown.read_text()
    assert "## Downstream evaluations" in md
    assert "| strategy | ratio | seeds | r=0 | r=0.3 |" in md and "| attmask_high | (0.1, 0.5) | 2 | 61.00 ± 1.41 | 56.00 ± 1.41 |" in md
    assert "| seeds | R@1 | R@2 | R@8 |" in md
    assert ("| Original | Only-FG | Mixed-Same | Mixed-Rand | Mixed-Next | No-FG | Only-BG-B | Only-BG-T | BG-Gap |" in md)
    assert "| 2 | 81.00 ± 1.41 | 80.00 ± 1.41 |" in md  # best, then last top-1
    retrieval = dict(report.evals)[titles[1]].rows
    assert list(retrieval["config/mask.strategy"]) == ["attmask_high"]  # block has no retrieval rows
