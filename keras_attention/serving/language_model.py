"""SavedModel export of a causal language model: prompts in, text out.

`export_causal_lm` writes a `build_causal_lm` model, its tokenizer and a
cached decoding loop (`CausalLMGenerator.generate_buffer`) as one
SavedModel with two signatures, both tokenizing and detokenizing in the
graph:

- `serving_default`: `texts`, `(batch,)` prompt strings, continued with
  the sampling settings chosen at export time (greedy by default, so that
  a served answer is reproducible);
- `generate`: `texts` and one sampling setting per item, each `(batch,)`:
  `max_new_tokens` (int32; `0` generates nothing), `temperature` (float32;
  `0` or less is greedy), `top_k` (int32; `0` or less, or at least the
  vocabulary size, draws from every token) and `seed` (int32).

Both return `"outputs"` (each prompt, as the tokenizer reads it back,
followed by its continuation; the text KerasHub's `generate` returns),
`"completions"` (the continuation alone) and `"status"`, all `(batch,)`
strings. Each item stands alone (see `item_status`): an empty or blank
prompt is `"empty"`, one of more than `max_length - 1` tokens is
`"too_long"` (or, with `truncate=True`, `"truncated"` to its last
`max_length - 1` tokens, the context a language model reads), and such
items get `""` without failing the batch. Every item draws from its own
seed, so its text does not depend on the other items of its batch.

A model with a `sliding_window` decodes with rolling caches of its window
(`CausalLMGenerator(rolling_cache=True)`): the served ids are those of
full-length caches, with memory and per-token work bounded by the window.

The SavedModel is written as `<path>/<version>/` (see `model_versions`)
and loads with plain TensorFlow (plus tensorflow-text for WordPiece), in
a process that never imports `keras_attention`.
"""

import keras
import tensorflow as tf

from keras_attention._checks import check_positive_int
from keras_attention.models.causal_lm_generator import CausalLMGenerator
from keras_attention.serving._archive import check_tensorflow_backend
from keras_attention.serving._archive import check_tokenizer
from keras_attention.serving._archive import copy_tokenizer
from keras_attention.serving._archive import texts_spec
from keras_attention.serving._archive import write_extras
from keras_attention.serving.constants import GENERATE_SIGNATURE
from keras_attention.serving.constants import SAMPLING_INPUTS
from keras_attention.serving.constants import SERVING_COMPLETIONS
from keras_attention.serving.constants import SERVING_OUTPUT
from keras_attention.serving.constants import SERVING_SIGNATURE
from keras_attention.serving.constants import SERVING_STATUS
from keras_attention.serving.item_status import answer_items
from keras_attention.serving.item_status import is_answered
from keras_attention.serving.item_status import item_status
from keras_attention.serving.item_status import screen_utf8
from keras_attention.serving.model_versions import write_version

__all__ = ["export_causal_lm"]

# The logit of a token outside the top k: `exp` of it is exactly 0.
_MASKED_LOGIT = -1e9
# Uniform noise stays in (0, 1), so that its double log is finite.
_TINY = 1e-7


class _ItemSampler:
    """Samples every row with its own temperature, top-k and seed.

    The Gumbel-max trick (argmax of logits plus Gumbel noise draws from
    their softmax), with each row's noise drawn from its own stateless
    seed: a row's ids depend on its settings only, not on its batch.
    """

    def __init__(self, temperature, top_k):
        self.temperature = temperature  # (rows,) float32
        self.top_k = top_k  # (rows,) int32

    def __call__(self, logits, seed):
        logits = tf.cast(logits, tf.float32)  # (rows, vocab)
        vocab = tf.shape(logits)[1]
        sampled = self.temperature > 0  # (rows,)
        scaled = logits / tf.where(sampled, self.temperature, 1.0)[:, None]
        k = tf.where((self.top_k > 0) & (self.top_k < vocab), self.top_k, vocab)
        ranked = tf.sort(scaled, axis=-1, direction="DESCENDING")
        kth = tf.gather(ranked, k - 1, batch_dims=1)  # (rows,)
        scaled = tf.where(scaled >= kth[:, None], scaled, _MASKED_LOGIT)
        uniform = tf.map_fn(
            lambda row_seed: tf.random.stateless_uniform(
                [vocab], row_seed, minval=_TINY, maxval=1.0
            ),
            seed,
            fn_output_signature=tf.float32,
        )  # (rows, vocab)
        gumbel = -tf.math.log(-tf.math.log(uniform))
        drawn = tf.argmax(scaled + gumbel, axis=-1, output_type=tf.int32)
        greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return tf.where(sampled, drawn, greedy)  # (rows,)


