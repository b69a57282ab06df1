"""FFCV decoder that decodes each image ONCE and cuts every multi-crop view from it.

One FFCV pipeline per crop would decode the JPEG 2 + m times; this single numba operation
decodes once into a scratch buffer, then writes 2 global + m local RandomResizedCrops
(area/linear resize via FFCV's OpenCV ``resize_crop``) into one flat uint8 row per sample:

    row = [global_1 (G*G*3) | global_2 (G*G*3) | local_1 (L*L*3) | ... | local_m (L*L*3)]

each crop stored HWC. :func:`crop_views_hwc` turns a batch of rows into [B, S, S, 3] views.

The decode threads split each batch by :func:`thread_plan` (balanced encoded bytes per
thread) rather than FFCV's equal-count contiguous runs, so the per-batch barrier does not
wait on the thread that drew the large images. The compiled batch loop is shared by every
FFCV Loader with the same decoder configuration (the loaders build one Loader per shard),
so a many-shard dataset pays the numba compile of the decode work once, not once per shard.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import replace
from typing import Callable

import numba
import numpy as np
import torch
from ffcv.fields.rgb_image import IMAGE_MODES, get_center_crop, get_random_crop
from ffcv.libffcv import imdecode, resize_crop
from ffcv.pipeline.allocation_query import AllocationQuery
from ffcv.pipeline.compiler import Compiler
from ffcv.pipeline.operation import Operation
from ffcv.pipeline.state import State

from attmask_ray.data.device_crops import RATIO



def crop_layout(global_size: int, local_size: int, n_local: int) -> list[tuple[int, int]]:
    """[(byte offset, side)] of each crop inside a row: 2 globals then ``n_local`` locals."""
    sides = [global_size, global_size] + [local_size] * n_local
    out, off = [], 0
    for s in sides:
        out.append((off, s))
        off += s * s * 3
    return out


def crop_views_hwc(rows: torch.Tensor, layout: list[tuple[int, int]]) -> list[torch.Tensor]:
    """rows [B, K] uint8 -> list of crops [B, S, S, 3] uint8 (views into rows, HWC as stored)."""
    b = rows.shape[0]
    return [rows[:, off:off + s * s * 3].view(b, s, s, 3) for off, s in layout]


def thread_plan(cost: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a batch's samples over ``threads`` decode threads with balanced total cost.

    cost [n] int64 (encoded bytes: decode time tracks them, r = 0.99 on JPEG photos) ->
    (order [n] sample indices, starts [T + 1]); thread t decodes ``order[starts[t]:starts[t+1]]``.
    Greedy longest-first onto the least-loaded thread; T = min(threads, n) >= 1 (n = 0: T = 1).
    FFCV's prange would split the batch into equal-count contiguous runs regardless of cost:
    with 8 threads x 128 photos that idles ~5% of the decode time at each per-batch barrier.
    """
    n = cost.shape[0]
    t = max(1, min(threads, n))
    by_cost = np.arange(n)
    for i in range(1, n):  # insertion sort by decreasing cost, stable (n is one batch; compiles fast)
        j = i
        while j > 0 and cost[by_cost[j - 1]] < cost[by_cost[j]]:
            by_cost[j - 1], by_cost[j] = by_cost[j], by_cost[j - 1]
            j -= 1
    load = np.zeros(t, np.int64)
    owner = np.empty(n, np.int64)
    counts = np.zeros(t, np.int64)
    for i in by_cost:
        k = 0
        for q in range(1, t):  # least-loaded thread
            if load[q] < load[k]:
                k = q
        owner[i] = k
        load[k] += cost[i]
        counts[k] += 1
    starts = np.zeros(t + 1, np.int64)
    for q in range(t):
        starts[q + 1] = starts[q] + counts[q]
    fill = starts[:-1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):  # batch order kept within a thread's run
        order[fill[owner[i]]] = i
        fill[owner[i]] += 1
    return order, starts


def _libc_memmove() -> Callable:
    """libc ``memmove(dst, src, n)`` as a ctypes function numba code can call with integer addresses."""
    fn = ctypes.CDLL(None).memmove
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    fn.restype = ctypes.c_void_p
    return fn


_BATCH_LOOPS: dict[tuple, Callable] = {}  # (decoder type, key, parallel) -> compiled batch loop


def _is_os_cache_reader(mem_read: Callable) -> bool:
    """True for the reader of FFCV's OSCacheManager (``os_cache=True``), whose state is (mmap, ptrs, sizes)."""
    fn = getattr(mem_read, "py_func", mem_read)
    return getattr(fn, "__qualname__", "") == "OSCacheManager.compile_reader.<locals>.read"


def _os_cache_read(address, state):
    """FFCV 1.0.2 OSCacheManager's reader: the encoded bytes of the sample at ``address``."""
    size = state[2][np.searchsorted(state[1], address)]
    return state[0][address:address + size]


