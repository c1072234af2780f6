"""Tests of `export_causal_lm`: prompts in, generated text out."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.models import CausalLMGenerator
from keras_attention.models import build_causal_lm
from keras_attention.serving import GENERATE_SIGNATURE
from keras_attention.serving import load_saved_model
from keras_attention.serving.language_model import export_causal_lm
from keras_attention.serving.op_check import saved_model_op_types
from keras_attention.text import CharacterTokenizer
from keras_attention.text import WordPieceTokenizer

# The module-scoped exports are built once, on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_language_model_export")

MAX_LENGTH = 12
MAX_NEW_TOKENS = 5
WINDOW = 3  # of the module's export, shorter than its prompts
PROMPTS = ["mary had", "a", "little lamb"]
WORDPIECE_VOCABULARY = ["[PAD]", "[UNK]", "[START]", "[END]"] + (
    "mary had a little lamb its fleece was white as snow".split()
)


def tiny_model(vocabulary_size, seed=0, sliding_window=None):
    keras.utils.set_random_seed(seed)
    return build_causal_lm(
        vocabulary_size,
        num_layers=1,
        d_model=16,
        num_heads=2,
        feed_forward_dim=32,
        num_key_value_heads=1,
        sliding_window=sliding_window,
    )


def greedy_texts(model, tokenizer, prompts, max_new_tokens):
    """In-process reference: `(outputs, completions)` of greedy decoding.

    With full-length caches, also for a windowed model.
    """
    generator = CausalLMGenerator(
        model, MAX_LENGTH, end_id=tokenizer.end_id, rolling_cache=False
    )
    ids = tokenizer.tokenize(prompts)
    lengths = ids.row_lengths().numpy()[:, None]  # (batch, 1)
    generated = generator.generate(ids.to_tensor().numpy())
    positions = np.arange(MAX_LENGTH)[None]  # (1, max_length)
    generated[positions >= lengths + max_new_tokens] = 0
    completions = np.where(positions >= lengths, generated, 0)
    return [
        [text.decode() for text in tokenizer.detokenize(ids).numpy()]
        for ids in (generated, completions)
    ]


def generate(serving, texts, max_new_tokens, temperature, top_k, seed):
    count = len(texts)
    outputs = serving(
        texts=tf.constant(texts),
        max_new_tokens=tf.fill([count], max_new_tokens),
        temperature=tf.fill([count], float(temperature)),
        top_k=tf.fill([count], top_k),
        seed=tf.constant(seed if isinstance(seed, list) else [seed] * count),
    )
    return [text.decode() for text in outputs["completions"].numpy()]


@pytest.fixture(scope="module")
def export_path(tmp_path_factory):
    """`(version directory, model, tokenizer)` of the module's export."""
    tokenizer = CharacterTokenizer.from_texts(["mary had a little lamb"])
    # Windowed: its export decodes with rolling caches.
    model = tiny_model(tokenizer.vocabulary_size, sliding_window=WINDOW)
    path = export_causal_lm(
        tmp_path_factory.mktemp("lm") / "model",
        model,
        tokenizer,
        MAX_LENGTH,
        end_id=tokenizer.end_id,
        max_new_tokens=MAX_NEW_TOKENS,
    )
    return path, model, tokenizer


@pytest.fixture(scope="module")
def exported(export_path):
    path, model, tokenizer = export_path
    return load_saved_model(path), model, tokenizer


def test_serving_default_is_greedy_generation(exported):
    loaded, model, tokenizer = exported
    served = loaded.signatures["serving_default"](tf.constant(PROMPTS))
    outputs, completions = greedy_texts(
        model, tokenizer, PROMPTS, MAX_NEW_TOKENS
    )
    assert [t.decode() for t in served["outputs"].numpy()] == outputs
    assert [t.decode() for t in served["completions"].numpy()] == completions
    assert all(o.startswith(p) for o, p in zip(outputs, PROMPTS))
    assert served["status"].numpy().tolist() == [b"ok"] * 3


def test_bad_items_get_a_status_and_leave_the_others_alone(exported):
    loaded, _, _ = exported
    serve = loaded.signatures["serving_default"]
    texts = ["", "mary had", " \t", "a" * MAX_LENGTH, b"\xffa"]
    served = serve(tf.constant(texts))
    assert served["status"].numpy().tolist() == [
        b"empty",
        b"ok",
        b"empty",
        b"too_long",
        b"invalid_utf8",
    ]
    outputs = served["outputs"].numpy().tolist()
    assert outputs[0] == outputs[2] == outputs[3] == outputs[4] == b""
    alone = serve(tf.constant(["mary had"]))["outputs"].numpy().tolist()
    assert outputs[1] == alone[0]
    nothing = serve(tf.constant(["", " "]))  # no item reaches the model
    assert nothing["outputs"].numpy().tolist() == [b"", b""]


