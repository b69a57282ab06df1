"""Tune plug-ins of the sweep driver: a rich progress line per report, and the Optuna searcher."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback
from ray.tune.search.optuna import OptunaSearch
from rich.console import Console

from attmask_ray.monitoring import progress_line


class ProgressCallback(Callback):
    """Prints ``progress_line`` per result; holds no console so Tune can pickle it."""

    @staticmethod
    def _console() -> Console:
        return Console()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._console().print(progress_line(trial.trial_id, result), soft_wrap=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._console().print(f"[red]trial {trial.trial_id} errored[/] (see {trial.local_path or trial.path})")


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
