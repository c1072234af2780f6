"""Attention heatmaps and training curves, written as PNG files.

The figures are drawn with matplotlib's object-oriented API on the Agg
canvas, so nothing global (such as the pyplot backend) is changed and no
display is needed.
"""

import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "plot_attention",
    "plot_attention_heads",
    "plot_training_curves",
]

_MAX_HEAD_COLUMNS = 4


def _save(figure, path):
    FigureCanvasAgg(figure)
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _visible(token):
    return "␣" if token == " " else token


def plot_attention(examples, path, columns=None):
    """Draws one attention heatmap per example into a PNG file.

    Args:
        examples: a list of `(input_tokens, output_tokens, weights)`: the
            input characters (x axis), the output characters (y axis) and a
            `(len(output_tokens), len(input_tokens))` array of attention
            weights (larger arrays, e.g. padded ones, are cropped).
        path: the PNG file to write.
        columns: optional int, the number of heatmaps per row. Defaults to
            `min(3, len(examples))`.

    Returns:
        `path`.

    Example:

    >>> weights = np.eye(3)
    >>> plot_attention([(list("abc"), list("xyz"), weights)],
    ...                "/tmp/attention.png")
    '/tmp/attention.png'
    """
    if not examples:
        raise ValueError("`examples` is empty. Received: examples=[]")
    columns = columns or min(3, len(examples))
    rows = math.ceil(len(examples) / columns)
    figure = Figure(figsize=(4.5 * columns, 3.5 * rows), layout="constrained")
    for index, (inputs, outputs, weights) in enumerate(examples):
        weights = np.asarray(weights, dtype="float32")
        if weights.ndim != 2:
            raise ValueError(
                "Attention weights must be a 2-D (output, input) array. "
                f"Received: weights.shape={weights.shape}"
            )
        weights = weights[: len(outputs), : len(inputs)]
        axes = figure.add_subplot(rows, columns, index + 1)
        image = axes.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0)
        axes.set_xticks(range(len(inputs)))
        axes.set_xticklabels([_visible(t) for t in inputs], fontsize=7)
        axes.set_yticks(range(len(outputs)))
        axes.set_yticklabels([_visible(t) for t in outputs], fontsize=7)
        axes.set_xlabel("input")
        axes.set_ylabel("output")
        axes.set_title("".join(inputs), fontsize=8)
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    return _save(figure, path)


def plot_training_curves(history, path, metrics=("loss", "val_exact_match")):
    """Plots per-epoch values (loss, exact match, ...) into a PNG file.

    Args:
        history: a dict from metric name to the list of its per-epoch
            values, e.g. `keras.callbacks.History().history`.
        path: the PNG file to write.
        metrics: the names to plot, one panel each; missing names are
            skipped. Defaults to `("loss", "val_exact_match")`.

    Returns:
        `path`.

    Example:

    >>> plot_training_curves({"loss": [1.0, 0.5]}, "/tmp/curves.png")
    '/tmp/curves.png'
    """
    present = [name for name in metrics if history.get(name)]
    if not present:
        raise ValueError(
            f"`history` has none of the metrics {tuple(metrics)}. "
            f"Received: keys {sorted(history)}"
        )
    figure = Figure(figsize=(4.5 * len(present), 3.5))
    for index, name in enumerate(present):
        values = list(history[name])
        epochs = range(1, len(values) + 1)
        axes = figure.add_subplot(1, len(present), index + 1)
        axes.plot(epochs, values, marker="o")
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        axes.set_title(name)
        if name == "loss":
            axes.set_yscale("log")
        axes.grid(True, alpha=0.3)
    return _save(figure, path)


def plot_attention_heads(tokens, scores, path, title=None):
    """Draws one attention heatmap per head (and per layer) into a PNG.

    Args:
        tokens: the `n` token strings of one example, which label both
            axes (queries down, keys across).
        scores: the attention weights of that example,
            `(num_heads, q, k)` for one layer or `(num_layers, num_heads,
            q, k)` for several (one row of heads per layer), with
            `q, k >= n`; positions past `n` (padding) are cropped.
        path: the PNG file to write.
        title: optional figure title. Defaults to `None`.

    Returns:
        `path`.

    Example:

    >>> scores = np.full((2, 3, 3), 1 / 3)
    >>> plot_attention_heads(["the", "cat", "sat"], scores,
    ...                      "/tmp/heads.png")
    '/tmp/heads.png'
    """
    tokens = [str(token) for token in tokens]
    scores = np.asarray(scores, dtype="float32")
    if scores.ndim == 3:
        scores = scores[np.newaxis]  # (1, heads, q, k)
    if scores.ndim != 4:
        raise ValueError(
            "`scores` must be (num_heads, q, k) or (num_layers, num_heads, "
            f"q, k). Received: scores.shape={scores.shape}"
        )
    num_layers, num_heads, q_len, k_len = scores.shape
    if not tokens or len(tokens) > min(q_len, k_len):
        raise ValueError(
            f"`tokens` must hold 1 to min(q, k) = {min(q_len, k_len)} "
            f"tokens. Received: {len(tokens)} tokens for "
            f"scores.shape={scores.shape}"
        )
    n = len(tokens)
    labels = [_visible(token) for token in tokens]
    columns = num_heads if num_layers > 1 else min(num_heads, _MAX_HEAD_COLUMNS)
    rows = num_layers * math.ceil(num_heads / columns)
    size = max(3.0, 0.25 * n)
    figure = Figure(
        figsize=(size * columns + 1, size * rows + 0.5), layout="constrained"
    )
    fontsize = 7 if n <= 40 else 5
    for layer in range(num_layers):
        for head in range(num_heads):
            index = layer * math.ceil(num_heads / columns) * columns + head
            axes = figure.add_subplot(rows, columns, index + 1)
            image = axes.imshow(
                scores[layer, head, :n, :n], cmap="viridis", vmin=0.0
            )
            axes.set_xticks(range(n))
            axes.set_xticklabels(labels, rotation=90, fontsize=fontsize)
            axes.set_yticks(range(n))
            axes.set_yticklabels(labels, fontsize=fontsize)
            name = f"head {head}"
            if num_layers > 1:
                name = f"layer {layer}, {name}"
            axes.set_title(name, fontsize=9)
            figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    if title:
        figure.suptitle(title)
    return _save(figure, path)
