"""Pictures of masks and attention (paper Figs. 1, 3b, A5-A7): pure tensors -> PNG functions + CLI."""

from attmask_ray.viz.attention import cls_attention, cls_attention_per_head, top_mass_masks
from attmask_ray.viz.heads import draw_heads_figure
from attmask_ray.viz.inputs import VizError, load_photos
from attmask_ray.viz.masks import draw_masks_figure, strategy_masks
from attmask_ray.viz.render import GridLayout, denormalise

__all__ = ["GridLayout", "VizError", "cls_attention", "cls_attention_per_head", "denormalise",
           "draw_heads_figure", "draw_masks_figure", "load_photos", "strategy_masks", "top_mass_masks"]
