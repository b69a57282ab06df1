"""``python -m attmask_ray.viz {masks,heads} ...`` (see attmask_ray.viz.cli)."""

import sys

from attmask_ray.viz.cli import main

sys.exit(main())
