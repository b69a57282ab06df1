"""Benchmarks (not tests): ``python -m attmask_ray.bench {step,data,knn} [flags]`` prints figures."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {"step": "training step time and split", "data": "loader images/s vs baselines", "knn": "k-NN time and memory"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m attmask_ray.bench {" + ",".join(COMMANDS) + "} [flags]")
        for name, what in COMMANDS.items():
            print(f"  {name:6s} {what}")
        if argv:
            print(f"error: unknown benchmark {argv[0]!r}; choose from {', '.join(COMMANDS)}")
        return 2
    module = importlib.import_module(f"attmask_ray.bench.{argv[0]}")
    from attmask_ray.bench.flags import BenchError
    from attmask_ray.config import ConfigError
    from attmask_ray.data import DataError

    try:
        return int(module.main(argv[1:]) or 0)
    except (BenchError, ConfigError, DataError) as exc:  # a flag that cannot work: one line
        print(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