class _CausalLMModule(tf.Module):
    """The tokenizer, the generator and the defaults; the two signatures."""

    def __init__(self, model, tokenizer, generator, defaults, truncate):
        super().__init__(name="causal_lm")
        self.model = model
        self.tokenizer = copy_tokenizer(tokenizer)
        self.generator = generator
        self.defaults = defaults
        self.truncate = truncate
        self.max_prompt_length = generator.max_length - 1

    def serve(self, texts):
        batch = tf.shape(texts)[:1]
        settings = [
            tf.fill(batch, tf.constant(self.defaults[name], dtype))
            for name, dtype in SAMPLING_INPUTS.items()
        ]
        return self.generate(texts, *settings)

    def generate(self, texts, max_new_tokens, temperature, top_k, seed):
        valid, texts = screen_utf8(texts)  # (batch,), (batch,)
        ids = self.tokenizer.tokenize(texts)  # (batch, None)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids, padding=0)
        ids = tf.cast(ids, tf.int32)
        status = item_status(
            texts,
            valid,
            ids.row_lengths(),
            self.max_prompt_length,
            self.truncate,
        )  # (batch,)
        ids = ids[:, -self.max_prompt_length :]  # the end of a long prompt
        settings = (max_new_tokens, temperature, top_k, seed)

        def complete(rows):
            return self._complete(
                tf.gather(ids, rows), *(tf.gather(s, rows) for s in settings)
            )

        outputs = answer_items(
            is_answered(status), tf.range(tf.shape(texts)[0]), complete
        )
        outputs[SERVING_STATUS] = status
        return outputs

    def _complete(self, ids, max_new_tokens, temperature, top_k, seed):
        """Outputs of `(rows, None)` ragged prompt ids, all answerable."""
        generator = self.generator
        lengths = tf.cast(ids.row_lengths(), tf.int32)  # (rows,)
        buffer = ids.to_tensor(
            default_value=generator.padding_id,
            shape=[None, generator.max_length],
        )  # (rows, max_length)
        seeds = tf.stack([seed, tf.zeros_like(seed)], axis=1)  # (rows, 2)
        buffer = generator.generate_buffer(
            buffer,
            lengths,
            _ItemSampler(temperature, top_k),
            seeds,
            max_new_tokens,
        )  # (rows, max_length)
        real = buffer != generator.padding_id
        positions = tf.range(generator.max_length)[None]  # (1, max_length)
        new = positions >= lengths[:, None]  # (rows, max_length)
        detokenize = self.tokenizer.detokenize
        return {
            SERVING_OUTPUT: detokenize(tf.ragged.boolean_mask(buffer, real)),
            SERVING_COMPLETIONS: detokenize(
                tf.ragged.boolean_mask(buffer, real & new)
            ),
        }


