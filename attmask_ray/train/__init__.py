"""Training: the pure step, the state it carries, checkpoints, and the Ray Train loop."""
