"""Shard checksums: recorded at conversion, checked by data_prep.verify and sweep --verify-data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data_prep import verify
from data_prep.checksums import META_KEY, file_sha256
from data_prep.imagefolder import convert
from data_prep.manifest import MANIFEST, read_meta
from data_prep.sample_photos import make_photo_folder
from data_prep.shard_writer import WriteOptions

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ImageFolder (2 classes x 3 train, x 2 val) converted into 2 shards per split."""
    src = tmp_path_factory.mktemp("verify_src")
    make_photo_folder(src / "train", per_class=3, classes=2, size=(40, 50))
    make_photo_folder(src / "val", per_class=2, classes=2, size=(40, 50), seed=1)
    out = tmp_path_factory.mktemp("verify_out")
    convert(src, out, WriteOptions(num_shards=2, max_resolution=32))
    return out


@pytest.fixture
def shards(converted: Path, tmp_path: Path) -> Path:
    shutil.copytree(converted, tmp_path / "data")
    return tmp_path / "data"


def _flip_middle(shard: Path) -> None:
    data = bytearray(shard.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
    shard.write_bytes(bytes(data))


def test_manifest_records_each_shard_sha256(converted: Path) -> None:
    meta = read_meta(pq.read_table(converted / "train" / MANIFEST))
    assert sorted(meta[META_KEY]) == ["shard-00000.beton", "shard-00001.beton"]
    assert all(meta[META_KEY][n] == file_sha256(converted / "train" / n) for n in meta[META_KEY])


def test_verify_passes_on_intact_shards(shards: Path, capsys) -> None:
    assert verify.main([str(shards / "train")]) == 0
    assert capsys.readouterr().out.strip().splitlines() == [f"{shards / 'train'}: 2 shard(s) match their checksums"]
    assert verify.main([str(shards)]) == 0  # a folder of shards folders: train/ and val/
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_verify_names_a_changed_shard_and_exits_1(shards: Path, capsys) -> None:
    _flip_middle(shards / "train" / "shard-00001.beton")  # header and allocation table intact
    assert verify.main([str(shards / "train")]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bad shard {shards / 'train' / 'shard-00001.beton'}:")
    assert "differs from the recorded" in lines[0]


def test_missing_manifest_or_shard_is_one_error_line_exit_2(shards: Path, capsys) -> None:
    (shards / "train" / "shard-00000.beton").unlink()
    assert verify.main([str(shards / "train")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "shard-00000.beton is missing" in err[0]
    (shards / "val" / MANIFEST).unlink()
    assert verify.main([str(shards / "val")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "manifest.parquet is missing" in err[0]


def test_shards_without_checksums_are_reported_not_failed(shards: Path, capsys) -> None:
    table = pq.read_table(shards / "train" / MANIFEST)
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k.decode() != META_KEY}
    pq.write_table(table.replace_schema_metadata(meta), shards / "train" / MANIFEST)  # an old conversion
    assert verify.main([str(shards / "train")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "converted before checksums existed" in out[0]


def test_resumed_conversion_with_old_parts_still_records_checksums(tmp_path: Path) -> None:
    """A conversion killed before checksums existed and finished now: kept parts get file checksums."""
    src = make_photo_folder(tmp_path / "src", per_class=2, classes=2, size=(40, 50))
    out = tmp_path / "out"
    convert(src, out, WriteOptions(num_shards=2, max_resolution=32))
    part = out / ".parts" / "shard-00000.beton.parquet"
    table = pq.read_table(part)
    pq.write_table(table.replace_schema_metadata({}), part)  # a part written by the old converter
    (out / MANIFEST).unlink()
    (out / "shard-00001.beton").unlink()
    (out / ".parts" / "shard-00001.beton.parquet").unlink()
    convert(src, out, WriteOptions(num_shards=2, max_resolution=32))
    assert verify.verify_folder(out).recorded and not verify.verify_folder(out).bad


def test_sweep_verify_data_refuses_corrupted_shards_before_any_cluster(shards: Path, capsys, monkeypatch) -> None:
    import ray

    from attmask_ray.sweep import cli as sweep_cli

    def refuse(*a, **k):
        raise AssertionError("a cluster was started before the data was verified")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.chdir(REPO)
    target = f"sweeps/smoke.py:data.train_path={shards / 'train'},data.val_path={shards / 'val'},data.global_crop_size=28,eval.knn_k=(1,)"
    _flip_middle(shards / "val" / "shard-00000.beton")
    assert sweep_cli.main([target, "--storage", "/tmp/never", "--verify-data"]) == 2
    out = capsys.readouterr().out
    assert out.count("error:") == 1 and "Traceback" not in out
    assert f"--verify-data: {shards / 'val' / 'shard-00000.beton'}:" in out and "re-convert" in out