def export_causal_lm(
    path,
    model,
    tokenizer,
    max_length,
    end_id=None,
    max_new_tokens=None,
    temperature=0.0,
    top_k=0,
    seed=0,
    truncate=False,
    version=None,
    warmup_texts=None,
    rolling_cache=True,
):
    """Exports a causal language model as a SavedModel: prompts in.

    See the module docstring for the two signatures and their outputs.

    Args:
        path: the model base directory; the SavedModel goes to
            `<path>/<version>/` (TF Serving's layout).
        model: a model built by `build_causal_lm` (or its `.keras`
            reload).
        tokenizer: the tokenizer it was trained with, a
            `CharacterTokenizer` or a `WordPieceTokenizer` (anything with
            `tokenize`, `detokenize`, `get_config` and `from_config`).
        max_length: int, the length of the decoding buffer: prompt plus
            generated ids (with learned positions at most the model's
            `max_length`).
        end_id: optional int, the id that ends a continuation (e.g. the
            tokenizer's `end_id` when the model was trained on documents
            that end with it). Defaults to `None` (none does).
        max_new_tokens: optional int, `serving_default`'s most new ids.
            Defaults to `None` (up to `max_length`).
        temperature: float, `serving_default`'s temperature; `0` is
            greedy. Defaults to `0.0`.
        top_k: int, `serving_default`'s top-k; `0` is every token.
            Defaults to `0`.
        seed: int, `serving_default`'s seed. Defaults to `0`.
        truncate: bool, whether longer prompts keep their last
            `max_length - 1` tokens and are answered (`"truncated"`) rather
            than rejected (`"too_long"`). Defaults to `False`.
        version: optional positive int, the version to write. Defaults
            to `None` (one more than the highest under `path`, or `1`).
        warmup_texts: optional list of a few example prompts, written as
            TF Serving warmup requests (`assets.extra/`). Defaults to
            `None` (no warmup file).
        rolling_cache: bool, whether blocks with a `sliding_window`
            shorter than `max_length` decode with rolling caches of their
            window (see `CausalLMGenerator`). Defaults to `True`.

    Returns:
        The version directory written, a str.

    Example:

    >>> export_causal_lm("/tmp/rhymes", model, tokenizer, 64,
    ...                  max_new_tokens=20)  # doctest: +SKIP
    '/tmp/rhymes/1'
    >>> loaded = load_saved_model("/tmp/rhymes")  # doctest: +SKIP
    >>> loaded.signatures["generate"](
    ...     texts=tf.constant(["Mary had"]),
    ...     max_new_tokens=tf.constant([12]),
    ...     temperature=tf.constant([0.8]), top_k=tf.constant([5]),
    ...     seed=tf.constant([1]))["completions"]  # doctest: +SKIP
    <tf.Tensor: shape=(1,), dtype=string, numpy=array([b' a little la'])>
    """
    check_tensorflow_backend()
    check_tokenizer(
        "tokenizer",
        tokenizer,
        ("tokenize", "detokenize", "get_config", "from_config"),
    )
    if max_new_tokens is None:
        max_new_tokens = max_length
    max_new_tokens = check_positive_int("max_new_tokens", max_new_tokens)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(
            "`top_k` must be a non-negative int (`0`: every token). "
            f"Received: top_k={top_k!r}"
        )
    generator = CausalLMGenerator(
        model, max_length, end_id=end_id, rolling_cache=rolling_cache
    )
    defaults = {
        "max_new_tokens": max_new_tokens,
        "temperature": float(temperature),
        "top_k": int(top_k),
        "seed": int(seed),
    }
    module = _CausalLMModule(
        model, tokenizer, generator, defaults, bool(truncate)
    )
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(module)
    archive.add_endpoint(
        SERVING_SIGNATURE, module.serve, input_signature=[texts_spec()]
    )
    settings = [
        tf.TensorSpec([None], dtype, name=name)
        for name, dtype in SAMPLING_INPUTS.items()
    ]
    archive.add_endpoint(
        GENERATE_SIGNATURE,
        module.generate,
        input_signature=[texts_spec(), *settings],
    )

    def write(directory):
        archive.write_out(directory, verbose=False)
        write_extras(directory, warmup_texts)

    return write_version(path, write, version)
