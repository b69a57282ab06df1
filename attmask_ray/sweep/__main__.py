"""``python -m attmask_ray.sweep SWEEP.py[:preset,key=value,...] [flags]`` (attmask_ray.sweep.cli)."""

import sys

from attmask_ray.sweep.cli import main

sys.exit(main())
