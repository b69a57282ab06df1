"""Tune plug-ins of the sweep driver: a rich progress line per report, the results journal,
and the Optuna searcher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.search.optuna import OptunaSearch
from rich.console import Console

from attmask_ray.monitoring import progress_line
from attmask_ray.sweep.journal import append_record, journal_record


class ProgressCallback(Callback):
    """Prints ``progress_line`` per result; holds no console so Tune can pickle it."""

    @staticmethod
    def _console() -> Console:
        return Console()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._console().print(progress_line(trial.trial_id, result), soft_wrap=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._console().print(f"[red]trial {trial.trial_id} errored[/] (see {trial.local_path or trial.path})")


class JournalCallback(Callback):
    """Appends every trial result to the experiment's results journal (durable before Tune goes on).

    Holds only the journal path (a str), so Tune can pickle it into its experiment state.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        trial_id = Path(trial.path).name if trial.path else str(trial.trial_id)
        append_record(self.path, journal_record(trial_id, trial.config or {}, result))


def attach_journal(tuner: Any, path: str) -> None:
    """Make a restored Tuner journal to ``path``: replaces the JournalCallback it was pickled with
    (or adds one to a sweep started before journals existed). No-op for a Ray Client tuner."""
    internal = getattr(tuner, "_local_tuner", None)
    run_config = internal.get_run_config() if internal is not None else None
    if run_config is None:
        return
    kept = [c for c in (run_config.callbacks or []) if not isinstance(c, JournalCallback)]
    run_config.callbacks = [*kept, JournalCallback(path)]


class SparseMetricOptunaSearch(OptunaSearch):
    """OptunaSearch that skips intermediate results which do not carry the metric.

    k-NN is evaluated every ``eval.eval_every`` epochs, while checkpoints and epoch ends
    report more often; Optuna only needs (and stock OptunaSearch crashes without) the
    results that carry the metric.
    """

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        if all(m in result for m in metrics):
            super().on_trial_result(trial_id, result)
