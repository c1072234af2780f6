import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.models.seq2seq import build_attention_seq2seq
from keras_attention.models.seq2seq_decoding import Seq2SeqGreedyDecoder
from keras_attention.serving import Seq2SeqTranslator
from keras_attention.text.character_tokenizer import CharacterTokenizer

SOURCE_VOCABULARY = 13
TARGET_VOCABULARY = 11
START, END = 2, 3


def _tiny(**kwargs):
    config = dict(embedding_dim=4, units=8)
    config.update(kwargs)
    return build_attention_seq2seq(
        SOURCE_VOCABULARY, TARGET_VOCABULARY, **config
    )


def _inputs(batch=2, source_length=6, target_length=4, seed=0):
    rng = np.random.default_rng(seed)
    source = rng.integers(4, SOURCE_VOCABULARY, (batch, source_length))
    source[0, source_length - 2 :] = 0  # padding at the end of row 0
    target = rng.integers(4, TARGET_VOCABULARY, (batch, target_length))
    target[:, 0] = START
    return {
        "source_ids": source.astype("int32"),
        "target_in_ids": target.astype("int32"),
    }


VARIANTS = [
    dict(rnn_type="gru", attention="additive"),
    dict(rnn_type="gru", attention="dot", bidirectional=False),
    dict(rnn_type="lstm", attention="general"),
    dict(rnn_type="lstm", attention="additive", attention_units=5),
    dict(rnn_type="gru", attention="general", num_encoder_layers=2),
    dict(rnn_type="lstm", attention="dot", residual=True, dropout=0.1),
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_output_shape_and_padding_invariance(variant):
    model = _tiny(**variant)
    inputs = _inputs()
    logits = model(inputs)
    assert tuple(logits.shape) == (2, 4, TARGET_VOCABULARY)
    # Extra padding after a source leaves every output unchanged.
    padded = dict(inputs)
    padded["source_ids"] = np.pad(inputs["source_ids"], [(0, 0), (0, 3)])
    np.testing.assert_allclose(
        model(padded), logits, atol=1e-5, err_msg=str(variant)
    )


@pytest.mark.tf_only
@pytest.mark.parametrize("variant", VARIANTS[:3])
def test_greedy_decoder_agrees_with_teacher_forcing(variant):
    """Feeding the greedy output back with teacher forcing gives it again."""
    model = _tiny(**variant)
    decoder = Seq2SeqGreedyDecoder(model, START, END, max_length=5)
    source = _inputs(batch=3)["source_ids"]
    tokens, weights = tf.function(decoder.__call__, jit_compile=True)(source)
    tokens = tokens.numpy()
    weights = weights.numpy()
    assert tokens.shape == (3, 5)
    assert weights.shape == (3, 5, source.shape[1])

    target_in = np.concatenate([np.full((3, 1), START), tokens[:, :-1]], 1)
    logits = model({"source_ids": source, "target_in_ids": target_in})
    # The decoder never predicts the padding id 0.
    teacher = np.argmax(np.asarray(logits)[..., 1:], axis=-1) + 1
    for row in range(3):
        ends = np.flatnonzero(tokens[row] == END)
        steps = ends[0] + 1 if ends.size else tokens.shape[1]
        np.testing.assert_array_equal(teacher[row, :steps], tokens[row, :steps])
        # After the end: padding and zero attention.
        assert (tokens[row, steps:] == 0).all()
        assert (weights[row, steps:] == 0).all()
        # Every decoded step's weights sum to 1 and skip the padding.
        np.testing.assert_allclose(weights[row, :steps].sum(-1), 1, atol=1e-5)
        padding = source[row] == 0
        assert (weights[row, :steps][:, padding] == 0).all()


def test_teacher_forced_attention_ignores_padding():
    model = _tiny(attention="additive")
    inputs = _inputs()
    attention = model.get_layer("attention")
    encoder_states, *_ = model.get_layer("encoder")(inputs["source_ids"])
    decoder_states = keras.ops.ones((2, 4, 8))
    mask = inputs["source_ids"] != 0
    _, weights = attention(
        decoder_states,
        encoder_states,
        value_mask=mask,
        return_attention_scores=True,
    )
    weights = keras.ops.convert_to_numpy(weights)
    np.testing.assert_allclose(weights.sum(-1), 1, atol=1e-5)
    assert (weights[0, :, -2:] == 0).all()


def test_keras_save_and_reload(tmp_path):
    model = _tiny(rnn_type="lstm", attention="general", residual=True)
    inputs = _inputs()
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(inputs), model(inputs), atol=1e-6)
    # The greedy decoder finds its layers in the reloaded model too.
    decoder = Seq2SeqGreedyDecoder(restored, START, END, max_length=3)
    expected = Seq2SeqGreedyDecoder(model, START, END, max_length=3)
    np.testing.assert_array_equal(
        decoder(inputs["source_ids"])[0], expected(inputs["source_ids"])[0]
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(units=0), "Received: units=0"),
        (dict(units=7), "must be even"),
        (dict(rnn_type="rnn"), "Received: rnn_type='rnn'"),
        (dict(attention="cosine"), "Received: attention='cosine'"),
        (dict(attention_units=-1), "Received: attention_units=-1"),
        (dict(num_encoder_layers=0), "Received: num_encoder_layers=0"),
        (dict(dropout=1.0), "Received: dropout=1.0"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _tiny(**kwargs)


def test_greedy_decoder_never_predicts_padding():
    model = _tiny()
    logits = model.get_layer("output_head").get_layer("logits")
    bias = np.zeros(logits.bias.shape, "float32")
    bias[0] = 100.0  # id 0 (padding) would win every step
    logits.bias.assign(bias)
    decoder = Seq2SeqGreedyDecoder(model, START, END, max_length=5)
    tokens, weights = decoder(_inputs(batch=3)["source_ids"])
    tokens, weights = np.asarray(tokens), np.asarray(weights)
    for row, row_weights in zip(tokens, weights):
        # Every step up to the end id (if the untrained model emits it) is
        # a real token; after it, padding and zero weights, as documented.
        ended = np.flatnonzero(row == END)
        steps = ended[0] + 1 if ended.size else len(row)
        assert (row[:steps] != 0).all(), tokens
        assert (row[steps:] == 0).all(), tokens
        np.testing.assert_allclose(row_weights[:steps].sum(-1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(row_weights[steps:], 0.0)


def test_decoder_rejects_padding_as_start_or_end():
    with pytest.raises(ValueError, match="start_id.*padding id"):
        Seq2SeqGreedyDecoder(_tiny(), 0, END, max_length=3)
    with pytest.raises(ValueError, match="end_id.*padding id"):
        Seq2SeqGreedyDecoder(_tiny(), START, 0, max_length=3)


def test_decoder_rejects_foreign_models():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="build_attention_seq2seq"):
        Seq2SeqGreedyDecoder(model, START, END, max_length=3)
    with pytest.raises(ValueError, match="Received: max_length=0"):
        Seq2SeqGreedyDecoder(_tiny(), START, END, max_length=0)


def _date_pairs():
    # "dd.mm.yyyy" -> "yyyy-mm-dd": reordering needs attention.
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(600):
        year, month, day = rng.integers(1990, 2010), *rng.integers(1, 13, 2)
        pairs.append(
            (
                f"{day:02d}.{month:02d}.{year}",
                f"{year}-{month:02d}-{day:02d}",
            )
        )
    return pairs


@pytest.mark.large
def test_tiny_model_learns_tiny_date_set():
    from keras_attention.data.parallel_text import make_seq2seq_dataset

    pairs = _date_pairs()
    source = CharacterTokenizer.from_texts(s for s, _ in pairs)
    target = CharacterTokenizer.from_texts(t for _, t in pairs)
    data = make_seq2seq_dataset(
        pairs, source, target, 32, shuffle=True, seed=0, drop_remainder=True
    )
    model = build_attention_seq2seq(
        source.vocabulary_size,
        target.vocabulary_size,
        embedding_dim=16,
        units=32,
        attention="dot",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=0
        ),
        jit_compile=True,
    )
    model.fit(data, epochs=8, verbose=0)
    translator = Seq2SeqTranslator(
        model, source, target, max_output_length=10, max_source_length=12
    )
    known_source, known_target = pairs[0]
    assert translator.translate([known_source]) == [known_target]
    accuracy, _ = translator.exact_match(pairs[:100])
    assert accuracy > 0.8
    with pytest.raises(ValueError, match="longer than 12"):
        translator.encode(["01.01.2000   extra"])
    # `translate` answers an over-long item "" and says so, as the export.
    assert translator.translate(
        [known_source, "01.01.2000   extra"], return_status=True
    ) == ([known_target, ""], ["ok", "too_long"])
