"""Attention heatmaps and training curves, written as PNG files.

`plot_attention` (one heatmap per example), `plot_attention_heads` (one per
head and layer) and `plot_training_curves` draw arrays; the model-aware
helpers run a trained model first and draw what its attention did:
`plot_seq2seq_attention` (a `Seq2SeqTranslator`), `plot_translator_attention`
(a greedy `keras_attention.serving.Translator`),
`plot_classifier_attention` (a `build_transformer_classifier` model) and
`plot_causal_lm_attention` (a `CausalLMGenerator`).

The figures are drawn with matplotlib's object-oriented API on the Agg
canvas, so nothing global (such as the pyplot backend) is changed and no
display is needed.
"""

import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_attention.models.transformer_classifier import CLS_TOKEN
from keras_attention.models.transformer_classifier import (
    build_attention_inspector,
)

__all__ = [
    "plot_attention",
    "plot_attention_heads",
    "plot_causal_lm_attention",
    "plot_classifier_attention",
    "plot_seq2seq_attention",
    "plot_training_curves",
    "plot_translator_attention",
]

_MAX_HEAD_COLUMNS = 4
# The y label of the decoding step that produced the end id.
_END_LABEL = "[END]"
# The most characters of a text shown in a figure title.
_TITLE_CHARACTERS = 70


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


def plot_causal_lm_attention(generator, tokenizer, ids, path, title=None):
    """Draws every head of a language model's self-attention over `ids`.

    Args:
        generator: a `keras_attention.models.CausalLMGenerator` (anything
            whose `attention_scores(ids)` maps `(batch, n)` ids to
            `(batch, [num_layers,] num_heads, n, n)` weights).
        tokenizer: the tokenizer of the ids, with a `vocabulary` list or
            a `get_vocabulary()` method; it labels the axes.
        ids: the `n` token ids of one example, a 1-D array.
        path: the PNG file to write.
        title: optional figure title. Defaults to `None`.

    Returns:
        `path`.
    """
    ids = np.asarray(ids)
    vocabulary = getattr(tokenizer, "vocabulary", None) or (
        tokenizer.get_vocabulary()
    )
    scores = generator.attention_scores(ids[np.newaxis])[0]
    return plot_attention_heads(
        [vocabulary[i] for i in ids], scores, path, title=title
    )


def plot_seq2seq_attention(translator, sources, path):
    """Draws a `Seq2SeqTranslator`'s attention for each source sentence.

    Each source is translated greedily; its heatmap has the source
    characters across, the output characters (and a last `[END]` step)
    down, and the decoder's attention weights as colours.

    Args:
        translator: a `keras_attention.serving.Seq2SeqTranslator`.
        sources: the source strings, one heatmap each.
        path: the PNG file to write.

    Returns:
        `path`.

    Example:

    >>> plot_seq2seq_attention(translator, ["aug 19, 2003"],
    ...                        "/tmp/attention.png")  # doctest: +SKIP
    '/tmp/attention.png'
    """
    sources = list(sources)
    predictions, _, weights = translator.translate(
        sources, return_attention=True
    )
    examples = [
        (list(source), list(prediction) + [_END_LABEL], example_weights)
        for source, prediction, example_weights in zip(
            sources, predictions, weights
        )
    ]
    return plot_attention(examples, path)


