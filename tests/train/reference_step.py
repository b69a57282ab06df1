"""A deliberately straightforward iBOT/AttMask step, written like the reference code.

Every crop goes through the network on its own, the head runs on ALL tokens of ALL crops
(the student's patch outputs of local crops are computed and thrown away), softmaxes are
recomputed per pair, and the losses are loops over views. Used only to check that the
optimised ``train_step`` computes the same maths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attmask_ray.masking import STRATEGIES, generate_masks
from attmask_ray.train.state import TrainingState
from attmask_ray.train.step import mask_generator


def reference_forward_loss(state: TrainingState, crops: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    cfg, values = state.cfg, state.schedules(state.step)
    teacher, student = state.teacher, state.student
    b = crops[0].shape[0]
    # teacher: one view at a time, head on every token
    t_out = []
    attn = []
    for view in crops[:2]:
        with torch.no_grad():
            tokens, a = teacher.backbone(view, attn_layer=cfg.attn_layer)
            t_out.append((teacher.head(tokens[:, 0]), teacher.head.forward_patch(tokens[:, 1:])))
            attn.append(a)
    scores = torch.cat(attn)
    m = cfg.mask
    grid = (crops[0].shape[-2] // cfg.model.patch_size, crops[0].shape[-1] // cfg.model.patch_size)
    masks = generate_masks(scores if STRATEGIES[m.strategy].needs_attention else None, grid, m.strategy,
                           ratio=m.pred_ratio, prob=m.masking_prob, show_max=m.show_max,
                           per_image_ratio=m.per_image_ratio, generator=mask_generator(cfg.seed, 0, state.step),
                           batch_size=2 * b)
    view_masks = masks.chunk(2)
    # student: every crop separately, head on all tokens (locals too)
    s_out = []
    for i, view in enumerate(crops):
        mask = view_masks[i] if i < 2 else None
        tokens, _ = student.backbone(view, mask)
        s_out.append((student.head(tokens[:, 0]), student.head.forward_patch(tokens[:, 1:])))
    loss_mod = state.loss
    ts, tps = values.teacher_temp, values.teacher_patch_temp
    st = cfg.loss.student_temp
    c = loss_mod.center.center
    t_cls_probs = [F.softmax((t[0] - c) / ts, dim=-1) for t in t_out]
    cls_total, pairs = 0.0, 0
    for q in range(2):
        for v in range(len(crops)):
            if v == q:
                continue
            cls_total = cls_total + torch.sum(-t_cls_probs[q] * F.log_softmax(s_out[v][0] / st, dim=-1), dim=-1).mean()
            pairs += 1
    cls = cls_total / pairs
    if cfg.loss.variant == "dino":
        return {"loss": cls, "cls": cls, "mim": torch.zeros(()), "masks": masks,
                "t_cls": torch.cat([t[0] for t in t_out])}
    c2 = loss_mod.center_patch.center
    mim = 0.0
    for q in range(2):
        tp = F.softmax((t_out[q][1] - c2) / tps, dim=-1)
        ce = torch.sum(-tp * F.log_softmax(s_out[q][1] / st, dim=-1), dim=-1)  # [B, n]
        mk = view_masks[q].float()
        per_image = (ce * mk).sum(-1) / mk.sum(-1).clamp(min=1.0)
        mim = mim + per_image.mean()
    mim = mim / 2
    return {"loss": cls + cfg.loss.lambda_mim * mim, "cls": cls, "mim": mim, "masks": masks,
            "t_cls": torch.cat([t[0] for t in t_out]), "t_patch": torch.cat([t[1] for t in t_out])}
