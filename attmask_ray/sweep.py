"""``python -m attmask_ray.sweep SWEEP.py[:preset,key=value,...]`` — the main entry point.

Validates everything first (sweep file, config, search space, shards, resources), then
starts or joins a Ray cluster and runs Tune + Optuna, each trial a Ray Train
TorchTrainer. Results go to ``<storage>/<name>/results.parquet`` and a report.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from attmask_ray.config import ConfigError, flatten, is_plain_name
from attmask_ray.output_paths import output_problem
from attmask_ray.ray_session import free_port, local_runtime_env, unreachable
from attmask_ray.resources import TrialNeed, check_local, concurrency, local_cluster_cpus, local_gpu_count
from attmask_ray.sweep_file import Sweep, base_dict, describe_space, load_sweep, with_data_root

console = Console()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m attmask_ray.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="sweep file with optional presets/overrides, e.g. sweeps/ablation.py:embedded,optim.epochs=5")
    p.add_argument("--dry-run", action="store_true", help="validate and print the resolved config and search space; start nothing")
    p.add_argument("--address", default=None, help="join a running Ray cluster (e.g. auto, ray://host:10001); default: start a local one")
    p.add_argument("--data-root", default=None, help="resolve the config's relative data paths against this folder "
                   "instead of the working directory (a ray job submit job runs in an uploaded copy without data/)")
    p.add_argument("--storage", default="ray_results", help="experiment storage: local path, NFS path or cloud URI (s3://, gs://)")
    p.add_argument("--name", default=None, help="experiment name (default: the config's name); keep it stable to resume")
    p.add_argument("--resume", action="store_true", help="restore the same sweep with Tuner.restore; finished trials are not rerun")
    p.add_argument("--num-samples", type=int, default=None, help="override TuneSpec.num_samples")
    p.add_argument("--num-cpus", type=int, default=None, help="logical CPUs of the local cluster (default: cores + one per trial driver)")
    p.add_argument("--no-dashboard", action="store_true", help="local cluster without the dashboard (faster start)")
    p.add_argument("--ray-logs", action="store_true", help="stream Ray's own worker/actor output to this console "
                   "(default: it stays in Ray's log files, /tmp/ray/session_latest/logs; progress lines and trial errors are printed either way)")
    p.add_argument("--no-report", action="store_true", help="do not build report.md and plots at the end")
    p.add_argument("--verify-data", action="store_true", help="before starting anything, check every data shard against "
                   "the SHA-256 recorded at conversion (reads all shards once; same as python -m data_prep.verify)")
    p.add_argument("--trial-timeout", type=float, default=None, help="stop each trial after this many seconds")
    return p.parse_args(argv)


def storage_uri(storage: str) -> str:
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def results_dir(storage: str, name: str) -> Path:
    """Where results.parquet, the results journal and the report go: the experiment folder, or
    ``ray_results_local/<name>`` on the driver when the storage is a cloud URI."""
    return Path(storage) / name if "://" not in storage else (Path("ray_results_local") / name).resolve()


def check_output(args: argparse.Namespace, sweep: Sweep) -> None:
    """--name is a plain folder name, a local --storage can be written, and --resume finds the
    experiment to restore: all before any cluster starts."""
    if args.name is not None and not is_plain_name(args.name):
        raise ConfigError(f"--name {args.name!r} must use letters, digits, '_', '-', '.' only (it is a folder under --storage)")
    if "://" not in args.storage:
        problem = output_problem(args.storage, kind="dir")
        if problem:
            raise ConfigError(f"--storage {args.storage}: {problem}; pass a writable folder (or an s3:// / gs:// URI)")
    if args.resume and not args.dry_run:
        from ray import tune

        where = os.path.join(storage_uri(args.storage), args.name or sweep.config.name)
        if not tune.Tuner.can_restore(where):
            raise ConfigError(f"nothing to resume at {where}; run without --resume first (same --storage and --name)")


def check_data(sweep: Sweep) -> None:
    """The shards exist and are whole, and the online k-NN's k values fit in its bank."""
    from attmask_ray.data import DataError, check_dataset
    from attmask_ray.eval.features import EvalError
    from attmask_ray.eval.knn import check_bank

    d = sweep.config.data
    try:
        train = check_dataset(d.train_path, min_resolution=d.global_crop_size)
        check_dataset(d.val_path, min_resolution=d.global_crop_size)
        bank = check_dataset(d.knn_train_path, min_resolution=d.global_crop_size) if d.knn_train_path else train
        check_bank(sweep.config.eval.knn_k, bank.num_samples, d.knn_train_path or d.train_path)
    except (DataError, EvalError) as exc:
        raise ConfigError(str(exc)) from None


def verify_data(sweep: Sweep) -> None:
    """``--verify-data``: every shard of data.train_path/val_path/knn_train_path matches its checksum."""
    from attmask_ray.data import DataError
    from data_prep.verify import require_verified

    d = sweep.config.data
    for path in dict.fromkeys(p for p in (d.train_path, d.val_path, d.knn_train_path) if p):
        try:
            console.print(require_verified(path), soft_wrap=True)
        except DataError as exc:
            raise ConfigError(str(exc)) from None


