from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from attmask_ray.config import ExperimentConfig, to_dict
from attmask_ray.results import ResultRow, write_results
from attmask_ray.sweep.results import WRITER, mark_kept, result_rows


def row_records(*args, **kw) -> list[dict]:
    """result_rows(...) as the columns they become."""
    return [row.record() for row in result_rows(*args, **kw)]


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
    rows = row_records(_grid(), to_dict(ExperimentConfig()))
    a = [r for r in rows if r["trial_id"] == "trial_a"]
    assert [r["source"] for r in a] == ["online", "online", "final_eval"]
    assert [r["epoch"] for r in a] == [1.0, 2.0, 2.0]
    final = a[-1]
    assert final["knn_top1"] == 46.0 and final["fewshot_nu5_mean"] == 30.0 and final["checkpoint"] == "/x/checkpoint_1"
    assert a[0]["config/mask.strategy"] == "block" and a[0]["config/seed"] == 1
    b = [r for r in rows if r["trial_id"] == "trial_b"]
    assert len(b) == 1 and b[0]["status"] == "error" and "boom" in b[0]["error"]
    assert all(r["writer"] == "sweep" for r in rows)


def test_rewriting_keeps_rows_from_other_writers(tmp_path):
    write_results(tmp_path, [ResultRow("manual", "knn", "evaluate", metrics={"knn_top1": 1.0})])
    rows = result_rows(_grid(), to_dict(ExperimentConfig()))
    write_results(tmp_path, rows, replace_writer=WRITER)
    write_results(tmp_path, rows, replace_writer=WRITER)  # a resumed sweep rewrites its own rows, no duplicates
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
    rows = row_records([FakeResult({"mask.strategy": "block"}, "/exp/t", None, history)], to_dict(ExperimentConfig()))
    assert [(r["source"], r["epoch"]) for r in rows] == [("train", 1.0), ("online", 2.0)]
    assert rows[0]["teacher_entropy"] == 0.8 and rows[0]["embed_std_ratio"] == 0.9
    assert pd.isna(rows[0].get("knn_top1", float("nan")))
    assert "images_per_s" not in rows[0]
    assert rows[1]["val_mean_cosine"] == 0.3 and rows[1]["fg_attention_share"] == 0.6 and rows[1]["knn_top1"] == 45.0


def test_journal_keeps_rows_a_restored_trial_lost(tmp_path):
    """After Tuner.restore the dataframe starts at the resumed step; the journal still has epoch 1."""
    from attmask_ray.sweep.journal import append_record, journal_record, read_journal

    journal = tmp_path / "results_journal.jsonl"
    before = [{"step": 10, "epoch": 0.5, "loss": 7.0},
              {"step": 20, "epoch": 1.0, "loss": 6.5, "knn_top1": 40.0, "resumed_from_step": -1}]
    for rec in before:
        append_record(journal, journal_record("trial_a", {"mask.strategy": "block"}, rec))
    with open(journal, "a") as f:
        f.write('{"trial_id": "trial_a", "result": {"step": 3')  # the line a SIGKILL cut short
    after = pd.DataFrame([{"step": 40, "epoch": 2.0, "loss": 6.0, "knn_top1": 45.0, "resumed_from_step": 20}])
    append_record(journal, journal_record("trial_a", {"mask.strategy": "block"}, after.iloc[0].to_dict()))
    records = list(read_journal(journal))
    assert len(records) == 3 and records[0]["config"] == {"mask.strategy": "block"}
    grid = [FakeResult({"mask.strategy": "block"}, "/exp/trial_a", None, after)]
    rows = row_records(grid, to_dict(ExperimentConfig()), records)
    assert [(r["source"], r["epoch"], r["step"]) for r in rows] == [("online", 1.0, 20), ("online", 2.0, 40)]
    assert rows[0]["knn_top1"] == 40.0 and rows[1]["knn_top1"] == 45.0
    assert all(r["config/mask.strategy"] == "block" and r["status"] == "ok" for r in rows)
    assert row_records(grid, to_dict(ExperimentConfig())) == [rows[1]]  # without the journal: epoch 1 is gone
    assert list(read_journal(tmp_path / "none.jsonl")) == []


