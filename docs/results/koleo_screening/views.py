import torch
from attmask_ray.presets import embedded
from attmask_ray.data import build_train_loader
torch.set_num_threads(1)
cfg = embedded("v", root="data/fashion_mnist_5k", epochs=2, extra={"data.solarize_prob": 0.0, "data.blur_prob": (0.0, 0.0, 0.0), "data.flip_prob": 0.0, "data.global_crops_scale": (1.0, 1.0), "data.color_jitter_prob": 0.0, "data.grayscale_prob": 0.0})
loader = build_train_loader(cfg.data, 64, 0, 1, torch.device("cpu"), seed=0)
loader.set_epoch(0)
crops, labels = next(iter(loader))
print(len(crops), [tuple(c.shape) for c in crops])
a, b = crops[0].flatten(1), crops[1].flatten(1)
a = (a - a.mean(1, keepdim=True)); a = a / a.norm(dim=1, keepdim=True)
b = (b - b.mean(1, keepdim=True)); b = b / b.norm(dim=1, keepdim=True)
sim = a @ b.T
print("diag mean corr", sim.diag().mean().item(), "offdiag", (sim.sum() - sim.diag().sum()).item() / (64 * 63))
print("argmax matches diag:", (sim.argmax(1) == torch.arange(64)).float().mean().item())
