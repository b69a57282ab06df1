"""Bad inputs over the CLIs: each is a non-zero exit with one clear line, no traceback, nothing started.

One table per CLI; every row is (argv, a fragment of the expected message). The sweep rows
run with --dry-run where the input must already be refused there (a dry run that accepts an
invalid value would let a real run fail late, on the cluster).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from attmask_ray import export as export_cli
from attmask_ray import sweep as sweep_cli

REPO = Path(__file__).resolve().parents[1]

SWEEP_CASES = [
    (["sweeps/smoke.py:model.depth=0", "--dry-run"], "model.depth must be > 0"),
    (["sweeps/smoke.py:model.embed_dim=-64", "--dry-run"], "model.embed_dim must be > 0"),
    (["sweeps/smoke.py:model.num_heads=-2", "--dry-run"], "model.num_heads must be > 0"),
    (["sweeps/smoke.py:model.num_heads=0", "--dry-run"], "model.num_heads must be > 0"),
    (["sweeps/smoke.py:model.arch=vit_bogus_patch4", "--dry-run"], "model.arch 'vit_bogus_patch4' is not a timm model"),
    (["sweeps/smoke.py:eval.linear_epochs=0", "--dry-run"], "eval.linear_epochs must be >= 1"),
    (["sweeps/smoke.py:model.pos_interp=nearest", "--dry-run"], "model.pos_interp must be 'reference' or 'timm'"),
    (["sweeps/smoke.py:mask.per_image_ratio=maybe", "--dry-run"], "mask.per_image_ratio must be true/false"),
    (["sweeps/smoke.py:data.blur_sigma=(0,1)", "--dry-run"], "data.blur_sigma must satisfy 0 < a <= b"),
    (["sweeps/smoke.py:data.blur_sigma=(2,1)", "--dry-run"], "data.blur_sigma must satisfy 0 < a <= b"),
    (["sweeps/smoke.py:bogus", "--dry-run"], "unknown preset 'bogus' (it declares no PRESETS)"),
    (["sweeps/ablation.py:embeded", "--dry-run"], "unknown preset 'embeded' (its presets: embedded)"),
    (["sweeps/smoke.py", "--num-samples", "-1", "--dry-run"], "--num-samples must be >= 1, got -1"),
    (["sweeps/smoke.py", "--num-samples", "0", "--dry-run"], "--num-samples must be >= 1, got 0"),
    (["sweeps/smoke.py", "--num-cpus", "0", "--dry-run"], "--num-cpus must be >= 1, got 0"),
]


@pytest.mark.parametrize("argv, message", SWEEP_CASES, ids=[" ".join(a) for a, _ in SWEEP_CASES])
def test_sweep_cli_refuses(argv, message, capsys, monkeypatch):
    import ray

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("a cluster was started for a bad input"))
    assert sweep_cli.main(argv) == 2
    out = capsys.readouterr().out
    assert message in out, out
    assert out.count("error:") == 1 and "Traceback" not in out


def test_export_refuses_a_json_output_before_writing(tmp_path, capsys):
    out = tmp_path / "backbone.json"
    assert export_cli.main([str(tmp_path / "no_checkpoint"), str(out)]) == 2
    err = capsys.readouterr().err
    assert "ends in .json, where the timm kwargs go" in err and err.count("\n") == 1
    assert not out.exists()


def test_export_refuses_a_directory_output(tmp_path, capsys):
    assert export_cli.main([str(tmp_path / "no_checkpoint"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a directory; give a file name" in err and err.count("\n") == 1
