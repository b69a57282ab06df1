"""The local Ray cluster a sweep starts: isolated from other clusters on the machine, quiet.

Isolation. Ray Train V2 starts a ``PlacementGroupCleaner`` actor per trial that asks the Ray
State API whether the trial's controller is alive, and removes the trial's placement group
(killing its workers) when the answer is "not found". Inside a worker the State API address is
resolved from ``RAY_API_SERVER_ADDRESS`` / ``RAY_ADDRESS`` or else the *latest* cluster
recorded on the machine (``/tmp/ray/ray_current_cluster``): a ``ray start`` or a second sweep
started later on the same machine becomes that cluster, and the cleaner then kills our
running trials. :func:`local_runtime_env` pins the address to this cluster's own dashboard (or,
without a dashboard, to an address that refuses connections, so the cleaner only retries).

Quiet. :func:`quiet_ray_workers` runs in every worker process (``worker_process_setup_hook``)
and lowers Ray Train's per-report / per-checkpoint / worker-group INFO lines and the cleaner's
retry warnings; the sweep driver also keeps Ray's worker output in Ray's log files unless
``--ray-logs`` is given. Errors still reach the driver through Tune.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

# Ray Train INFO chatter that says nothing a user acts on (one line per report and checkpoint)
_INFO_LOGGERS = (
    "ray.train.v2._internal.execution.storage",
    "ray.train._internal.storage",
    "ray.train.torch.config",
    "ray.train.v2._internal.execution.worker_group.worker_group",
    "ray.train.v2._internal.execution.scaling_policy.scaling_policy",
    "ray.train.v2._internal.execution.controller.controller",
)
_CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"
REFUSED_API = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused at once


def quiet_ray_workers() -> None:
    """``worker_process_setup_hook``: Ray Train's INFO chatter to WARNING, the placement-group
    cleaner's "State API may be temporarily unavailable" retries to ERROR."""
    for name in _INFO_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger(_CLEANER_LOGGER).setLevel(logging.ERROR)
    try:  # this module names its logger by file path
        from ray.train.v2._internal.execution import context

        logging.getLogger(context.__file__).setLevel(logging.WARNING)
    except ImportError:
        pass


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (all held open until all are chosen)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for the local cluster's dashboard)."""
    return free_ports(1)[0]


def local_runtime_env(dashboard_port: int | None) -> dict[str, Any]:
    """The job runtime_env of a local sweep cluster: Train V2, the State API pinned to this
    cluster's dashboard (``dashboard_port``; None = no dashboard), quiet worker logging."""
    api = f"http://127.0.0.1:{dashboard_port}" if dashboard_port else REFUSED_API
    return {"env_vars": {"RAY_TRAIN_V2_ENABLED": "1", "RAY_API_SERVER_ADDRESS": api},
            "worker_process_setup_hook": "attmask_ray.ray_session.quiet_ray_workers"}


RECORDED_CLUSTER = Path("/tmp/ray/ray_current_cluster")  # where `ray start` records the latest head


def unreachable(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at a Ray ``--address`` (checked with one TCP connect, where Ray
    itself would retry for minutes), or None. ``auto`` resolves as Ray does: ``RAY_ADDRESS``,
    else the cluster recorded by the latest ``ray start``. Other forms are left to Ray."""
    target = address
    if address == "auto":
        target = os.environ.get("RAY_ADDRESS", "")
        if not target and RECORDED_CLUSTER.is_file():
            target = (RECORDED_CLUSTER.read_text().split() or [""])[0]
        if not target:
            return ("--address auto found no cluster (RAY_ADDRESS is unset and no `ray start` cluster is recorded "
                    f"in {RECORDED_CLUSTER}); start one with ray start --head, or drop --address for a local one")
    if target.startswith("ray://"):
        target = target[len("ray://"):]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or "/" in target:
        return None
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        via = f" (from {address})" if target != address else ""
        return f"nothing answers at {target}{via}: {why}; check the address (ray status on the head) or drop --address"
