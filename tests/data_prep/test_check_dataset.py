"""Bad shards folders fail fast with one line naming the file and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from attmask_ray.data import DataError, check_dataset
from data_prep.manifest import MANIFEST


@pytest.fixture
def shards(photo_shards: Path, tmp_path: Path) -> Path:
    out = tmp_path / "train"
    shutil.copytree(photo_shards / "train", out)
    return out


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_missing_folder_names_the_converter(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        check_dataset(str(tmp_path / "nope"))
    assert "nope" in _one_line(exc) and "data_prep" in str(exc.value)


def test_empty_shard(shards: Path) -> None:
    (shards / "shard-00001.beton").write_bytes(b"")
    with pytest.raises(DataError, match=r"shard-00001\.beton is empty; re-run the converter") as exc:
        check_dataset(str(shards))
    _one_line(exc)


def test_truncated_shard(shards: Path) -> None:
    shard = shards / "shard-00000.beton"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"shard-00000\.beton is truncated"):
        check_dataset(str(shards))


def test_missing_shard_and_missing_manifest(shards: Path) -> None:
    (shards / "shard-00001.beton").unlink()
    with pytest.raises(DataError, match=r"shard-00001\.beton is missing but listed in .*manifest\.parquet"):
        check_dataset(str(shards))
    (shards / MANIFEST).unlink()
    with pytest.raises(DataError, match=r"manifest\.parquet is missing"):
        check_dataset(str(shards))


def test_manifest_not_matching_shards(shards: Path) -> None:
    table = pq.read_table(shards / MANIFEST)
    pq.write_table(table.slice(1), shards / MANIFEST)  # one row fewer than the shard holds
    with pytest.raises(DataError, match=r"holds \d+ samples but .* lists \d+ \(manifest does not match shards\)"):
        check_dataset(str(shards))
    pq.write_table(table, shards / MANIFEST)
    shutil.copy(shards / "shard-00000.beton", shards / "shard-00007.beton")
    with pytest.raises(DataError, match=r"shard-00007\.beton is not listed"):
        check_dataset(str(shards))


def test_crop_larger_than_stored_resolution(shards: Path) -> None:
    with pytest.raises(DataError, match=r"at most 96 px .* 224 px crop .* --max-resolution >= 224"):
        check_dataset(str(shards), min_resolution=224)


def test_header_layout_copy_matches_ffcv() -> None:
    from ffcv import types

    from attmask_ray.data import dataset

    assert dataset.HEADER_TYPE == types.HeaderType and dataset.ALLOC_TABLE_TYPE == types.ALLOC_TABLE_TYPE
    assert dataset.BETON_VERSION == types.CURRENT_VERSION


def test_crop_larger_than_small_sources_does_not_advise_reconverting(tmp_path: Path) -> None:
    from data_prep.fashion_mnist import build  # 28 px sources stored at their own size

    build(tmp_path / "fm", train_subset=20)
    with pytest.raises(DataError, match=r"lower data.global_crop_size to at most 28 .*cannot enlarge") as err:
        check_dataset(str(tmp_path / "fm" / "train"), min_resolution=32)
    assert "--max-resolution" not in str(err.value)
