"""TuneSpec fields that shape a search: points_to_evaluate (first trials of a TPE/random search)."""

from __future__ import annotations

import pytest

from attmask_ray.sweep import cli as sweep_cli
from attmask_ray.config import ConfigError
from attmask_ray.sweep.spec import TuneSpec

SWEEP = '''"""points test sweep"""
from attmask_ray.config import ExperimentConfig
from attmask_ray.sweep.spec import TuneSpec

def get_config(arg=""):
    return ExperimentConfig()

def search_space(trial):
    trial.suggest_categorical("mask.strategy", ["block", "attmask_high"])
    trial.suggest_float("optim.lr", 1e-4, 1e-3, log=True)

TUNE = TuneSpec(num_samples=2, points_to_evaluate=({point!r},))
'''


def test_points_to_evaluate_are_not_for_grids():
    with pytest.raises(ConfigError, match="for tpe/random samplers"):
        TuneSpec(sampler="grid", grid={"seed": [0, 1]}, points_to_evaluate=({"seed": 0},))


def test_a_point_of_the_space_is_accepted_and_run_first(tmp_path):
    from attmask_ray.sweep.file import load_sweep

    path = tmp_path / "points.py"
    path.write_text(SWEEP.format(point={"mask.strategy": "attmask_high", "optim.lr": 2e-4}))
    sweep = load_sweep(str(path))
    assert sweep.sample_points(n=3)[0] == {"mask.strategy": "attmask_high", "optim.lr": 2e-4}


@pytest.mark.parametrize("point", [{"mask.strategy": "random", "optim.lr": 2e-4},  # not among the choices
                                   {"mask.strategy": "block", "optim.lr": 5e-2},  # outside the range
                                   {"mask.strategy": "block"}])  # a knob missing
def test_a_point_outside_the_space_is_one_line(tmp_path, capsys, point):
    path = tmp_path / "points.py"
    path.write_text(SWEEP.format(point=point))
    assert sweep_cli.main([str(path), "--dry-run"]) == 2
    out = capsys.readouterr().out
    assert "is not a point of the search space" in out and out.count("error:") == 1


GRID_SWEEP = '''"""grid test sweep: the grid is the search space"""
from attmask_ray.config import ExperimentConfig
from attmask_ray.sweep.spec import TuneSpec

def get_config(arg=""):
    return ExperimentConfig()

TUNE = TuneSpec(sampler="grid", num_samples=4, grid={"mask.strategy": ["block", "attmask_high"], "seed": [0, 1]})
'''

CONFIG_SWEEP = '''"""search_space(trial, cfg): knob values follow the resolved config"""
from attmask_ray.config import ExperimentConfig
from attmask_ray.sweep.spec import TuneSpec

def get_config(arg=""):
    return ExperimentConfig()

def search_space(trial, cfg):
    trial.suggest_categorical("mask.attn_layer", [cfg.model.resolved_depth // 2, cfg.model.resolved_depth])

TUNE = TuneSpec(num_samples=2)
'''


def test_a_grid_sweep_names_its_values_once(tmp_path):
    from attmask_ray.sweep.file import load_sweep
    from attmask_ray.sweep.space import GridSpace

    path = tmp_path / "grid.py"
    path.write_text(GRID_SWEEP)
    sweep = load_sweep(str(path))
    assert isinstance(sweep.space, GridSpace)
    assert sweep.sample_points() == [{"mask.strategy": s, "seed": seed} for s in ("block", "attmask_high") for seed in (0, 1)]
    assert sweep.describe_space() == {"mask.strategy": "block, attmask_high  (grid)", "seed": "0, 1  (grid)"}


def test_search_space_receives_the_resolved_config(tmp_path):
    from attmask_ray.sweep.file import load_sweep

    path = tmp_path / "layers.py"
    path.write_text(CONFIG_SWEEP)
    assert load_sweep(str(path)).describe_space() == {"mask.attn_layer": "6, 12"}
    assert load_sweep(f"{path}:model.depth=4").describe_space() == {"mask.attn_layer": "2, 4"}  # after the overrides
