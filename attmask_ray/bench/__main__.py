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
        return 2
    module = importlib.import_module(f"attmask_ray.bench.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
