"""Training: the pure step, the state it carries, and the Ray Train loop (checkpoints: attmask_ray.checkpoint)."""
