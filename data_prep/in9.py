"""Convert the ImageNet-9 background challenge into FFCV shards: ``python -m data_prep.in9 SRC OUT``.

SRC is the unzipped ``bg_challenge`` release of Xiao et al. (github.com/MadryLab/backgrounds_challenge):
``SRC/original/train/<class>/*`` (the probe's training images) and ``SRC/<variant>/val/<class>/*`` for
the eight variants (original, only_fg, mixed_same, mixed_rand, mixed_next, no_fg, only_bg_b,
only_bg_t; ``fg_mask/`` and any other folder are ignored). Writes ``OUT/train`` and ``OUT/<variant>``,
one shards folder each, all with the class list of ``original/train``; then evaluate with
``python -m attmask_ray.evaluate CKPT --tasks in9 --set eval.in9_root=OUT``. The small-scale
analogue built from Fashion-MNIST (``python -m data_prep.fashion_in9``) has the same layout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attmask_ray.output_paths import output_problem
from data_prep.cli_errors import run_reporting_errors
from data_prep.errors import DataError
from data_prep.imagefolder import FileLoader, Subset, list_classes, plan_split
from data_prep.shard_writer import WriteOptions, add_write_arguments, print_report, write_options, write_shards

# the folder names of the bg_challenge release, in the order of the paper's Table 4
VARIANTS = ("original", "only_fg", "mixed_same", "mixed_rand", "mixed_next", "no_fg", "only_bg_b", "only_bg_t")
TRAIN = "train"  # OUT/train: the Original train images the probe is trained on


def source_splits(src: Path) -> dict[str, Path]:
    """{"train": SRC/original/train, variant: SRC/<variant>/val, ...}; a missing folder raises."""
    wanted = {TRAIN: src / "original" / "train"} | {v: src / v / "val" for v in VARIANTS}
    missing = [str(p.relative_to(src)) for p in wanted.values() if not p.is_dir()]
    if missing:
        raise DataError(f"{src} lacks {', '.join(missing)}; pass the unzipped bg_challenge folder (original/train/ and "
                        f"<variant>/val/ for {', '.join(VARIANTS)})")
    return wanted


def convert(src: str | Path, out: str | Path, opts: WriteOptions) -> dict[str, object]:
    """Convert every split; returns {split: Report}. Every variant must use only the train classes."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"source folder {src} does not exist; pass the unzipped bg_challenge folder")
    if problem := output_problem(out, kind="dir"):
        raise DataError(f"output {out}: {problem}; choose another OUT folder")
    splits = source_splits(src)
    classes = list_classes(splits[TRAIN])
    reports = {}
    for name, folder in splits.items():
        items = plan_split(folder, classes, Subset())
        if not items:
            raise DataError(f"{folder} holds no images; the in9 task needs every variant")
        reports[name] = write_shards(items, classes, out / name, opts, FileLoader(folder, opts.max_resolution),
                                     title=f"in9 {name}")
        print_report(reports[name])
    return reports


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_prep.in9", description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="unzipped bg_challenge folder (original/train/, <variant>/val/)")
    ap.add_argument("out", help="output folder: train/ and one folder per variant")
    add_write_arguments(ap)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    return run_reporting_errors(lambda: convert(args.src, args.out, write_options(args)))


if __name__ == "__main__":
    sys.exit(main())
