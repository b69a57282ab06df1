"""Checkpoints: one ``state.pt`` per directory (the layout Ray Train checkpoints hold).

Payload: format tag, version, resolved config (nested dict), TrainingState state
(student, teacher, loss centres, optimiser, step), RNG states, git SHA, last metrics.
Written to a temporary name and renamed, so a killed writer never leaves a file that
looks whole.
"""

from __future__ import annotations

import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attmask_ray.config import ExperimentConfig, from_dict, to_dict
from attmask_ray.models import MaskedViT, SSLModel, build_model

FORMAT = "attmask_ray.checkpoint"
VERSION = 1
FILENAME = "state.pt"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or not an attmask_ray checkpoint."""


def git_sha() -> str:
    """Commit of the code that wrote the checkpoint ('unknown' outside a git checkout)."""
    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: str | Path, state_dict: dict[str, Any], cfg: ExperimentConfig,
                    metrics: dict[str, float] | None = None, epoch_progress: dict[str, Any] | None = None) -> Path:
    """Write ``directory/state.pt`` atomically; ``state_dict`` is ``TrainingState.state_dict()``.
    ``epoch_progress``: a mid-epoch checkpoint's partial epoch statistics (attmask_ray.train.loop.EpochProgress)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "config": to_dict(cfg), "state": state_dict,
               "rng": rng_state(), "git_sha": git_sha(), "metrics": dict(metrics or {})}
    if epoch_progress is not None:
        payload["epoch_progress"] = epoch_progress
    tmp = directory / (FILENAME + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, directory / FILENAME)
    return directory / FILENAME


@dataclass
class Checkpoint:
    path: Path
    config: ExperimentConfig
    payload: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.payload["state"]["step"])

    def network(self, which: str = "teacher", device: str | torch.device = "cpu") -> SSLModel:
        """The teacher (default) or student network, in eval mode."""
        if which not in ("teacher", "student"):
            raise CheckpointError(f"which must be 'teacher' or 'student', got {which!r}")
        model = build_model(self.config.model, self.config.data.global_crop_size, student=which == "student")
        try:
            model.load_state_dict(self.payload["state"][which])
        except (RuntimeError, KeyError) as exc:  # weights of another architecture than the recorded config
            first = " ".join(str(exc).split())[:200]
            raise CheckpointError(f"{self.path}: the {which} weights do not fit the model its config describes "
                                  f"({first}); the checkpoint is damaged or was edited: use another one") from None
        return model.to(device).eval()

    def backbone(self, which: str = "teacher", device: str | torch.device = "cpu") -> MaskedViT:
        return self.network(which, device).backbone


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint directory (or its state.pt); clear errors for wrong/missing files."""
    path = Path(path)
    file = path / FILENAME if path.is_dir() else path
    if not file.exists():
        raise CheckpointError(f"no checkpoint at {file}: pass a checkpoint directory holding {FILENAME} (see the trial's checkpoint_* folders)")
    try:
        payload = torch.load(file, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unreadable file
        raise CheckpointError(f"cannot read checkpoint {file}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not an attmask_ray checkpoint (expected format {FORMAT!r}); "
                              "pass a checkpoint written by attmask_ray training")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{file} has checkpoint version {payload.get('version')}, this code reads version {VERSION}")
    return Checkpoint(file.parent, from_dict(payload["config"]), payload)
