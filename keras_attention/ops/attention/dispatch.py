"""Which kernel computes an attention call: a pure function of its inputs.

`choose_strategy` maps (backend, requested implementation, static shapes,
whether weights or dropout are wanted, the kernel family in use) to a
`Strategy`. It reads no tensor, no device and no global state, so every
rule is unit-tested directly. The kernels it names:

- `"dense"` (every backend): one batched product that keeps the n^2
  weights;
- `"tiled"` (TensorFlow): cache-sized query tiles;
- `"blockwise"` (JAX, PyTorch): blocks recomputed in the backward pass,
  memory linear in n;
- `"fused"` (PyTorch): `torch.nn.functional.scaled_dot_product_attention`.

TensorFlow's `"tiled"` kernel keeps the tiles' weights for the backward
pass (`keep_weights=True`, the dense implementation of long sequences on a
CPU) or recomputes them (the chunked implementation).
"""

import collections

__all__ = [
    "AUTO_CHUNKED_MIN_SCORE_BYTES",
    "WINDOW_CHUNKED_MIN_RATIO",
    "WINDOW_CHUNKED_MIN_SCORE_BYTES",
    "IMPLEMENTATIONS",
    "Strategy",
    "choose_strategy",
    "static_score_bytes",
]

IMPLEMENTATIONS = ("auto", "dense", "chunked")
# `implementation="auto"` switches to the memory-efficient path when the
# float32 score matrix (batch, heads, q_len, k_len) would take at least this
# much memory (an unknown batch size counts as 1, an unknown length as
# short). Below it the dense path is faster on CPU; above it memory
# dominates.
AUTO_CHUNKED_MIN_SCORE_BYTES = 2**30
# With a sliding window the chunked path skips the blocks outside it, so
# `"auto"` takes it already from this score size, when the keys are at
# least `WINDOW_CHUNKED_MIN_RATIO` windows long.
WINDOW_CHUNKED_MIN_SCORE_BYTES = 2**24
WINDOW_CHUNKED_MIN_RATIO = 4

Strategy = collections.namedtuple(
    "Strategy", ["kernel", "chunk_size", "keep_weights"]
)
Strategy.__doc__ = """The kernel of one attention call.

Args:
    kernel: `"dense"`, `"tiled"`, `"blockwise"` or `"fused"`.
    chunk_size: query rows per tile or block, or `None` for the kernel's
        own choice.
    keep_weights: bool, whether a tiled kernel keeps its weights for the
        backward pass (else it recomputes them).
"""


def static_score_bytes(query_shape, key_shape):
    """Bytes of the float32 scores, from static shapes (0 if unknown)."""
    batch, q_len, heads = query_shape[:3]
    k_len = key_shape[1]
    if q_len is None or k_len is None or heads is None:
        return 0
    return (batch or 1) * heads * q_len * k_len * 4


def _chunked_pays(query_shape, key_shape, window):
    """Whether `"auto"` should take the chunked path, from static shapes."""
    score_bytes = static_score_bytes(query_shape, key_shape)
    if score_bytes >= AUTO_CHUNKED_MIN_SCORE_BYTES:
        return True
    k_len = key_shape[1]
    return (
        window is not None
        and k_len is not None
        and k_len >= WINDOW_CHUNKED_MIN_RATIO * window
        and score_bytes >= WINDOW_CHUNKED_MIN_SCORE_BYTES
    )


def _dense_tiles(query_shape, key_shape, chunk_size, dense_tile_min_bytes):
    """Whether TensorFlow's dense implementation should run tile by tile.

    Decided from static shapes: with a length unknown until run time it
    keeps one batched matmul (a run-time branch between the two would not
    compile under XLA, whose tile loop needs sizes known at compile time).
    """
    if chunk_size is not None:
        return True
    q_len, k_len = query_shape[1], key_shape[1]
    if q_len is None or k_len is None or dense_tile_min_bytes is None:
        return False
    return q_len * k_len * 4 >= dense_tile_min_bytes


def choose_strategy(
    backend,
    implementation,
    query_shape,
    key_shape,
    return_weights=False,
    dropout=False,
    training=None,
    chunk_size=None,
    dense_tile_min_bytes=None,
    window=None,
    soft_cap=False,
):
    """The `Strategy` of one call of `scaled_dot_product_attention`.

    Args:
        backend: `"tensorflow"`, `"jax"`, `"torch"` or another Keras
            backend name (which gets the portable kernels).
        implementation: `"auto"`, `"dense"` or `"chunked"`.
        query_shape: static `(batch, q_len, heads, depth)`, `None` where
            unknown.
        key_shape: static `(batch, k_len, heads, depth)`.
        return_weights: bool, whether the weights are returned.
        dropout: bool, whether dropout is active in this call.
        training: the call's `training` flag (`False`: no backward pass to
            keep weights for).
        chunk_size: the caller's query rows per tile, or `None`.
        dense_tile_min_bytes: TensorFlow only: the per-head score size from
            which the dense implementation tiles for the CPU kernels in use,
            or `None` (a GPU: never tile by itself).
        window: the call's sliding window, or `None`.
        soft_cap: bool, whether the scores are soft-capped.

    Returns:
        A `Strategy`.

    Example:

    >>> choose_strategy("jax", "chunked", (1, 4096, 8, 64), (1, 4096, 8, 64))
    Strategy(kernel='blockwise', chunk_size=None, keep_weights=False)
    """
    if implementation == "auto":
        implementation = (
            "chunked"
            if not return_weights
            and _chunked_pays(query_shape, key_shape, window)
            else "dense"
        )
    if backend == "tensorflow":
        if implementation == "chunked":
            return Strategy("tiled", chunk_size, keep_weights=False)
        if return_weights or not _dense_tiles(
            query_shape, key_shape, chunk_size, dense_tile_min_bytes
        ):
            return Strategy("dense", None, keep_weights=True)
        # An inference call has no backward pass to keep weights for;
        # should one be asked for, it recomputes them.
        return Strategy("tiled", chunk_size, keep_weights=training is not False)
    windowed_blocks = window is not None and implementation == "chunked"
    if backend == "torch" and not (
        return_weights or dropout or soft_cap or windowed_blocks
    ):
        # PyTorch's fused kernel is its fastest at every length, and memory-
        # efficient. Its dropout draws from PyTorch's global generator,
        # which a Keras seed does not reach: seeded dropout uses our blocks
        # (chunked) or the reference (dense); so does a soft cap, which it
        # lacks, and a chunked window, whose blocks see only their keys.
        return Strategy("fused", None, keep_weights=False)
    if implementation == "dense" or backend not in ("jax", "torch"):
        return Strategy("dense", None, keep_weights=True)
    return Strategy("blockwise", chunk_size, keep_weights=False)
