"""Typed, frozen experiment configuration with paper defaults (SPEC §5).

Every value carries a comment saying where it comes from. Configs are built from
nested dicts with :func:`from_dict` (unknown keys raise with a did-you-mean) and changed
with dotted overrides, e.g. ``apply_overrides(cfg, {"mask.strategy": "block"})``.
Validation happens in ``__post_init__`` so a bad value fails before any cluster starts.
"""

from attmask_ray.config.building import (apply_overrides, assign_dotted, flatten, from_dict, parse_override,
                                         parse_overrides, parse_value, split_parts, to_dict)
from attmask_ray.config.checks import ConfigError, _check, _unit_range, is_plain_name
from attmask_ray.config.sections import (DataConfig, EvalConfig, ExperimentConfig, LossConfig, MaskConfig, ModelConfig,
                                         OptimConfig, ScalingConfig)

__all__ = ["ConfigError", "DataConfig", "EvalConfig", "ExperimentConfig", "LossConfig", "MaskConfig", "ModelConfig",
           "OptimConfig", "ScalingConfig", "_check", "_unit_range", "apply_overrides", "assign_dotted", "flatten",
           "from_dict", "is_plain_name", "parse_override", "parse_overrides", "parse_value", "split_parts", "to_dict"]
