"""The local sweep cluster's runtime env: State API pinned to itself, quiet Ray Train loggers."""

from __future__ import annotations

import logging

from attmask_ray.ray_session import REFUSED_API, free_port, local_runtime_env, quiet_ray_workers


def test_state_api_is_pinned_to_this_clusters_dashboard():
    port = free_port()
    env = local_runtime_env(port)
    assert env["env_vars"]["RAY_API_SERVER_ADDRESS"] == f"http://127.0.0.1:{port}"
    assert env["env_vars"]["RAY_TRAIN_V2_ENABLED"] == "1"
    assert env["worker_process_setup_hook"] == "attmask_ray.ray_session.quiet_ray_workers"
    # without a dashboard: never the latest cluster recorded on the machine, an address that refuses
    assert local_runtime_env(None)["env_vars"]["RAY_API_SERVER_ADDRESS"] == REFUSED_API


def test_the_resolved_state_api_address_is_the_pinned_one(monkeypatch):
    from ray.dashboard.utils import get_address_for_submission_client

    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:41234")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")  # a recorded/other cluster must not win
    assert get_address_for_submission_client(None) == "http://127.0.0.1:41234"


def test_quiet_ray_workers_lowers_train_chatter_only():
    from ray.train.v2._internal.execution import context

    quiet_ray_workers()
    assert logging.getLogger(context.__file__).getEffectiveLevel() == logging.WARNING  # "Reporting training result"
    assert logging.getLogger("ray.train.v2._internal.execution.storage").getEffectiveLevel() == logging.WARNING
    cleaner = logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner")
    assert cleaner.getEffectiveLevel() == logging.ERROR
    assert logging.getLogger("ray.train.v2._internal.execution.controller.controller").isEnabledFor(logging.ERROR)


def test_unreachable_addresses_are_found_with_one_connect(tmp_path, monkeypatch):
    import socket

    from attmask_ray import ray_session

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_session, "RECORDED_CLUSTER", tmp_path / "ray_current_cluster")
    assert "found no cluster" in ray_session.unreachable("auto")
    (tmp_path / "ray_current_cluster").write_text("127.0.0.1:1\n")  # a dead recorded head
    assert "nothing answers at 127.0.0.1:1 (from auto)" in ray_session.unreachable("auto")
    with socket.socket() as server:  # something listening: reachable
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert ray_session.unreachable(f"127.0.0.1:{port}") is None
        assert ray_session.unreachable(f"ray://127.0.0.1:{port}") is None
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
        assert ray_session.unreachable("auto") is None
    assert ray_session.unreachable("local") is None  # left to Ray
