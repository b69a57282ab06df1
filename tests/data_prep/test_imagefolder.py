"""ImageFolder -> shards: bad files, subsets, resume after a kill, bad-input errors."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from attmask_ray.data import DataError, check_dataset
from attmask_ray.data.dataset import _header
from data_prep.imagefolder import Subset, convert, plan_split
from data_prep.manifest import MANIFEST
from data_prep.shard_writer import WriteOptions

REPO = Path(__file__).resolve().parents[2]


def test_bad_files_are_fixed_or_skipped_with_reasons(photo_shards: Path) -> None:
    rows = {Path(r["source"]).name: r for r in pq.read_table(photo_shards / "train" / MANIFEST).to_pylist()}
    assert len(rows) == 3 * 8 + 5
    assert rows["zz_corrupt.JPEG"]["status"] == "skipped" and rows["zz_corrupt.JPEG"]["shard"] == ""
    assert rows["zz_corrupt.JPEG"]["reason"].startswith("corrupt")
    assert rows["zz_truncated.JPEG"]["status"] == "skipped" and "truncated" in rows["zz_truncated.JPEG"]["reason"]
    assert rows["zz_cmyk.JPEG"]["status"] == "converted" and "CMYK" in rows["zz_cmyk.JPEG"]["reason"]
    assert rows["zz_gray.JPEG"]["status"] == "ok" and rows["zz_gray.JPEG"]["reason"] == ""  # 8-bit gray: lossless
    assert rows["zz_png.JPEG"]["status"] == "converted" and "PNG disguised" in rows["zz_png.JPEG"]["reason"]
    ok = [r for r in rows.values() if r["status"] != "skipped"]
    assert all(max(r["height"], r["width"]) == 96 for r in ok)  # 120x160 shrunk to max side 96
    info = check_dataset(str(photo_shards / "train"), min_resolution=64)
    assert info.num_samples == len(ok) == 27 and info.num_classes == 3 and len(info.shards) == 2
    assert info.class_names == sorted(info.class_names) and info.max_resolution == 96
    assert check_dataset(str(photo_shards / "val")).num_samples == 9


def test_subsets_take_first_files_per_class_in_sorted_order(photo_src: Path) -> None:
    classes = sorted(p.name for p in (photo_src / "train").iterdir())
    full = plan_split(photo_src / "train", classes, Subset())
    first2 = plan_split(photo_src / "train", classes, Subset(per_class=2))
    assert [i.source for i in first2] == [i.source for c in classes for i in [x for x in full if x.class_name == c][:2]]
    frac = plan_split(photo_src / "train", classes, Subset(fraction=0.5))
    assert [sum(i.class_name == c for i in frac) for c in classes] == [7, 4, 4]  # class 0 has 13 files (half rounds up)
    shot = plan_split(photo_src / "train", classes, Subset(per_class=1, offset=2))
    assert [i.source for i in shot] == [[x for x in full if x.class_name == c][2].source for c in classes]
    with pytest.raises(DataError, match="--per-class or --fraction"):
        Subset(per_class=2, fraction=0.5)


def _run(src: Path, out: Path, shards: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "data_prep.imagefolder", str(src), str(out), "--shards", str(shards),
                             "--max-resolution", "96", *extra], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_pool_workers_die_with_a_sigkilled_converter(photo_src: Path, tmp_path: Path) -> None:
    import psutil

    proc = _run(photo_src / "train", tmp_path / "out", 6, "--workers", "2")
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 120
    while not (children := parent.children()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert children, "the converter finished before its pool started"
    proc.kill()  # the parent only, as an OOM killer or `kill -9 PID` would
    proc.wait()
    gone, alive = psutil.wait_procs(children, timeout=15)
    for p in alive:
        p.kill()
    assert not alive, f"{len(alive)} pool workers outlived the converter"


def test_killed_run_resumes_to_the_same_shards(photo_src: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(photo_src / "train", src / "flat")  # one split, converted straight into OUT
    src = src / "flat"
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    opts = WriteOptions(num_shards=6, max_resolution=96)
    convert(src, clean, opts)  # one clean run (in-process: same code as the CLI)
    proc = _run(src, resumed, 6)  # the CLI, killed once two shards are done
    deadline = time.time() + 120
    while not (resumed / "shard-00001.beton").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (resumed / MANIFEST).exists(), "the kill came too late to test resuming"
    for shard in resumed.glob("*.beton"):  # whatever looks finished IS finished
        n, _, table = _header(shard, "")
        assert n > 0 and len(table) == n
    kept = {p.name: p.stat().st_mtime_ns for p in resumed.glob("*.beton")}
    convert(src, resumed, opts)
    assert all((resumed / n).stat().st_mtime_ns == t for n, t in kept.items()), "finished shards must be kept"
    names = sorted(p.name for p in clean.glob("*.beton"))
    assert names == sorted(p.name for p in resumed.glob("*.beton")) and len(names) == 6
    for n in names:
        assert (clean / n).read_bytes() == (resumed / n).read_bytes(), n
    assert pq.read_table(clean / MANIFEST).equals(pq.read_table(resumed / MANIFEST))
    assert check_dataset(str(resumed)).num_samples == check_dataset(str(clean)).num_samples == 27


def test_changed_options_refuse_to_mix_into_an_old_output(photo_src: Path, tmp_path: Path) -> None:
    convert(photo_src / "val", tmp_path, WriteOptions(num_shards=1, max_resolution=64))
    with pytest.raises(DataError, match="different inputs or options"):
        convert(photo_src / "val", tmp_path, WriteOptions(num_shards=1, max_resolution=80))


def test_class_slice_keeps_unseen_classes_for_retrieval(photo_src: Path, tmp_path: Path) -> None:
    classes = sorted(p.name for p in (photo_src / "val").iterdir())
    convert(photo_src / "val", tmp_path / "late", WriteOptions(num_shards=1, max_resolution=64), classes="1:")
    info = check_dataset(str(tmp_path / "late"))
    assert info.class_names == classes[1:] and info.num_samples == 6 and sorted(set(info.labels.tolist())) == [0, 1]
    with pytest.raises(DataError, match="--classes must be A:B"):
        convert(photo_src / "val", tmp_path / "x", WriteOptions(), classes="1-2")
    with pytest.raises(DataError, match="keeps none of the 3 classes"):
        convert(photo_src / "val", tmp_path / "y", WriteOptions(), classes="5:")
