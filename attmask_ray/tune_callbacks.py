"""Tune callbacks for the sweep driver's log: one rich progress line per trial report."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback
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