def test_generate_signature_takes_per_item_settings(exported):
    loaded, model, tokenizer = exported
    serving = loaded.signatures[GENERATE_SIGNATURE]
    greedy = greedy_texts(model, tokenizer, PROMPTS, 3)[1]
    assert generate(serving, PROMPTS, 3, 0.0, 0, 0) == greedy
    # Top-1 sampling is greedy, whatever the temperature and seed.
    assert generate(serving, PROMPTS, 3, 2.0, 1, 7) == greedy
    assert generate(serving, PROMPTS, 0, 1.0, 0, 1) == ["", "", ""]
    sampled = generate(serving, PROMPTS, MAX_NEW_TOKENS, 5.0, 0, [1, 2, 3])
    assert sampled == generate(
        serving, PROMPTS, MAX_NEW_TOKENS, 5.0, 0, [1, 2, 3]
    )
    # One character per id; an out-of-vocabulary id reads "[UNK]".
    lengths = [len(text.replace("[UNK]", "?")) for text in sampled]
    assert max(lengths) <= MAX_NEW_TOKENS
    # Each item draws from its own seed: alone, it gets the same text.
    for index, prompt in enumerate(PROMPTS):
        alone = generate(serving, [prompt], MAX_NEW_TOKENS, 5.0, 0, index + 1)
        assert alone == [sampled[index]]
    seeds = range(8)
    texts = {generate(serving, ["a"], 4, 5.0, 0, s)[0] for s in seeds}
    assert len(texts) > 1  # the seed matters


def test_truncate_keeps_the_end_of_a_long_prompt(tmp_path):
    tokenizer = CharacterTokenizer.from_texts(["mary had a little lamb"])
    model = tiny_model(tokenizer.vocabulary_size)
    path = export_causal_lm(
        tmp_path / "model",
        model,
        tokenizer,
        MAX_LENGTH,
        max_new_tokens=1,
        truncate=True,
    )
    serve = load_saved_model(path).signatures["serving_default"]
    prompt = "mary had a little lamb"
    end = prompt[-(MAX_LENGTH - 1) :]
    served = serve(tf.constant([prompt, end]))
    assert served["status"].numpy().tolist() == [b"truncated", b"ok"]
    completions = served["completions"].numpy().tolist()
    assert completions[0] == completions[1]


def test_wordpiece_model(tmp_path):
    tokenizer = WordPieceTokenizer(WORDPIECE_VOCABULARY)
    model = tiny_model(tokenizer.vocabulary_size, seed=1)
    path = export_causal_lm(
        tmp_path / "model",
        model,
        tokenizer,
        MAX_LENGTH,
        end_id=tokenizer.end_id,
        max_new_tokens=4,
    )
    prompts = ["Mary had", "its fleece"]
    outputs, _ = greedy_texts(model, tokenizer, prompts, 4)
    assert outputs[0].startswith("mary had")
    served = load_saved_model(path).signatures["serving_default"](
        tf.constant(prompts)
    )
    assert [text.decode() for text in served["outputs"].numpy()] == outputs


def test_the_windowed_export_rolls_and_has_no_xla_ops(export_path):
    path, model, _ = export_path
    # Its generator keeps a cache of the window, not of MAX_LENGTH (the
    # other tests check its texts against full-length caches).
    assert CausalLMGenerator(model, MAX_LENGTH).cache_lengths == (WINDOW,)
    op_types = saved_model_op_types(path)
    assert "StatelessWhile" in op_types
    assert not [op for op in op_types if op.startswith("Xla")]


@pytest.mark.parametrize(
    "argument, value, match",
    [
        ("top_k", -1, "top_k=-1"),
        ("max_new_tokens", 0, "max_new_tokens=0"),
        ("max_length", 1, "max_length=1"),
    ],
)
def test_bad_export_arguments(tmp_path, argument, value, match):
    tokenizer = CharacterTokenizer.from_texts(["ab"])
    model = tiny_model(tokenizer.vocabulary_size)
    kwargs = {"max_length": MAX_LENGTH, argument: value}
    with pytest.raises(ValueError, match=match):
        export_causal_lm(tmp_path / "model", model, tokenizer, **kwargs)
