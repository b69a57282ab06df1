"""The sweep layer: from a sweep file to Tune trials that each fit a Ray Train TorchTrainer.

    python -m attmask_ray.sweep SWEEP.py[:preset,key=value,...]      (__main__ -> cli.main)

  file.py       load a sweep file: base config (get_config + presets + overrides), TUNE, validation
  spec.py       TuneSpec: metric, sampler (tpe/random/grid), scheduler, eval tasks, objective_over
  space.py      the search space: the file's search_space(trial[, cfg]) or TUNE.grid; knob values
  resources.py  what one trial needs; how many fit on the cluster (refuse, never wait forever)
  tuner.py      the Tuner: trainable + Optuna searcher + ASHA + callbacks (or Tuner.restore)
  trial.py      one trial = a driver that fits a TorchTrainer (train/loop.py) and runs eval tasks
  objective.py  a trial whose metric is the mean over runs (TuneSpec.objective_over)
  plugins.py    Tune callbacks (progress lines, results journal) and the sparse-metric searcher
  journal.py    results_journal.jsonl: every reported result, durable across --resume
  results.py    ResultGrid + journal -> the sweep's rows of results.parquet (attmask_ray.results)
  summary.py    the best-trials table and kept checkpoints printed at the end
  floors.py     python -m attmask_ray.floors: k-NN floors of a sweep's data
Nothing below this package imports it (training, evaluation and the report know no sweeps).
"""
