"""Throwaway in-process screening loop (not shipped): python run.py TAG EPOCHS EVERY key=value ... [root=PATH]"""
import ast, sys, time, json
import torch
from attmask_ray.presets import embedded
from attmask_ray.data import build_train_loader
from attmask_ray.train.state import TrainingState
from attmask_ray.train.step import train_step
from attmask_ray.eval.online import OnlineKnn
from attmask_ray.diagnostics import TRAIN_DIAGNOSTICS
from attmask_ray.eval.features import extract_features
from attmask_ray.eval.fewshot import fewshot_knn

torch.set_num_threads(1)
tag, epochs, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
kv = dict(a.split("=", 1) for a in sys.argv[4:])
root = kv.pop("root", "data/fashion_mnist_5k")
seed = kv.pop("seed", None)
if seed is not None:  # seeds the model initialisation too (runs before the session-10 ones left it unseeded)
    torch.manual_seed(int(seed))
extra = {}
for k, v in kv.items():
    try:
        extra[k] = ast.literal_eval(v)
    except Exception:
        extra[k] = v
cfg = embedded(tag, root=root, epochs=epochs, eval_every=every, extra=extra)
dev = torch.device("cpu")
loader = build_train_loader(cfg.data, cfg.optim.batch_size, 0, 1, dev, seed=cfg.data.seed)
state = TrainingState.build(cfg, steps_per_epoch=len(loader), device=dev)
knn = OnlineKnn(cfg, dev)
def show(ep, extra=""):
    r = knn(state.teacher.backbone)
    print(f"{tag} ep {ep} knn {r['knn_top1']:.2f} cos {r['val_mean_cosine']:.3f} fg {r.get('fg_attention_share', float('nan')):.3f} {extra}", flush=True)
show(0)
t0 = time.time()
for ep in range(epochs):
    loader.set_epoch(ep)
    sums, n = {}, 0
    for i, (crops, _) in enumerate(loader):
        out = train_step(state, crops, 0, diagnostics=(i % 10 == 0))
        if i % 10 == 0:
            n += 1
            for k in ("loss", "cls", "mim") + tuple(TRAIN_DIAGNOSTICS):
                if k in out:
                    sums[k] = sums.get(k, 0.0) + float(out[k])
    d = " ".join(f"{k}={v / n:.3f}" for k, v in sums.items())
    if (ep + 1) % every == 0 or ep + 1 == epochs:
        show(ep + 1, f"t={time.time() - t0:.0f}s {d}")
    else:
        print(f"{tag} ep {ep + 1} t={time.time() - t0:.0f}s {d}", flush=True)
kind = cfg.eval.knn_feature
tr = extract_features(state.teacher.backbone, knn._loader(cfg.data.train_path), (kind,), device=dev)
va = extract_features(state.teacher.backbone, knn._loader(cfg.data.val_path), (kind,), device=dev)
fs = fewshot_knn(tr[kind], tr.labels, va[kind], va.labels, tries=5)
print(f"{tag} fewshot " + " ".join(f"nu{n}={fs[f'fewshot_nu{n}_mean']:.2f}" for n in (1, 5, 10, 20)), flush=True)
