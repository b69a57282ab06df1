"""``python -m attmask_ray.sweep SWEEP.py[:preset,key=value,...]`` — the main entry point.

Validates everything first (sweep file, config, search space, shards, resources), then
starts or joins a Ray cluster and runs Tune + Optuna, each trial a Ray Train
TorchTrainer. Results go to ``<storage>/<name>/results.parquet`` and a report.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from attmask_ray.config import ConfigError, flatten, is_plain_name
from attmask_ray.devices import local_gpu_count
from attmask_ray.output_paths import output_problem
from attmask_ray.ray_session import free_port, local_runtime_env, unreachable
from attmask_ray.sweep.file import Sweep, base_dict, load_sweep, with_data_root
from attmask_ray.sweep.resources import TrialNeed, check_local, concurrency, local_cluster_cpus

console = Console()
RAY_LOGS_HELP = ("stream Ray's own worker/actor output to this console (default: it stays in Ray's log files, "
                 "/tmp/ray/session_latest/logs; progress lines and trial errors are printed either way)")


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
    p.add_argument("--ray-logs", action="store_true", help=RAY_LOGS_HELP)
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
    """The shards exist and are whole, the online k-NN's k values fit in its bank, and the splits of
    the ``in9`` and ``retrieval`` evaluation tasks exist."""
    from attmask_ray.data import DataError, check_dataset
    from attmask_ray.eval.errors import EvalError
    from attmask_ray.eval.knn import check_bank

    d = sweep.config.data
    try:
        train = check_dataset(d.train_path, min_resolution=d.global_crop_size)
        check_dataset(d.val_path, min_resolution=d.global_crop_size)
        bank = check_dataset(d.knn_train_path, min_resolution=d.global_crop_size) if d.knn_train_path else train
        check_bank(sweep.config.eval.knn_k, bank.num_samples, d.knn_train_path or d.train_path)
        if "in9" in sweep.spec.eval_tasks:  # their own splits, read after training: check them now
            from attmask_ray.eval.in9 import check_in9_root

            check_in9_root(sweep.config.eval.in9_root)
        if "retrieval" in sweep.spec.eval_tasks:
            from attmask_ray.eval.retrieval import check_retrieval

            check_retrieval(sweep.config.eval, check_dataset(d.val_path).num_samples)
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
    for k, v in sweep.describe_space().items():
        space.add_row(k, v)
    console.print(space)
    s = sweep.spec
    console.print(f"metric={s.metric} mode={s.mode} samples={num_samples} sampler={s.sampler} "
                  f"scheduler={s.scheduler} max_concurrent={s.max_concurrent} eval_tasks={list(s.eval_tasks)}"
                  + (f" objective=mean over {s.objective_over}" if s.objective_over else ""))


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

    from attmask_ray.results import write_results
    from attmask_ray.sweep.journal import journal_path, read_journal
    from attmask_ray.sweep.results import WRITER, last_kept_checkpoints, mark_kept, result_rows
    from attmask_ray.sweep.summary import best_table, checkpoint_lines
    from attmask_ray.sweep.tuner import build_tuner

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
        journal = str(journal_path(results_dir(storage, name)))  # every result, kept across Tuner.restore
        tuner = build_tuner(sweep, args, storage, name, num_samples, conc, journal)
        results = tuner.fit()
    except ConfigError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 2
    finally:
        if started_here:
            ray.shutdown()
    exp_dir = results_dir(storage, name)
    rows = mark_kept(result_rows(results, base_dict(sweep), read_journal(journal_path(exp_dir))))
    path = write_results(exp_dir, rows, replace_writer=WRITER)  # keeps the rows of evaluate and floors
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
