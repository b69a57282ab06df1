"""End to end on real FFCV shards: the CLI with the project's eval loader; class-count mismatch."""

from __future__ import annotations

import pytest

from attmask_ray import evaluate
from data_prep.imagefolder import convert
from data_prep.sample_photos import make_photo_folder
from data_prep.shard_writer import WriteOptions

# numba's dispatcher finalizer raises a harmless KeyError when an FFCV Loader is garbage-collected
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    src = tmp_path_factory.mktemp("photos")
    make_photo_folder(src / "train", per_class=7, classes=3, size=(48, 64))  # 21 >= k=20
    make_photo_folder(src / "val", per_class=2, classes=3, size=(48, 64), seed=1)
    out = tmp_path_factory.mktemp("shards")
    convert(src, out, WriteOptions(num_shards=1, max_resolution=48))
    two = tmp_path_factory.mktemp("photos2")
    make_photo_folder(two / "val", per_class=2, classes=2, size=(48, 64), seed=2)
    convert(two, out / "two_classes", WriteOptions(num_shards=1, max_resolution=48))
    return out


def test_cli_on_real_shards_and_class_mismatch(tiny_checkpoint, shards, tmp_path, capsys):
    rc = evaluate.main([str(tiny_checkpoint), "--tasks", "knn", "--local", "--train", str(shards / "train"),
                        "--val", str(shards / "val"), "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "knn_top1" in captured.out and (tmp_path / "results.parquet").exists()
    rc = evaluate.main([str(tiny_checkpoint), "--tasks", "knn", "--local", "--train", str(shards / "train"),
                        "--val", str(shards / "two_classes" / "val")])
    assert rc == 2 and "class-count mismatch" in capsys.readouterr().err
    rc = evaluate.main([str(tiny_checkpoint), "--tasks", "knn", "--local", "--train", str(tmp_path / "missing"),
                        "--val", str(shards / "val")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_linear_full_mode_trains_on_full_image_views(tiny_checkpoint, shards, tmp_path, capsys):
    """Full-mode linear probe through the project's FFCV linear-probe loader (crops of the full image)."""
    rc = evaluate.main([str(tiny_checkpoint), "--tasks", "linear", "--local", "--train", str(shards / "train"),
                        "--val", str(shards / "val"), "--out", str(tmp_path),
                        "--set", "eval.linear_mode=full,eval.linear_epochs=2,eval.linear_batch_size=4"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "linear_top1" in captured.out


def test_k_larger_than_the_bank_is_one_error_before_any_work(tiny_checkpoint, shards, monkeypatch, capsys):
    """21 train images cannot give k=100/200 neighbours: refuse before extracting anything, instead of
    capping k at 21 while naming the metric knn_top1_k200."""
    from attmask_ray.eval import runner

    def no_work(*a, **k):
        raise AssertionError("features were extracted before the k values were checked")

    monkeypatch.setattr(runner, "extract_split", no_work)
    rc = evaluate.main([str(tiny_checkpoint), "--tasks", "knn", "--local", "--train", str(shards / "train"),
                        "--val", str(shards / "val"), "--set", "eval.knn_k=(10,20,100,200)"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("error: eval.knn_k asks for k=100,200 but the k-NN bank")
    assert f"{shards / 'train'} holds only 21 images" in err[0] and 'eval.knn_k=(10,20,)' in err[0]


def test_retrieval_and_finetune_on_real_shards(tiny_checkpoint, shards, tmp_path, capsys):
    """retrieval with its own split needs neither the checkpoint's train nor val split (absent here);
    finetune runs the FFCV linear-probe loader's views through the whole backbone."""
    rc = evaluate.main([str(tiny_checkpoint), "--tasks", "retrieval", "--local", "--out", str(tmp_path),
                        "--set", f"eval.retrieval_path={shards / 'train'},eval.retrieval_k=(1,2)"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "retrieval_r1" in captured.out and "retrieval_r2" in captured.out
    rc = evaluate.main([str(tiny_checkpoint), "--tasks", "finetune", "--local", "--train", str(shards / "train"),
                        "--val", str(shards / "val"), "--out", str(tmp_path),
                        "--set", "eval.finetune_epochs=2,eval.finetune_batch_size=4,eval.finetune_warmup_epochs=1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    import pandas as pd
    table = pd.read_parquet(tmp_path / "results.parquet")
    assert sorted(table["source"]) == ["finetune", "retrieval"]
    assert table.loc[table.source == "finetune", "finetune_best_epoch"].item() in (1.0, 2.0)