@functools.cache
def _os_cache_reader() -> Callable:
    """:func:`_os_cache_read` compiled once per process."""
    return Compiler.compile(_os_cache_read)


class _DecodeOnce(Operation):
    """Shared plumbing: output rows of ``row_bytes``, a scratch buffer for one full decode per
    sample, and the decode loop; a subclass supplies :meth:`emitter`, the compiled step that
    writes a sample's output row from its decoded image."""

    needs_scratch = True  # False: the decoder writes straight into its row (1-byte placeholder scratch)

    def __init__(self, row_bytes: int):
        super().__init__()
        self.row_bytes = row_bytes

    def declare_state_and_memory(self, previous_state: State) -> tuple[State, tuple[AllocationQuery, AllocationQuery]]:
        max_w = np.uint64(self.metadata["width"].max())
        max_h = np.uint64(self.metadata["height"].max())
        out = (self.row_bytes,)
        u8 = np.dtype("<u1")
        return (replace(previous_state, jit_mode=True, shape=out, dtype=u8),
                (AllocationQuery(out, u8),
                 AllocationQuery((max_h * max_w * np.uint64(3) if self.needs_scratch else 1,), u8)))

    def emitter(self) -> Callable:
        """Compiled ``emit(image [h, w, 3] uint8, row [row_bytes] uint8)``: the sample's output row from its image."""
        raise NotImplementedError

    def sample_step(self) -> Callable:
        """Compiled ``step(encoded, is_jpg, height, width, scratch, row)`` for one sample.

        Default: decode into ``scratch`` (raw images are used in place), then :meth:`emitter`.
        """
        imdecode_c = Compiler.compile(imdecode)
        emit = self.emitter()

        def step(encoded, is_jpg, height, width, scratch, row):
            if is_jpg:
                imdecode_c(encoded, scratch, height, width, height, width, 0, 0, 1, 1, False, False)
                image = scratch[:3 * height * width].reshape(height, width, 3)
            else:
                image = encoded.reshape(height, width, 3)
            emit(image, row)

        return Compiler.compile(step)

    def key(self) -> tuple:
        """What the compiled per-sample step depends on (decoders with equal keys share compiled code)."""
        raise NotImplementedError

    def generate_code(self) -> Callable:
        parallel = Compiler.num_threads > 1
        mem_read = self.memory_read
        if _is_os_cache_reader(mem_read):
            # one compiled batch loop per decoder configuration, shared by every Loader (one per shard)
            key = (type(self), self.key(), parallel)
            if key not in _BATCH_LOOPS:
                _BATCH_LOOPS[key] = self._batch_loop(_os_cache_reader(), parallel)
            batch_loop = _BATCH_LOOPS[key]
        else:  # another FFCV memory manager: compiled for this Loader
            batch_loop = self._batch_loop(mem_read, parallel)
        # FFCV's thread count for this Loader (num_workers), fixed when its pipeline is compiled; read
        # here rather than with numba.get_num_threads() inside the compiled decode, which fails to
        # type once numba's threading layer has been used by another loader in the same process
        num_threads = max(1, int(Compiler.num_threads))

        def decode(batch_indices, my_storage, metadata, storage_state):
            destination, temp_storage = my_storage
            batch_loop(batch_indices, destination, temp_storage, metadata, storage_state, num_threads)
            return destination[:len(batch_indices)]

        decode.is_parallel = False  # the prange lives in batch_loop
        return decode

    def _batch_loop(self, mem_read: Callable, parallel: bool) -> Callable:
        """Compiled ``loop(batch_indices, destination, scratch, metadata, storage_state, threads)``:
        decode every sample of a batch into its row; with several threads the batch is split by
        :func:`thread_plan` (one thread: batch order, and no plan to compile)."""
        step = self.sample_step()
        jpg = IMAGE_MODES["jpg"]

        if not parallel:  # one thread: batch order, nothing to plan
            def loop(batch_indices, destination, temp_storage, metadata, storage_state, threads):
                for k in range(len(batch_indices)):
                    field = metadata[batch_indices[k]]
                    step(mem_read(field["data_ptr"], storage_state), field["mode"] == jpg, np.uint32(field["height"]),
                         np.uint32(field["width"]), temp_storage[k], destination[k])

            return Compiler.compile(loop)
        plan = Compiler.compile(thread_plan)

        def parallel_loop(batch_indices, destination, temp_storage, metadata, storage_state, threads):
            n = len(batch_indices)
            cost = np.empty(n, np.int64)
            for k in range(n):
                cost[k] = mem_read(metadata[batch_indices[k]]["data_ptr"], storage_state).shape[0]
            order, starts = plan(cost, threads)
            for t in numba.prange(len(starts) - 1):  # one iteration per thread: numba gives each its own
                for k in range(starts[t], starts[t + 1]):
                    dst_ix = order[k]
                    field = metadata[batch_indices[dst_ix]]
                    step(mem_read(field["data_ptr"], storage_state), field["mode"] == jpg, np.uint32(field["height"]),
                         np.uint32(field["width"]), temp_storage[dst_ix], destination[dst_ix])

        parallel_loop.is_parallel = True
        return Compiler.compile(parallel_loop)