def print_dry_run(sweep: Sweep, num_samples: int) -> None:
    table = Table(title=f"{sweep.path} — resolved base config", show_lines=False)
    table.add_column("key", style="cyan")
    table.add_column("value")
    for k, v in flatten(sweep.config).items():
        table.add_row(k, str(v))
    console.print(table)
    space = Table(title="search space (Optuna define-by-run)")
    space.add_column("knob", style="magenta")
    space.add_column("values")
    for k, v in describe_space(sweep).items():
        space.add_row(k, v)
    console.print(space)
    s = sweep.spec
    console.print(f"metric={s.metric} mode={s.mode} samples={num_samples} sampler={s.sampler} "
                  f"scheduler={s.scheduler} max_concurrent={s.max_concurrent} eval_tasks={list(s.eval_tasks)}"
                  + (f" objective=mean over {s.objective_over}" if s.objective_over else ""))


def build_tuner(sweep: Sweep, args: argparse.Namespace, storage: str, name: str, num_samples: int, conc: int) -> Any:
    import optuna
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    from attmask_ray.results_journal import journal_path
    from attmask_ray.tune_plugins import JournalCallback, ProgressCallback, SparseMetricOptunaSearch, attach_journal

    spec = sweep.spec
    trainable = tune.with_resources(
        tune.with_parameters(attmask_trial, base=base_dict(sweep), storage=f"{storage}/{name}",
                             eval_tasks=list(spec.eval_tasks),
                             objective_over={k: list(v) for k, v in spec.objective_over.items()}),
        {"CPU": 1})
    journal = str(journal_path(results_dir(storage, name)))  # every result, kept across Tuner.restore
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
    searcher = ConcurrencyLimiter(SparseMetricOptunaSearch(space=sweep.space, metric=spec.metric, mode=spec.mode,
                                                           sampler=sampler,
                                                           points_to_evaluate=[dict(p) for p in spec.points_to_evaluate]
                                                           or None),
                                  max_concurrent=conc) if sweep.space else None
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


def attmask_trial(params: dict[str, Any], base: dict[str, Any], storage: str, eval_tasks: list[str],
                  objective_over: dict[str, list[Any]] | None = None) -> None:
    from attmask_ray.train.trial import run_trial

    run_trial({**params, "_base": base, "_storage": storage, "_eval_tasks": eval_tasks,
               "_objective_over": objective_over or {}})


def best_table(results: Any, sweep: Sweep) -> Table:
    """The 10 best trials with their knob values, metric, epoch and status."""
    spec = sweep.spec
    table = Table(title=f"best trials by {spec.metric} ({spec.mode})")
    knobs = list(describe_space(sweep))
    for col in ["trial", *knobs, spec.metric, "epoch", "status"]:
        table.add_column(col)
    for value, res in ranked(results, spec)[:10]:
        cfg = res.config or {}
        table.add_row(short_trial_id(res), *[str(cfg.get(k, "")) for k in knobs],
                      f"{value:.2f}" if isinstance(value, (int, float)) else "-",
                      f"{(res.metrics or {}).get('epoch', 0):.1f}", "error" if res.error else "ok")
    return table


def ranked(results: Any, spec: Any) -> list[tuple[Any, Any]]:
    """(metric value, result) of every trial, best first; trials without the metric last."""
    rows = [((res.metrics or {}).get(spec.metric), res) for res in results]
    sign = -1 if spec.mode == "max" else 1
    rows.sort(key=lambda r: (r[0] is None, sign * (r[0] or 0)))
    return rows


def checkpoint_lines(results: Any, spec: Any, checkpoints: dict[str, str]) -> list[str]:
    """One line per trial of the best-trials order: its latest checkpoint still on disk (full path,
    on its own line so that it can be copied into evaluate/export/viz)."""
    lines = []
    for _, res in ranked(results, spec)[:10]:
        folder = Path(res.path).name if res.path else ""
        lines.append(f"  {short_trial_id(res)}: {checkpoints.get(folder, '- (none kept)')}")
    return lines


def short_trial_id(res: Any) -> str:
    """The trial's Tune id (``attmask_trial_<id>_<n>_<knobs>_<time>`` -> ``<id>``), as in the progress lines."""
    folder = Path(res.path).name if res.path else "?"
    return folder.split("_")[2] if folder.startswith("attmask_trial_") and folder.count("_") >= 2 else folder


