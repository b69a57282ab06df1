"""Training progress for humans and dashboards.

``ProgressExporter`` publishes step, images/s, loss, lr, masked ratio, k-NN and the
collapse diagnostics (teacher entropy, KL, embedding std, ...) as
``ray.util.metrics`` gauges (tagged by trial), which the Ray dashboard's Metrics view
shows once Prometheus/Grafana are set up (README, "Monitoring"). ``progress_line`` is the
one-line rich summary printed per report in the driver's log.
"""

from __future__ import annotations

from typing import Callable, Mapping

GAUGES = {
    "step": "global optimiser step",
    "images_per_s": "training images per second (all crops of an image count once)",
    "loss": "total training loss (mean over the last log window)",
    "lr": "learning rate",
    "masked_ratio": "fraction of global-view patches masked",
    "koleo": "KoLeo regulariser of the student [CLS] embeddings, summed over the global views (0 when off)",
    "knn_top1": "online k-NN top-1 accuracy (%)",
    "data_wait_frac": "fraction of step time spent waiting for data",
    # collapse / learning diagnostics (attmask_ray.diagnostics)
    "teacher_entropy": "teacher [CLS] target entropy / ln K (1: uniform collapse, 0: one-hot collapse)",
    "teacher_student_kl": "KL(teacher || student) of the [CLS] distributions (cross-view pairs)",
    "teacher_patch_entropy": "teacher patch target entropy / ln K on masked tokens",
    "teacher_student_patch_kl": "KL(teacher || student) of the patch distributions on masked tokens",
    "teacher_embed_std": "per-dim std of the L2-normalised teacher [CLS] embeddings (collapse: 0)",
    "embed_std_ratio": "teacher_embed_std * sqrt(d) (healthy ~ 1, collapse: 0)",
    "val_mean_cosine": "mean pairwise cosine of the val k-NN features (collapse: 1)",
    "fg_attention_share": "share of the teacher [CLS] attention on foreground val patches",
    "fg_patch_frac": "fraction of val patches that are foreground (chance level of fg_attention_share)",
}


class ProgressExporter:
    """Sets one Gauge per metric; a no-op outside a Ray worker or if metrics are unavailable."""

    def __init__(self, trial: str) -> None:
        self.tags = {"trial": trial}
        self.gauges: dict[str, object] = {}
        try:
            from ray.util.metrics import Gauge

            self.gauges = {name: Gauge(f"attmask_{name}", description=desc, tag_keys=("trial",))
                           for name, desc in GAUGES.items()}
        except Exception:  # noqa: BLE001 - monitoring must never break training
            self.gauges = {}

    def update(self, metrics: Mapping[str, float]) -> None:
        for name, gauge in self.gauges.items():
            if name in metrics:
                try:
                    gauge.set(float(metrics[name]), tags=self.tags)  # type: ignore[attr-defined]
                except Exception:  # noqa: BLE001
                    pass


_PROGRESS_FIELDS: tuple[tuple[str, Callable[[float], str]], ...] = (
    ("loss", lambda v: f"loss {v:.3f}"),
    ("lr", lambda v: f"lr {v:.1e}"),
    ("masked_ratio", lambda v: f"mask {v:.2f}"),
    ("images_per_s", lambda v: f"{v:.0f} img/s"),
    ("data_wait_frac", lambda v: f"data wait {v * 100:.1f}%"),
    ("teacher_entropy", lambda v: f"H/lnK {v:.2f}"),
    ("embed_std_ratio", lambda v: f"std√d {v:.2f}"),
    ("member_knn_top1", lambda v: f"knn (this run) {v:.2f}"),
    ("knn_top1", lambda v: f"[green]knn {v:.2f}[/]"),
)


def progress_line(trial: str, m: Mapping[str, float]) -> str:
    """e.g. ``[trial a1b2] ep 3 step 120 | loss 6.812 | lr 2.1e-04 | mask 0.27 | 410 img/s | H/lnK 0.83 |
    std√d 0.91 | knn 71.3`` (H/lnK: teacher [CLS] entropy / ln K; std√d: embed_std_ratio)."""
    member = f" {m['member']}" if isinstance(m.get("member"), str) else ""  # one run of a mean objective
    parts = [f"[bold cyan]{trial}[/]{member} ep {int(m.get('epoch', 0))} step {int(m.get('step', 0))}"]
    parts += [fmt(m[key]) for key, fmt in _PROGRESS_FIELDS if key in m]
    return " | ".join(parts)