class MultiCropDecoder(_DecodeOnce):
    """Decode once, emit 2 global (scale ``global_scale``) + ``n_local`` local crops per sample.

    Output per batch: [B, 2*G*G*3 + n_local*L*L*3] uint8 (see :func:`crop_layout`).
    """

    def __init__(self, global_size: int, local_size: int, n_local: int,
                 global_scale: tuple[float, float], local_scale: tuple[float, float]):
        self.layout = crop_layout(global_size, local_size, n_local)
        off, s = self.layout[-1]
        super().__init__(off + s * s * 3)
        self.global_size, self.local_size, self.n_local = global_size, local_size, n_local
        self.global_scale, self.local_scale = np.array(global_scale), np.array(local_scale)

    def key(self) -> tuple:
        return (self.global_size, self.local_size, self.n_local, tuple(self.global_scale), tuple(self.local_scale))

    def emitter(self) -> Callable:
        resize_crop_c = Compiler.compile(resize_crop)
        crop_c = Compiler.compile(get_random_crop)
        gs, ls, n_local = self.global_size, self.local_size, self.n_local
        gscale, lscale, ratio = self.global_scale, self.local_scale, np.array(RATIO)
        gbytes, lbytes = gs * gs * 3, ls * ls * 3

        def emit(image, row):
            height, width = image.shape[0], image.shape[1]
            for c in range(2):
                i, j, h, w = crop_c(height, width, gscale, ratio)
                resize_crop_c(image, i, i + h, j, j + w, row[c * gbytes:(c + 1) * gbytes].reshape(gs, gs, 3))
            for c in range(n_local):
                o = 2 * gbytes + c * lbytes
                i, j, h, w = crop_c(height, width, lscale, ratio)
                resize_crop_c(image, i, i + h, j, j + w, row[o:o + lbytes].reshape(ls, ls, 3))

        return Compiler.compile(emit)


class CenterCropDecoder(_DecodeOnce):
    """Eval view: resize shorter side to ``resize`` then centre-crop ``size`` (one resample).

    Output per batch: [B, size*size*3] uint8 (HWC).
    """

    def __init__(self, size: int, resize: int):
        super().__init__(size * size * 3)
        self.size, self.ratio = size, size / resize

    def key(self) -> tuple:
        return (self.size, self.ratio)

    def emitter(self) -> Callable:
        resize_crop_c = Compiler.compile(resize_crop)
        crop_c = Compiler.compile(get_center_crop)
        size, ratio = self.size, self.ratio

        def emit(image, row):
            i, j, h, w = crop_c(image.shape[0], image.shape[1], None, ratio)
            resize_crop_c(image, i, i + h, j, j + w, row.reshape(size, size, 3))

        return Compiler.compile(emit)


class FullImageDecoder(_DecodeOnce):
    """Decode once and emit the whole image, top-left aligned in a [Hmax, Wmax, 3] slot.

    Output per batch: [B, Hmax*Wmax*3] uint8; sample b's pixels are rows [:h_b, :w_b] of
    ``row.view(Hmax, Wmax, 3)`` (the rest is stale). The crops are then cut on the device
    (:mod:`attmask_ray.data.device_crops`), so the host only decodes.
    """

    needs_scratch = False

    def __init__(self, max_height: int, max_width: int):
        super().__init__(max_height * max_width * 3)
        self.max_height, self.max_width = max_height, max_width

    def key(self) -> tuple:
        return (self.max_height, self.max_width)

    def sample_step(self) -> Callable:
        imdecode_c = Compiler.compile(imdecode)
        memmove = _libc_memmove()
        stride = self.max_width * 3

        def step(encoded, is_jpg, height, width, scratch, row):
            line = width * 3
            if is_jpg:
                # decode straight into the slot (packed rows), then spread narrower images to the
                # slot stride in place, bottom row first: a row only moves right, onto bytes whose
                # own row has already moved (no cold scratch buffer, ~10% faster on mixed sizes)
                imdecode_c(encoded, row, height, width, height, width, 0, 0, 1, 1, False, False)
                if line != stride:
                    base = row.ctypes.data
                    for r in range(height - 1, 0, -1):
                        memmove(base + r * stride, base + r * line, line)  # libc: overlap-safe, vectorised
            else:
                for r in range(height):
                    row[r * stride:r * stride + line] = encoded[r * line:(r + 1) * line]

        return Compiler.compile(step)