def plot_translator_attention(translator, sources, path):
    """Draws a greedy `Translator`'s cross-attention for each source.

    The weights are those the `Translator` returns: the last decoder
    block's cross-attention, averaged over its heads. Each heatmap has the
    source WordPieces (padding left out) across and the generated ones, up
    to and including the end token, down.

    Args:
        translator: a `keras_attention.serving.Translator` with
            `beam_width=1` (beam search returns no attention weights; use
            `translator.greedy()`).
        sources: the source strings, one heatmap each.
        path: the PNG file to write.

    Returns:
        `path`.

    Example:

    >>> plot_translator_attention(translator.greedy(), ["obrigado ."],
    ...                           "/tmp/attention.png")  # doctest: +SKIP
    '/tmp/attention.png'
    """
    # Only a `Translator` gets here, so `serving` is loaded already.
    from keras_attention.serving.constants import SERVING_ATTENTION
    from keras_attention.serving.constants import SERVING_IDS

    if translator.beam_width != 1:
        raise ValueError(
            "Beam search returns no attention weights: pass a greedy "
            "translator (`translator.greedy()`). Received: "
            f"beam_width={translator.beam_width}"
        )
    sources = list(sources)
    outputs = translator(sources)
    source_ids = translator.encode(sources).numpy()  # (batch, src_len)
    output_ids = outputs[SERVING_IDS].numpy()  # (batch, steps)
    weights = outputs[SERVING_ATTENTION].numpy()  # (batch, steps, src_len)
    source_tokenizer = translator.source_tokenizer
    target_tokenizer = translator.target_tokenizer
    examples = []
    for row in range(len(sources)):
        inputs = [
            source_tokenizer.id_to_token(int(i))
            for i in source_ids[row]
            if i != source_tokenizer.padding_id
        ]
        generated = [int(i) for i in output_ids[row]]
        if target_tokenizer.end_id in generated:
            generated = generated[
                : generated.index(target_tokenizer.end_id) + 1
            ]
        outputs_tokens = [target_tokenizer.id_to_token(i) for i in generated]
        examples.append((inputs, outputs_tokens, weights[row]))
    return plot_attention(examples, path)


def plot_classifier_attention(
    model, tokenizer, texts, path, class_names=None, max_tokens=None
):
    """Draws every head's attention of a text classifier for one text.

    Of `texts`, the one with the fewest tokens (but at least one, if any
    has) is drawn, cut to `max_tokens` tokens so that its labels stay
    readable: `build_attention_inspector(model)` gives its attention
    weights, drawn by `plot_attention_heads` with one row of heads per
    layer (and the class token first for a model with `pooling="cls"`).
    The title is the text and the predicted class with its probability.

    Args:
        model: a classifier built by `build_transformer_classifier`.
        tokenizer: the tokenizer it was trained with, e.g. a
            `WordPieceTokenizer`: called on a list of strings it returns
            ragged ids, and `id_to_token` names an id.
        texts: the candidate texts, a non-empty list of str.
        path: the PNG file to write.
        class_names: optional names of the class ids, for the title.
            Defaults to `None` (the title shows the class id).
        max_tokens: optional int, the most tokens drawn. Defaults to
            `None` (all).

    Returns:
        The text that was drawn.

    Example:

    >>> plot_classifier_attention(model, tokenizer, ["a fine film", "bad"],
    ...                           "/tmp/heads.png")  # doctest: +SKIP
    'bad'
    """
    texts = list(texts)
    if not texts:
        raise ValueError("`texts` is empty. Received: texts=[]")
    lengths = [int(n) for n in tokenizer(texts).row_lengths().numpy()]
    candidates = [i for i, n in enumerate(lengths) if n > 0] or [0]
    text = texts[min(candidates, key=lambda i: lengths[i])]
    ids = tokenizer([text])[:, :max_tokens].to_tensor()  # (1, len)
    tokens = [tokenizer.id_to_token(int(i)) for i in ids.numpy()[0]]
    scores = build_attention_inspector(model).predict(ids, verbose=0)
    scores = np.stack(
        [scores[name][0] for name in sorted(scores)]
    )  # (layers, heads, len, len)
    if scores.shape[-1] > len(tokens):  # the class token comes first
        tokens = [CLS_TOKEN] + tokens
    probabilities = model.predict(ids, verbose=0)[0]  # (classes,)
    predicted = int(np.argmax(probabilities))
    label = predicted if class_names is None else class_names[predicted]
    title = (
        f"{text[:_TITLE_CHARACTERS]!r} -> {label} ({probabilities.max():.2f})"
    )
    plot_attention_heads(tokens, scores, path, title=title)
    return text