def connect_error(address: str, exc: BaseException) -> str:
    """One line for a failed ``ray.init(address=...)``: Ray's message with its line breaks
    folded (a version mismatch spans several lines) and what to do about it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > 400:
        text = text[:397] + "..."
    if "version mismatch" in text.lower():
        fix = ("start Ray on every node from the project's environment (bash scripts/setup.sh, then "
               "source .venv/bin/activate && ray start ...) and run the sweep from that same environment")
    else:
        fix = "check the address (ray status on the head) or drop --address to run on a local cluster"
    return f"cannot connect to the Ray cluster at {address!r}: {text}; {fix}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        for flag, value in (("--num-samples", args.num_samples), ("--num-cpus", args.num_cpus)):
            if value is not None and value < 1:
                raise ConfigError(f"{flag} must be >= 1, got {value}")
        sweep = load_sweep(args.target)
        if args.data_root is not None:
            sweep = with_data_root(sweep, args.data_root)
        spec = sweep.spec
        # a grid runs every point at least once
        num_samples = args.num_samples if args.num_samples is not None else (max(spec.num_samples, spec.grid_size) if spec.sampler == "grid"
                                           else spec.num_samples)
        need = TrialNeed.of(sweep.config)
        check_output(args, sweep)
        if args.dry_run:
            print_dry_run(sweep, num_samples)
            if args.address is None:
                try:
                    check_local(sweep.config)
                except ConfigError as exc:
                    console.print(f"[yellow]note:[/] cannot run on this machine without --address: {exc}", soft_wrap=True)
            return 0
        if args.address is None:
            check_local(sweep.config)
            cpus = args.num_cpus if args.num_cpus is not None else local_cluster_cpus(need, spec.max_concurrent)
            concurrency(need, cpus, local_gpu_count(), spec.max_concurrent)  # refuses a trial that can never fit
        check_data(sweep)
        if args.verify_data:
            verify_data(sweep)
    except (ConfigError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 2
    return run(sweep, args, need, num_samples)


def run(sweep: Sweep, args: argparse.Namespace, need: TrialNeed, num_samples: int) -> int:
    import ray

    from attmask_ray.results_journal import journal_path, read_journal
    from attmask_ray.sweep_results import last_kept_checkpoints, result_rows, write_sweep_results

    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")  # k-NN is reported every eval_every epochs
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    storage = storage_uri(args.storage)
    name = args.name or sweep.config.name
    started_here = False
    if not ray.is_initialized():
        if args.address:
            if problem := unreachable(args.address):
                console.print(f"[bold red]error:[/] cannot connect to the Ray cluster: {problem}", soft_wrap=True)
                return 2
            try:
                ray.init(address=args.address, log_to_driver=args.ray_logs)
            except Exception as exc:  # noqa: BLE001 - any connection failure is one line for the user
                console.print(f"[bold red]error:[/] {connect_error(args.address, exc)}", soft_wrap=True)
                return 2
        else:
            # address="local": always a new cluster of our own, never one recorded in
            # /tmp/ray/ray_current_cluster or named by RAY_ADDRESS (those take no num_cpus)
            cpus = args.num_cpus if args.num_cpus is not None else local_cluster_cpus(need, sweep.spec.max_concurrent)
            dashboard_port = None if args.no_dashboard else free_port()
            ray.init(address="local", num_cpus=cpus, include_dashboard=dashboard_port is not None,
                     dashboard_port=dashboard_port, log_to_driver=args.ray_logs,
                     runtime_env=local_runtime_env(dashboard_port))
            started_here = True
    try:
        res = ray.cluster_resources()
        conc = concurrency(need, res.get("CPU", 0), res.get("GPU", 0), sweep.spec.max_concurrent)
        where = (f"a local cluster started here ({res.get('CPU', 0):g} CPUs)" if started_here
                 else f"the cluster at {args.address or 'this Ray session'} ({res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs)")
        console.print(f"[bold]sweep[/] {sweep.path} -> {storage}/{name}: {num_samples} trials, "
                      f"{conc} at a time, each {need.cpus:g} CPU / {need.gpus:g} GPU, on {where}", soft_wrap=True)
        tuner = build_tuner(sweep, args, storage, name, num_samples, conc)
        results = tuner.fit()
    except ConfigError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 2
    finally:
        if started_here:
            ray.shutdown()
    exp_dir = results_dir(storage, name)
    rows = result_rows(results, base_dict(sweep), read_journal(journal_path(exp_dir)))
    path = write_sweep_results(exp_dir, rows)
    console.print(best_table(results, sweep))
    console.print("latest kept checkpoint per trial:")
    for line in checkpoint_lines(results, sweep.spec, last_kept_checkpoints(rows)):
        console.print(line, soft_wrap=True, highlight=False)
    console.print(f"results: {path}")
    if not args.no_report:
        try:
            from attmask_ray.report import build_report

            console.print(f"report: {build_report(exp_dir)}")
        except Exception as exc:  # noqa: BLE001 - the results are already safe on disk
            console.print(f"[yellow]report not built:[/] {exc}")
    errors = [r for r in results if r.error]
    for r in errors:
        console.print(f"[red]trial {Path(r.path).name} failed:[/] {str(r.error).strip().splitlines()[-1]}", soft_wrap=True)
    return 1 if errors and len(errors) == len(list(results)) else 0


if __name__ == "__main__":
    sys.exit(main())
