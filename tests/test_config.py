"""The one dotted-override parser: sweep targets, evaluate --set and the presets share it."""

from __future__ import annotations

import pytest

from attmask_ray.config import (ConfigError, ExperimentConfig, apply_overrides, assign_dotted, parse_overrides,
                                split_parts)


def test_split_parts_keeps_commas_inside_brackets():
    assert split_parts(" embedded, mask.pred_ratio=(0.1, 0.3),eval.knn_k=[10,20] ,") == [
        "embedded", "mask.pred_ratio=(0.1, 0.3)", "eval.knn_k=[10,20]"]
    assert split_parts("") == []


def test_parse_overrides_values_and_errors():
    assert parse_overrides("mask.strategy=block,optim.lr=1e-3,mask.attn_layer=none,eval.knn_k=(20,)") == {
        "mask.strategy": "block", "optim.lr": 1e-3, "mask.attn_layer": None, "eval.knn_k": (20,)}
    with pytest.raises(ConfigError, match="must look like key=value"):
        parse_overrides("mask.strategy")


def test_assign_dotted_builds_sections_as_apply_overrides_and_presets_need():
    data = assign_dotted({"name": "x"}, {"model.depth": 4, "data.blur_sigma": (0.1, 0.5), "seed": 3})
    assert data == {"name": "x", "model": {"depth": 4}, "data": {"blur_sigma": [0.1, 0.5]}, "seed": 3}
    cfg = apply_overrides(ExperimentConfig(), {"model.depth": 4, "data.blur_sigma": (0.1, 0.5)})
    assert cfg.model.depth == 4 and cfg.data.blur_sigma == (0.1, 0.5)
    with pytest.raises(ConfigError, match="did you mean 'mask.strategy'"):
        apply_overrides(ExperimentConfig(), {"mask.stratgy": "block"})
