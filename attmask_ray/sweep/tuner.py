"""The Tuner of a sweep: the trainable (:func:`~attmask_ray.sweep.trial.attmask_trial` with the
sweep's :class:`~attmask_ray.sweep.trial.TrialSetup`), Optuna as searcher, ASHA if asked, the
progress and journal callbacks; or the restored Tuner of ``--resume``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from attmask_ray.config import ConfigError
from attmask_ray.sweep.file import Sweep, base_dict
from attmask_ray.sweep.trial import TrialSetup, attmask_trial


def build_tuner(sweep: Sweep, args: argparse.Namespace, storage: str, name: str, num_samples: int, conc: int,
                journal: str) -> Any:
    """A new (or, with ``args.resume``, restored) Tuner; every result is appended to ``journal``."""
    import optuna
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    from attmask_ray.sweep.plugins import JournalCallback, ProgressCallback, SparseMetricOptunaSearch, attach_journal

    spec = sweep.spec
    setup = TrialSetup(base=base_dict(sweep), storage=f"{storage}/{name}", eval_tasks=tuple(spec.eval_tasks),
                       objective_over={k: list(v) for k, v in spec.objective_over.items()})
    trainable = tune.with_resources(tune.with_parameters(attmask_trial, setup=setup), {"CPU": 1})
    run_config = tune.RunConfig(name=name, storage_path=storage, callbacks=[ProgressCallback(), JournalCallback(journal)],
                                verbose=0, stop={"time_total_s": args.trial_timeout} if args.trial_timeout else None)
    if args.resume:
        if not tune.Tuner.can_restore(os.path.join(storage, name)):
            raise ConfigError(f"nothing to resume at {storage}/{name}; run without --resume first (same --storage and --name)")
        tuner = tune.Tuner.restore(os.path.join(storage, name), trainable=trainable, resume_unfinished=True,
                                   resume_errored=False)
        attach_journal(tuner, journal)
        return tuner
    if spec.sampler == "grid":
        sampler = optuna.samplers.GridSampler(spec.grid, seed=spec.seed)
    elif spec.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=spec.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=spec.seed)
    space = sweep.space
    searcher = ConcurrencyLimiter(SparseMetricOptunaSearch(space=space, metric=spec.metric, mode=spec.mode,
                                                           sampler=sampler,
                                                           points_to_evaluate=[dict(p) for p in spec.points_to_evaluate]
                                                           or None),
                                  max_concurrent=conc) if space else None
    scheduler = None
    if spec.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        # stop_last_trials=False: a trial at max_t finishes by itself, so its final evaluation still runs
        scheduler = ASHAScheduler(time_attr="epoch", metric=spec.metric, mode=spec.mode, max_t=sweep.config.optim.epochs,
                                  stop_last_trials=False,
                                  grace_period=spec.grace_period, reduction_factor=spec.reduction_factor)
    tune_config = tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=num_samples,
                                  max_concurrent_trials=None if searcher else conc,
                                  metric=None if (searcher or scheduler) else spec.metric,
                                  mode=None if (searcher or scheduler) else spec.mode)
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)
