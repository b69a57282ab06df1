"""Which torch devices this process can use: GPU count and a one-line reason a ``--device`` cannot be used."""

from __future__ import annotations


def local_gpu_count() -> int:
    """CUDA devices visible to this process (0 when torch cannot tell)."""
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001
        return 0


def device_problem(device: str) -> str | None:
    """Why torch cannot use ``device`` in this process (e.g. ``cuda`` without a GPU), or None."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        return f"--device {device!r} is not a torch device ({' '.join(str(exc).split())[:120]}); use cpu or cuda"
    if dev.type == "cuda":
        count = local_gpu_count()
        if count == 0:
            return f"--device {device} needs a CUDA GPU but this machine has none; use --device cpu"
        if dev.index is not None and dev.index >= count:
            return f"--device {device}: this machine has {count} GPU(s) (cuda:0..cuda:{count - 1})"
    elif dev.type != "cpu":
        return f"--device {device}: only cpu and cuda are supported"
    return None
