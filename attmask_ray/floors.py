"""``python -m attmask_ray.floors SWEEP.py[:...] [--out EXPERIMENT_DIR]``: the command's entry point
(the code is :mod:`attmask_ray.sweep.floors`)."""

import sys

from attmask_ray.sweep.floors import main

if __name__ == "__main__":
    sys.exit(main())