def test_journal_and_grid_dedupe_newest_wins_and_members_kept():
    from attmask_ray.sweep.journal import journal_record

    def member(label, knn, **extra):
        return {"step": 20, "epoch": 1.0, "member": label, "member_knob": "mask.strategy",
                "member_knn_top1": knn, **extra}

    grid_df = pd.DataFrame([member("block", 30.0), member("attmask_high", 50.0, knn_top1=40.0)])
    journal = [journal_record("trial_m", {"seed": 1}, member("block", 30.0)),
               journal_record("trial_m", {"seed": 1}, member("attmask_high", 50.0, knn_top1=40.0)),
               journal_record("trial_m", {"seed": 1}, member("attmask_high", 52.0, knn_top1=41.0)),  # newer report
               journal_record("trial_x", {"seed": 2}, {"step": 5, "epoch": 1.0, "knn_top1": 10.0})]  # not in the grid
    grid = [FakeResult({"seed": 1}, "/exp/trial_m", None, grid_df)]
    rows = row_records(grid, to_dict(ExperimentConfig()), journal)
    m = [r for r in rows if r["trial_id"] == "trial_m"]
    assert [(r["member"], r["member_knn_top1"]) for r in m] == [("block", 30.0), ("attmask_high", 52.0)]
    assert [r["config/mask.strategy"] for r in m] == ["block", "attmask_high"]  # each member's own knob value
    assert all(r["member_knob"] == "mask.strategy" and r["config/seed"] == 1 for r in m)
    assert m[1]["knn_top1"] == 41.0
    x = [r for r in rows if r["trial_id"] == "trial_x"]
    assert len(x) == 1 and x[0]["knn_top1"] == 10.0 and x[0]["config/seed"] == 2


def test_journal_callback_appends_each_result_and_attaches_to_a_restored_tuner(tmp_path):
    from types import SimpleNamespace

    from ray import tune

    from attmask_ray.sweep.journal import read_journal
    from attmask_ray.sweep.plugins import JournalCallback, attach_journal

    path = str(tmp_path / "exp" / "results_journal.jsonl")
    trial = SimpleNamespace(path="/storage/exp/attmask_trial_0001", trial_id="0001", config={"seed": 3})
    cb = JournalCallback(path)
    cb.on_trial_result(1, [], trial, {"step": 20, "epoch": 1.0, "knn_top1": 40.0, "config": {"seed": 3}, "done": False})
    (record,) = read_journal(path)
    assert record["trial_id"] == "attmask_trial_0001" and record["config"] == {"seed": 3}
    assert record["result"] == {"step": 20, "epoch": 1.0, "knn_top1": 40.0}  # nested and bool values dropped
    run_config = tune.RunConfig(callbacks=[JournalCallback("/old/place.jsonl"), "other"])
    tuner = SimpleNamespace(_local_tuner=SimpleNamespace(get_run_config=lambda: run_config))
    attach_journal(tuner, path)
    assert run_config.callbacks[0] == "other" and run_config.callbacks[1].path == path


def test_rows_say_whether_their_checkpoint_is_still_kept(tmp_path):
    from attmask_ray.report import make_report
    from attmask_ray.results import config_columns
    from attmask_ray.sweep.results import last_kept_checkpoints

    kept = tmp_path / "t1_train" / "checkpoint_2"
    kept.mkdir(parents=True)
    cfg = config_columns(ExperimentConfig())
    rows = mark_kept([
        ResultRow("t1", "online", WRITER, 1.0, 10, str(tmp_path / "t1_train" / "checkpoint_1"), {"knn_top1": 40.0}, cfg),
        ResultRow("t1", "online", WRITER, 2.0, 20, str(kept), {"knn_top1": 45.0}, cfg),  # the first: num_to_keep deleted it
        ResultRow("t2", "online", WRITER, 1.0, 10, "s3://bucket/t2/checkpoint_1", {"knn_top1": 41.0}, cfg)])
    path = write_results(tmp_path, rows, replace_writer=WRITER)
    table = pd.read_parquet(path)
    assert table["checkpoint_kept"].tolist() == [False, True, True]
    assert last_kept_checkpoints(rows) == {"t1": str(kept), "t2": "s3://bucket/t2/checkpoint_1"}
    md = make_report(tmp_path).markdown.read_text()
    assert f"| t1 | 2 | `{kept}` |" in md and "checkpoint_1`" not in md.split("## Checkpoints")[1].split("| t2")[0]
