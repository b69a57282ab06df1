"""Cluster ergonomics on a real `ray start` head: the README's `ray job submit` command, a local
sweep while a head runs, and one-line errors when joining a cluster.

The head is started here on free ports (``ray start --head --block``) from this environment, as
the README says (Ray started from the project's environment), and only that head is stopped:
SIGTERM to the blocking ``ray start`` process makes it stop the processes it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from attmask_ray.ray_session import free_ports

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# what the README's cluster section runs: the smoke sweep, shrunk to one epoch on the 300-image split
SMOKE = "sweeps/smoke.py:optim.epochs=1,optim.warmup_epochs=1"


@dataclass(frozen=True)
class Head:
    gcs: str  # host:port, for --address
    dashboard: str  # http://host:port, for ray job submit
    env: dict[str, str]  # the environment a user has after `source .venv/bin/activate`


def _user_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
    env.update(RAY_AUTH_MODE="disabled", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return env


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory):
    """A 4-CPU head of our own, started with `ray start --head --block`; stopped (only it) at the end."""
    gcs, dash, client, agent = free_ports(4)
    env = {**_user_env(), "RAY_DASHBOARD_STARTUP_TIMEOUT_S": "300"}  # a busy 2-core machine needs > 60 s
    log_path = tmp_path_factory.mktemp("head") / "ray_start.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                             f"--port={gcs}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                             f"--dashboard-port={dash}", f"--ray-client-server-port={client}",
                             f"--dashboard-agent-listen-port={agent}", "--num-cpus=4", "--num-gpus=0",
                             "--disable-usage-stats"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    head = Head(f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dash}", env)
    try:
        from ray.job_submission import JobSubmissionClient

        # ready = a first job is accepted (the node's job agent is up, which can take a while after
        # the job server answers) and its `python` is this environment
        deadline = time.time() + 240
        job_id = None
        while job_id is None:
            assert proc.poll() is None, f"ray start exited: {log_path.read_text()[-3000:]}"
            try:
                job_id = JobSubmissionClient(head.dashboard).submit_job(entrypoint="python -c 'import attmask_ray, ffcv'")
            except Exception:  # noqa: BLE001 - job server or agent not up yet
                assert time.time() < deadline, f"the head's job server did not come up: {log_path.read_text()[-3000:]}"
                time.sleep(2)
        client = JobSubmissionClient(head.dashboard)
        while (status := str(client.get_job_status(job_id))) not in ("SUCCEEDED", "FAILED", "STOPPED"):
            assert time.time() < deadline, f"the first job did not finish: {status}"
            time.sleep(1)
        assert status == "SUCCEEDED", client.get_job_logs(job_id)[-3000:]
        yield head
    finally:
        proc.terminate()  # the blocking `ray start` stops the processes it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


@pytest.fixture
def project(embedded_root: Path, tmp_path: Path) -> Path:
    """A checkout-like folder whose data/fashion_mnist_2k is the 300-image split (the smoke's data path)."""
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "fashion_mnist_2k").symlink_to(embedded_root)
    return root


@pytest.mark.timeout(600)
def test_ray_job_submit_as_the_readme_says(ray_head: Head, project: Path, tmp_path: Path):
    storage = tmp_path / "ray_results"
    # README: ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m attmask_ray.sweep
    #         sweeps/smoke.py --address auto --data-root "$PWD" --storage "$PWD/ray_results"
    cmd = [str(BIN / "ray"), "job", "submit", "--address", ray_head.dashboard, "--working-dir", ".", "--",
           "python", "-m", "attmask_ray.sweep", SMOKE, "--address", "auto", "--data-root", str(project),
           "--storage", str(storage)]
    job = subprocess.run(cmd, cwd=REPO, env=ray_head.env, capture_output=True, text=True, timeout=540)
    out = job.stdout + job.stderr
    assert job.returncode == 0, out[-4000:]
    assert "succeeded" in out, out[-2000:]
    assert "on the cluster at auto" in out, out[-2000:]
    exp = storage / "smoke"
    table = pd.read_parquet(exp / "results.parquet")
    online = table[table["source"] == "online"]
    assert sorted(online["config/mask.strategy"].unique()) == ["attmask_high", "block"]
    assert online["knn_top1"].between(0, 100).all()
    assert (exp / "report" / "report.md").is_file()


@pytest.mark.timeout(400)
def test_local_sweep_while_a_head_runs_starts_its_own_cluster(ray_head: Head, project: Path, tmp_path: Path):
    # the head is the recorded cluster (/tmp/ray/ray_current_cluster): a sweep without --address
    # must neither attach to it nor crash on num_cpus
    cmd = [sys.executable, "-m", "attmask_ray.sweep", SMOKE, "--num-samples", "1", "--data-root", str(project),
           "--storage", str(tmp_path / "ray_results"), "--no-dashboard", "--no-report"]
    run = subprocess.run(cmd, cwd=REPO, env=ray_head.env, capture_output=True, text=True, timeout=360)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "on a local cluster started here" in out, out[-2000:]
    # Ray's own chatter stays in Ray's log files
    for noise in ("Reporting training result", "PlacementGroupCleaner", "Checkpoint successfully created"):
        assert noise not in out, out[-3000:]
    assert (tmp_path / "ray_results" / "smoke" / "results.parquet").is_file()


@pytest.mark.timeout(200)
def test_joining_a_cluster_too_small_for_one_trial_is_one_line(ray_head: Head, project: Path, tmp_path: Path):
    cmd = [sys.executable, "-m", "attmask_ray.sweep", f"{SMOKE},scaling.num_workers=8", "--address", ray_head.gcs,
           "--data-root", str(project), "--storage", str(tmp_path / "ray_results"), "--no-report"]
    run = subprocess.run(cmd, cwd=REPO, env=ray_head.env, capture_output=True, text=True, timeout=150)
    out = run.stdout + run.stderr
    assert run.returncode == 2, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "one trial needs 9 CPUs" in errors[0] and "the cluster has 4 CPUs" in errors[0], out
