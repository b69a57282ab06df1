"""The config sections (model, mask, loss, optim, data, eval, scaling) and the experiment that
holds them: frozen dataclasses with the paper's defaults (SPEC §5), validated in ``__post_init__``."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from attmask_ray.config.checks import ConfigError, _check, _unit_range, is_plain_name
from attmask_ray.masking import STRATEGIES


def _is_timm_model(name: str) -> bool:
    """True when timm knows the architecture name (imported lazily: configs stay cheap to build)."""
    import timm

    return bool(timm.is_model(name))


_DEPTH_BY_SIZE = {"tiny": 12, "small": 12, "base": 12, "medium": 12, "large": 24, "huge": 32, "giant": 40}


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "vit_small_patch16_224"  # any timm ViT name; ViT-S/16 is the paper's model
    patch_size: int = 16  # patch side in pixels; 4 suits 28x28 Fashion-MNIST
    depth: int | None = None  # override the arch's depth (None: the arch's own)
    embed_dim: int | None = None  # override the arch's width (None: the arch's own)
    num_heads: int | None = None  # override the arch's head count (None: the arch's own)
    drop_path_rate: float = 0.1  # student only, linear 0..0.1 over depth (SPEC §1)
    out_dim: int = 8192  # iBOT head outputs K (DINO uses 65536)
    patch_out_dim: int = 8192  # patch head outputs (equal to out_dim when shared)
    shared_head: bool = True  # iBOT shares one head for [CLS] and patch tokens
    norm_last_layer: bool = False  # paper: last layer not weight-norm frozen
    head_hidden_dim: int = 2048  # head MLP width
    head_bottleneck_dim: int = 256  # head bottleneck before the weight-normed layer
    compile: bool = False  # torch.compile backbone and head (measure before enabling)
    pos_interp: str = "reference"  # position embeddings at other grids: "reference" (DINO/iBOT bicubic, +0.1 scale factor) or "timm" (antialiased)

    def __post_init__(self) -> None:
        _check(self.patch_size > 0, f"model.patch_size must be > 0, got {self.patch_size}")
        for name in ("depth", "embed_dim", "num_heads"):
            value = getattr(self, name)
            _check(value is None or value > 0, f"model.{name} must be > 0 (or None for the arch's own), got {value}")
        _check(_is_timm_model(self.arch), f"model.arch {self.arch!r} is not a timm model; pick a ViT name from "
                                          "timm.list_models('vit_*'), e.g. 'vit_small_patch16_224'")
        _check(self.arch.startswith("vit_"), f"model.arch {self.arch!r} is not a plain ViT (AttMask needs the [CLS] "
                                             "attention of timm's VisionTransformer); pick a name from timm.list_models('vit_*')")
        _check(0.0 <= self.drop_path_rate < 1.0, f"model.drop_path_rate must be in [0, 1), got {self.drop_path_rate}")
        for name in ("out_dim", "patch_out_dim", "head_hidden_dim", "head_bottleneck_dim"):
            _check(getattr(self, name) > 0, f"model.{name} must be > 0, got {getattr(self, name)}")
        _check(not self.shared_head or self.out_dim == self.patch_out_dim,
               f"model.shared_head=True needs out_dim == patch_out_dim, got {self.out_dim} and {self.patch_out_dim}")
        _check(self.pos_interp in ("reference", "timm"),
               f"model.pos_interp must be 'reference' or 'timm', got {self.pos_interp!r}")
        if self.embed_dim is not None and self.num_heads is not None:
            _check(self.embed_dim % self.num_heads == 0,
                   f"model.embed_dim ({self.embed_dim}) must be divisible by model.num_heads ({self.num_heads})")

    @property
    def resolved_depth(self) -> int:
        """Number of transformer blocks (explicit override, else read off the timm name)."""
        if self.depth is not None:
            return self.depth
        for size, depth in _DEPTH_BY_SIZE.items():
            if f"_{size}_" in f"_{self.arch}_" or f"_{size}" in self.arch:
                return depth
        return 12


@dataclass(frozen=True)
class MaskConfig:
    strategy: str = "attmask_high"  # paper's "AttMask" (Table 1 best); any name of attmask_ray.masking.STRATEGIES
    pred_ratio: tuple[float, float] = (0.1, 0.5)  # r ~ U(a, b) (Table 9c)
    masking_prob: float = 0.5  # p: each global view masked with prob p (Table 9b)
    show_max: float = 0.1  # attmask_hint: reveal among the top show_max*n tokens
    attn_layer: int | None = None  # teacher layer for [CLS] attention, 1-based; None = last (Table 9a)
    per_image_ratio: bool | None = None  # None: as the reference (per image+crop for block/random, per batch for attmask_*); True/False force it

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            close = difflib.get_close_matches(str(self.strategy), STRATEGIES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"mask.strategy {self.strategy!r} is unknown{hint}; allowed: {', '.join(STRATEGIES)}")
        _unit_range("mask.pred_ratio", self.pred_ratio)
        _check(0.0 <= self.masking_prob <= 1.0, f"mask.masking_prob must be in [0, 1], got {self.masking_prob}")
        _check(0.0 < self.show_max <= 1.0, f"mask.show_max must be in (0, 1], got {self.show_max}")
        _check(self.attn_layer is None or self.attn_layer >= 1, f"mask.attn_layer must be >= 1 (1-based), got {self.attn_layer}")


@dataclass(frozen=True)
class LossConfig:
    variant: str = "ibot"  # "ibot" (MIM + [CLS]) or "dino" ([CLS] only, AttMask on global views)
    lambda_mim: float = 1.0  # weight of L_MIM (Table A15)
    student_temp: float = 0.1  # student softmax temperature
    teacher_temp: float = 0.07  # final teacher [CLS] temperature
    warmup_teacher_temp: float = 0.04  # initial teacher [CLS] temperature
    teacher_patch_temp: float = 0.07  # final teacher patch temperature
    warmup_teacher_patch_temp: float = 0.04  # initial teacher patch temperature
    warmup_teacher_temp_epochs: int = 30  # linear warm-up of both teacher temperatures
    center_momentum: float = 0.9  # EMA of the teacher centres
    koleo_weight: float = 0.0  # KoLeo (DINOv2) on the student's global-view [CLS]; 0 = the paper's loss (see presets.py)

    def __post_init__(self) -> None:
        _check(self.variant in ("ibot", "dino"), f"loss.variant must be 'ibot' or 'dino', got {self.variant!r}")
        _check(self.lambda_mim >= 0, f"loss.lambda_mim must be >= 0, got {self.lambda_mim}")
        _check(self.koleo_weight >= 0, f"loss.koleo_weight must be >= 0 (0 turns it off), got {self.koleo_weight}")
        for name in ("student_temp", "teacher_temp", "warmup_teacher_temp", "teacher_patch_temp", "warmup_teacher_patch_temp"):
            _check(getattr(self, name) > 0, f"loss.{name} must be > 0, got {getattr(self, name)}")
        _check(0.0 <= self.center_momentum < 1.0, f"loss.center_momentum must be in [0, 1), got {self.center_momentum}")
        _check(self.warmup_teacher_temp_epochs >= 0, "loss.warmup_teacher_temp_epochs must be >= 0")


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 100  # paper: 100 epochs on 20% / 100% ImageNet-1k
    batch_size: int = 240  # global batch over all workers (paper: 240)
    lr: float = 5e-4  # base lr for batch 256; actual lr = lr * batch_size / 256
    min_lr: float = 1e-6  # cosine end value
    warmup_epochs: int = 10  # linear lr warm-up
    weight_decay: float = 0.04  # cosine start
    weight_decay_end: float = 0.4  # cosine end
    momentum_teacher: float = 0.99  # EMA start: 0.99 for 20% ImageNet, 0.996 for 100%
    clip_grad: float = 3.0  # per-parameter gradient-norm clip; 0 disables
    freeze_last_layer: int = 1  # epochs during which the head's last layer gets no gradient
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA, fp32 on CPU), "fp32", "bf16"

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"optim.epochs must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 1, f"optim.batch_size must be >= 1, got {self.batch_size}")
        _check(self.lr > 0 and self.min_lr >= 0, f"optim.lr must be > 0 and optim.min_lr >= 0, got {self.lr}, {self.min_lr}")
        _check(0 <= self.warmup_epochs <= self.epochs, f"optim.warmup_epochs must be in [0, epochs={self.epochs}], got {self.warmup_epochs}")
        _check(self.weight_decay >= 0 and self.weight_decay_end >= 0, "optim.weight_decay and weight_decay_end must be >= 0")
        _check(0.0 <= self.momentum_teacher <= 1.0, f"optim.momentum_teacher must be in [0, 1], got {self.momentum_teacher}")
        _check(self.clip_grad >= 0, f"optim.clip_grad must be >= 0 (0 disables), got {self.clip_grad}")
        _check(self.freeze_last_layer >= 0, f"optim.freeze_last_layer must be >= 0, got {self.freeze_last_layer}")
        _check(self.precision in ("auto", "fp32", "bf16"), f"optim.precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")


@dataclass(frozen=True)
class DataConfig:
    train_path: str = "data/imagenet/train"  # folder of FFCV .beton shards + manifest.parquet (data_prep)
    val_path: str = "data/imagenet/val"  # held-out split for online k-NN (shards folder)
    knn_train_path: str | None = None  # k-NN memory bank split; None = train_path
    global_crop_size: int = 224  # 2 global crops (14x14 grid at patch 16)
    local_crop_size: int = 96  # m local crops (6x6 grid at patch 16)
    n_global_crops: int = 2  # the method assumes 2 global views
    local_crops_number: int = 6  # m = 6 for 20% runs, 10 for 100%
    global_crops_scale: tuple[float, float] = (0.25, 1.0)  # (s, 1), s = 0.25 for iBOT
    local_crops_scale: tuple[float, float] = (0.05, 0.25)  # (0.05, s)
    eval_resize: int = 256  # eval: resize shorter side, then centre crop to global_crop_size
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # ImageNet normalisation
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    flip_prob: float = 0.5  # horizontal flip of every crop (DINO/iBOT: 0.5; 0 for data whose mirror image is another class, e.g. digits)
    color_jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)  # brightness, contrast, saturation, hue
    color_jitter_prob: float = 0.8
    grayscale_prob: float = 0.2
    blur_prob: tuple[float, float, float] = (1.0, 0.1, 0.5)  # global 1, global 2, local
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # Gaussian blur sigma ~ U(a, b) in pixels (SPEC §5, sized for 224 px crops)
    solarize_prob: float = 0.2  # global 2 only
    num_workers: int = 2  # FFCV decode threads per Ray Train worker
    seed: int = 0  # shuffling seed (reshuffled per epoch from seed + epoch)

    def __post_init__(self) -> None:
        _check(self.global_crop_size > 0 and self.local_crop_size > 0, "data crop sizes must be > 0")
        _check(self.n_global_crops == 2, f"data.n_global_crops must be 2 (the method pairs two global views), got {self.n_global_crops}")
        _check(self.local_crops_number >= 0, f"data.local_crops_number must be >= 0, got {self.local_crops_number}")
        _unit_range("data.global_crops_scale", self.global_crops_scale)
        _unit_range("data.local_crops_scale", self.local_crops_scale)
        _check(self.global_crops_scale[0] > 0 and self.local_crops_scale[0] > 0, "data crop scales must start above 0")
        _check(self.eval_resize >= self.global_crop_size, f"data.eval_resize ({self.eval_resize}) must be >= global_crop_size ({self.global_crop_size})")
        for name in ("flip_prob", "color_jitter_prob", "grayscale_prob", "solarize_prob"):
            _check(0.0 <= getattr(self, name) <= 1.0, f"data.{name} must be in [0, 1], got {getattr(self, name)}")
        _check(0.0 < self.blur_sigma[0] <= self.blur_sigma[1], f"data.blur_sigma must satisfy 0 < a <= b, got {self.blur_sigma}")
        _check(len(self.blur_prob) == 3 and all(0 <= p <= 1 for p in self.blur_prob), f"data.blur_prob must be 3 probabilities, got {self.blur_prob}")
        _check(len(self.mean) == 3 and len(self.std) == 3 and all(s > 0 for s in self.std), "data.mean/std must be 3 values each, std > 0")
        _check(self.num_workers >= 1, f"data.num_workers must be >= 1, got {self.num_workers}")


@dataclass(frozen=True)
class EvalConfig:
    eval_every: int = 10  # online k-NN every N epochs (and at the end)
    knn_k: tuple[int, ...] = (10, 20, 100, 200)  # k values; k=20 is the headline metric
    knn_temperature: float = 0.07  # vote weight exp(cos / T)
    knn_feature: str = "cls"  # "cls" (last-layer [CLS]) or "gap" (mean of patch tokens, Table A10)
    knn_chunk: int = 1024  # queries per similarity chunk (bounds memory)
    fewshot_nu: tuple[int, ...] = (1, 5, 10, 20)  # images per class
    fewshot_tries: int = 5  # per-class slices averaged
    linear_epochs: int = 100  # linear probe epochs (SPEC §6)
    linear_lr: float = 1e-3  # linear probe base lr (scaled by batch/256)
    linear_batch_size: int = 256
    linear_mode: str = "fast"  # "fast": cached centre-crop features, no augmentation; "full": RandomResizedCrop+flip each epoch (SPEC §6)
    masked_ratios: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7)  # Table A11
    batch_size: int = 256  # feature-extraction batch
    num_cpus: float = 1.0  # Ray resources per evaluation task
    num_gpus: float = 0.0
    foreground_threshold: float | None = None  # de-normalised intensity above which a pixel is foreground (grayscale data): fg_attention_share at the online k-NN; None = off
    retrieval_k: tuple[int, ...] = (1, 2, 4, 8)  # Recall@k of the retrieval task (Table 8)
    retrieval_path: str | None = None  # the retrieval split (classes never trained on); None = the val split
    retrieval_gallery_path: str | None = None  # a separate gallery split (In-Shop); None = the retrieval split queries itself (CUB, Cars, SOP)
    in9_root: str | None = None  # the in9 task's data: a data_prep.in9 OUT folder (train/ = IN-9 Original train, one folder per variant)
    # fine-tuning (Table 6), defaults from the reference's transfer script (DeiT recipe, evaluation/eval_transfer_finetuning.py)
    finetune_epochs: int = 300  # script default; its README runs 500 (CIFAR) and 1000 (Flowers)
    finetune_lr: float = 7.5e-6  # AdamW lr per 512 images of batch (README), scaled by batch/512; cosine to finetune_min_lr
    finetune_min_lr: float = 1e-5  # end of the cosine (the script's --min-lr, absolute, not scaled)
    finetune_batch_size: int = 128
    finetune_warmup_epochs: int = 5
    finetune_weight_decay: float = 0.05
    finetune_layer_decay: float = 1.0  # block b of L gets lr x decay^(L - b); 1.0 = none (the reference); BEiT/iBOT use 0.65-0.75
    finetune_label_smoothing: float = 0.1
    finetune_mixup: float = 0.8  # mixup alpha (0 = off); with cutmix, one of the two per batch (switch prob 0.5)
    finetune_cutmix: float = 1.0  # cutmix alpha (0 = off)
    finetune_drop_path: float = 0.1
    finetune_crop_scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop area range of the train views (torchvision/reference default)
    finetune_init: str = "checkpoint"  # "checkpoint" (the pre-trained backbone) or "random" (the same ViT from scratch)

    def __post_init__(self) -> None:
        _check(self.foreground_threshold is None or 0.0 < self.foreground_threshold < 1.0,
               f"eval.foreground_threshold must be in (0, 1) or None, got {self.foreground_threshold}")
        _check(self.eval_every >= 1, f"eval.eval_every must be >= 1, got {self.eval_every}")
        _check(len(self.knn_k) > 0 and all(k >= 1 for k in self.knn_k), f"eval.knn_k must be positive ints, got {self.knn_k}")
        _check(self.knn_temperature > 0, "eval.knn_temperature must be > 0")
        _check(self.knn_feature in ("cls", "gap"), f"eval.knn_feature must be 'cls' or 'gap', got {self.knn_feature!r}")
        _check(all(n >= 1 for n in self.fewshot_nu) and self.fewshot_tries >= 1, "eval.fewshot_nu and fewshot_tries must be >= 1")
        _check(all(0.0 <= r < 1.0 for r in self.masked_ratios), f"eval.masked_ratios must be in [0, 1), got {self.masked_ratios}")
        _check(self.batch_size >= 1 and self.knn_chunk >= 1 and self.linear_batch_size >= 1, "eval batch sizes must be >= 1")
        _check(self.linear_epochs >= 1, f"eval.linear_epochs must be >= 1, got {self.linear_epochs}")
        _check(self.linear_mode in ("fast", "full"), f"eval.linear_mode must be 'fast' or 'full', got {self.linear_mode!r}")
        _check(self.num_cpus >= 0 and self.num_gpus >= 0, "eval.num_cpus/num_gpus must be >= 0")
        _check(len(self.retrieval_k) > 0 and all(k >= 1 for k in self.retrieval_k), f"eval.retrieval_k must be positive ints, got {self.retrieval_k}")
        _check(self.finetune_epochs >= 1 and self.finetune_batch_size >= 1 and 0 <= self.finetune_warmup_epochs <= self.finetune_epochs,
               "eval.finetune_epochs and finetune_batch_size must be >= 1, finetune_warmup_epochs in [0, finetune_epochs]")
        _check(self.finetune_lr > 0 and self.finetune_min_lr >= 0, "eval.finetune_lr must be > 0 and finetune_min_lr >= 0")
        _check(0 < self.finetune_layer_decay <= 1, f"eval.finetune_layer_decay must be in (0, 1], got {self.finetune_layer_decay}")
        _check(0 <= self.finetune_label_smoothing < 1 and self.finetune_mixup >= 0 and self.finetune_cutmix >= 0
               and 0 <= self.finetune_drop_path < 1 and self.finetune_weight_decay >= 0,
               "eval.finetune_label_smoothing and finetune_drop_path must be in [0, 1), finetune_mixup/cutmix/weight_decay >= 0")
        _check(0 < self.finetune_crop_scale[0] <= self.finetune_crop_scale[1] <= 1,
               f"eval.finetune_crop_scale must be (low, high) with 0 < low <= high <= 1, got {self.finetune_crop_scale}")
        _check(self.finetune_init in ("checkpoint", "random"), f"eval.finetune_init must be 'checkpoint' or 'random', got {self.finetune_init!r}")


@dataclass(frozen=True)
class ScalingConfig:
    num_workers: int = 1  # Ray Train workers (DDP ranks); 0 runs the loop in the trial process
    use_gpu: bool = False  # one GPU per worker when True
    cpus_per_worker: float = 1.0  # Ray CPUs per Train worker
    checkpoint_every: int = 500  # steps between checkpoints (plus one at each epoch end)
    num_to_keep: int = 2  # checkpoints kept per trial
    max_failures: int = 0  # Ray Train FailureConfig: worker-group restarts from the last checkpoint
    log_every: int = 20  # steps between progress reports (host syncs happen only then)

    def __post_init__(self) -> None:
        _check(self.num_workers >= 0, f"scaling.num_workers must be >= 0, got {self.num_workers}")
        _check(self.cpus_per_worker > 0, f"scaling.cpus_per_worker must be > 0, got {self.cpus_per_worker}")
        _check(self.checkpoint_every >= 1 and self.num_to_keep >= 1 and self.log_every >= 1,
               "scaling.checkpoint_every, num_to_keep and log_every must be >= 1")
        _check(self.max_failures >= -1, "scaling.max_failures must be >= -1 (-1: unlimited)")


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "attmask"  # experiment name (folder under storage); no timestamps, resume needs it stable
    seed: int = 0  # global seed (model init, masks); data shuffling uses data.seed
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)

    def __post_init__(self) -> None:
        _check(is_plain_name(self.name), f"name {self.name!r} must use letters, digits, '_', '-', '.' only")
        _check(0 <= self.seed < 2**32 and 0 <= self.data.seed < 2**32,
               f"seed and data.seed must be in [0, 2**32), got {self.seed} and {self.data.seed}")
        depth = self.model.resolved_depth
        if self.mask.attn_layer is not None:
            _check(1 <= self.mask.attn_layer <= depth, f"mask.attn_layer must be in [1, {depth}] for a {depth}-block model, got {self.mask.attn_layer}")
        p = self.model.patch_size
        for name in ("global_crop_size", "local_crop_size"):
            size = getattr(self.data, name)
            _check(size % p == 0, f"data.{name} ({size}) must be divisible by model.patch_size ({p})")
        workers = max(self.scaling.num_workers, 1)
        _check(self.optim.batch_size % workers == 0,
               f"optim.batch_size ({self.optim.batch_size}) must be divisible by scaling.num_workers ({workers})")

    @property
    def attn_layer(self) -> int:
        """The resolved 1-based teacher layer whose [CLS] attention drives masking."""
        return self.mask.attn_layer or self.model.resolved_depth
