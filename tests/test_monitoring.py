"""Progress line and gauge exporter (no Ray cluster needed)."""

from __future__ import annotations

from attmask_ray.monitoring import ProgressExporter, progress_line


def test_progress_line_shows_present_metrics_in_order() -> None:
    line = progress_line("t1", {"epoch": 3.7, "step": 120, "loss": 6.8123, "lr": 2.1e-4, "masked_ratio": 0.27,
                                "images_per_s": 410.2, "data_wait_frac": 0.012, "knn_top1": 71.26})
    assert line == ("[bold cyan]t1[/] ep 3 step 120 | loss 6.812 | lr 2.1e-04 | mask 0.27 | 410 img/s | "
                    "data wait 1.2% | [green]knn 71.26[/]")
    assert progress_line("t2", {"step": 5, "knn_top1": 50.0}) == "[bold cyan]t2[/] ep 0 step 5 | [green]knn 50.00[/]"


def test_exporter_outside_a_ray_worker_never_raises() -> None:
    exporter = ProgressExporter("t1")
    exporter.update({"step": 1, "loss": float("nan"), "unknown": 3.0})


def test_progress_line_and_gauges_show_the_collapse_diagnostics() -> None:
    from attmask_ray.diagnostics import DIAGNOSTICS
    from attmask_ray.monitoring import GAUGES

    line = progress_line("t1", {"step": 7, "loss": 6.0, "teacher_entropy": 0.8312, "embed_std_ratio": 0.912,
                                "teacher_student_kl": 0.3})
    assert line == "[bold cyan]t1[/] ep 0 step 7 | loss 6.000 | H/lnK 0.83 | std√d 0.91"
    assert set(DIAGNOSTICS) <= set(GAUGES)


def test_progress_line_names_the_member_run_of_a_mean_objective():
    from attmask_ray.monitoring import progress_line

    line = progress_line("ab12", {"epoch": 2, "step": 10, "member": "block", "member_knn_top1": 55.1, "knn_top1": 54.0})
    assert line.startswith("[bold cyan]ab12[/] block ep 2 step 10")
    assert "knn (this run) 55.10" in line and "knn 54.00" in line
