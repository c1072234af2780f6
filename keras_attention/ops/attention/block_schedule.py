"""Which key blocks each query block visits: the work causality and windows
leave.

The memory-efficient kernels cut the queries into blocks of `q_block` rows
and the keys into blocks of `k_block` columns (aligned to multiples of
`k_block`). A query block visits only the key blocks that hold a key one of
its queries may see: those up to the diagonal with `causal`, those of its
window with `window` (positions aligned bottom-right: query `i` sits at key
position `i + k_len - q_len`). Causal attention then does about half the work
of full attention, and a windowed one `n * window` instead of `n^2`.

Pure Python on static lengths: the PyTorch kernel loops over it, the JAX one
turns it into per-block loop bounds, and the tests count its blocks.
"""

__all__ = ["block_is_unmasked", "key_block_range", "key_span", "schedule"]


def key_span(q_start, q_stop, q_len, k_len, causal, window):
    """The keys `[low, high)` that queries `q_start..q_stop-1` may see.

    Example:

    >>> key_span(4, 6, 8, 8, causal=True, window=3)
    (2, 6)
    """
    offset = k_len - q_len
    first_position, last_position = q_start + offset, q_stop - 1 + offset
    low, high = 0, k_len
    if causal:
        high = min(k_len, last_position + 1)
    if window is not None:
        low = max(0, first_position - window + 1)
        if not causal:
            high = min(k_len, last_position + window)
    return low, max(low, high)


def key_block_range(q_start, q_stop, q_len, k_len, k_block, causal, window):
    """The key blocks `[first, stop)` that queries `q_start..q_stop-1` see.

    Args:
        q_start: first query row of the block.
        q_stop: one past its last query row.
        q_len: number of queries.
        k_len: number of keys.
        k_block: keys per key block.
        causal: bool, whether a query sees no key after its position.
        window: the sliding window, or `None`.

    Returns:
        `(first, stop)` key-block indices; `first == stop` when the block
        sees no key.

    Example:

    >>> key_block_range(4, 6, 8, 8, 2, causal=True, window=None)
    (0, 3)
    """
    low, high = key_span(q_start, q_stop, q_len, k_len, causal, window)
    if high == low:
        return 0, 0
    return low // k_block, -(-high // k_block)


def block_is_unmasked(q_start, q_stop, k_start, k_stop, offset, causal, window):
    """Whether causality and the window allow every pair of a block.

    Such a block needs no position mask (one elementwise pass less).
    """
    nearest = q_start + offset - (k_stop - 1)  # smallest query - key
    farthest = q_stop - 1 + offset - k_start  # largest query - key
    if causal and nearest < 0:
        return False
    if window is not None:
        if farthest >= window:
            return False
        if not causal and -nearest >= window:
            return False
    return True


def schedule(q_len, k_len, q_block, k_block, causal, window):
    """Every query block with the key blocks it visits.

    Returns:
        A list of `(q_start, q_stop, [(k_start, k_stop), ...])`, the key
        blocks in increasing order (empty for a block that sees no key).
        With `k_block=None` each query block visits its whole key span as
        one block.

    Example:

    >>> [len(keys) for *_, keys in schedule(6, 6, 2, 2, True, None)]
    [1, 2, 3]
    >>> schedule(6, 6, 2, None, True, 2)[2]
    (4, 6, [(3, 6)])
    """
    plan = []
    for q_start in range(0, q_len, q_block):
        q_stop = min(q_start + q_block, q_len)
        if k_block is None:
            low, high = key_span(q_start, q_stop, q_len, k_len, causal, window)
            plan.append((q_start, q_stop, [(low, high)] if high > low else []))
            continue
        first, stop = key_block_range(
            q_start, q_stop, q_len, k_len, k_block, causal, window
        )
        keys = [
            (j * k_block, min((j + 1) * k_block, k_len))
            for j in range(first, stop)
        ]
        plan.append((q_start, q_stop, keys))
    return plan
