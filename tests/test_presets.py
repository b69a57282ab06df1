"""The embedded preset is the recipe our own search chose: its values are the committed report's best trial."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from attmask_ray.config import flatten
from attmask_ray.presets import RECIPE, RECIPE_EPOCHS, RECIPE_SOURCE, embedded, recipe

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results" / "recipe" / "results.parquet"


def _best_trial(table: pd.DataFrame) -> pd.Series:
    """The trial with the best mean objective (knn_top1 of the last member) at the full budget."""
    online = table[(table["source"] == "online") & table["knn_top1"].notna()]
    final = online[online["epoch"] >= RECIPE_EPOCHS]
    return final.loc[final["knn_top1"].idxmax()]


def test_preset_values_are_the_best_trial_of_the_committed_recipe_search():
    table = pd.read_parquet(RESULTS)
    best = _best_trial(table)
    assert best["trial_id"].split("_")[2] in RECIPE_SOURCE  # the cited trial is the best one
    for key, value in RECIPE.items():
        column = best[f"config/{key}"]
        expected = str(value) if isinstance(value, tuple) else value
        assert column == pytest.approx(expected) if isinstance(value, float) else column == expected, key


def test_preset_at_the_search_budget_is_the_searched_config_but_the_changes_made_after():
    from attmask_ray.presets import AFTER_SEARCH

    cfg = flatten(embedded(epochs=RECIPE_EPOCHS))
    for key, value in RECIPE.items():
        assert cfg[key] == AFTER_SEARCH.get(key, value), key
    assert all(cfg[key] == value for key, value in AFTER_SEARCH.items())
    assert AFTER_SEARCH["loss.teacher_temp"] == 0.04 and RECIPE["loss.teacher_temp"] == 0.07


@pytest.mark.parametrize("epochs", [2, 6, 40])
def test_warmups_scale_with_the_run_length(epochs):
    values = recipe(epochs)
    for key in ("optim.warmup_epochs", "loss.warmup_teacher_temp_epochs"):
        searched = RECIPE[key]
        assert values[key] == (0 if searched == 0 else max(1, round(searched * epochs / RECIPE_EPOCHS))) or \
            key == "optim.warmup_epochs" and values[key] == epochs
    cfg = embedded(epochs=epochs)
    assert cfg.optim.warmup_epochs <= epochs


def test_embedded_preset_turns_koleo_on_and_extra_turns_it_off():
    from attmask_ray.presets import KOLEO_WEIGHT

    assert KOLEO_WEIGHT > 0
    assert embedded(epochs=2).loss.koleo_weight == KOLEO_WEIGHT
    assert embedded(epochs=2, extra={"loss.koleo_weight": 0.0}).loss.koleo_weight == 0.0
