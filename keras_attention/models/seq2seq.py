"""RNN encoder-decoder with attention ("seq2seq with attention")."""

import keras
from keras import ops

from keras_attention._checks import check_positive_int
from keras_attention.layers.additive_attention import AdditiveAttention
from keras_attention.layers.dot_product_attention import DotProductAttention
from keras_attention.layers.dropout import Dropout

__all__ = [
    "ATTENTION_TYPES",
    "RNN_TYPES",
    "build_attention_seq2seq",
]

RNN_TYPES = ("gru", "lstm")
ATTENTION_TYPES = ("additive", "dot", "general")

# Names the greedy decoder (and `export.py`) use to find the parts of a
# model built here, also after it is reloaded from a `.keras` file.
SOURCE_INPUT = "source_ids"
TARGET_INPUT = "target_in_ids"
ENCODER = "encoder"
TARGET_EMBEDDING = "target_embedding"
DECODER = "decoder"
ATTENTION = "attention"
OUTPUT_HEAD = "output_head"
PADDING_ID = 0


def _rnn(rnn_type, units, name, return_state=True):
    layer_class = keras.layers.GRU if rnn_type == "gru" else keras.layers.LSTM
    return layer_class(
        units, return_sequences=True, return_state=return_state, name=name
    )


def _build_encoder(
    vocabulary_size,
    embedding_dim,
    units,
    rnn_type,
    bidirectional,
    num_layers,
):
    """`source_ids -> [states (batch, src_len, units), *final_states]`."""
    source_ids = keras.Input(shape=(None,), dtype="int32", name=SOURCE_INPUT)
    # (batch, src_len, embedding_dim), padding id 0 masked from here on.
    outputs = keras.layers.Embedding(
        vocabulary_size, embedding_dim, mask_zero=True, name="source_embedding"
    )(source_ids)
    for index in range(num_layers):
        name = f"encoder_rnn_{index}"
        if bidirectional:
            # Each direction has half the units, so the states and the final
            # state have `units` features, like a unidirectional encoder.
            results = keras.layers.Bidirectional(
                _rnn(rnn_type, units // 2, name=f"{name}_cell"), name=name
            )(outputs)
            outputs = results[0]  # (batch, src_len, units)
            forward = results[1 : 1 + len(results[1:]) // 2]
            backward = results[1 + len(results[1:]) // 2 :]
            final_states = [
                keras.layers.Concatenate(name=f"{name}_state_{i}")([f, b])
                for i, (f, b) in enumerate(zip(forward, backward))
            ]  # each (batch, units)
        else:
            results = _rnn(rnn_type, units, name=name)(outputs)
            outputs = results[0]  # (batch, src_len, units)
            final_states = list(results[1:])  # each (batch, units)
    return keras.Model(source_ids, [outputs] + final_states, name=ENCODER)


def _build_output_head(units, value_dim, vocabulary_size, residual, dropout):
    """`[decoder_states, contexts] -> logits`, for any number of steps."""
    decoder_states = keras.Input(shape=(None, units), name="decoder_states")
    contexts = keras.Input(shape=(None, value_dim), name="contexts")
    # (batch, tgt_len, units + value_dim)
    features = keras.layers.Concatenate(name="concat_context")(
        [decoder_states, contexts]
    )
    if dropout > 0.0:
        features = Dropout(dropout, name="dropout")(features)
    if residual:
        # (batch, tgt_len, units)
        hidden = keras.layers.Dense(units, activation="tanh", name="combine")(
            features
        )
        features = keras.layers.Add(name="residual")([decoder_states, hidden])
    # (batch, tgt_len, vocabulary_size)
    logits = keras.layers.Dense(vocabulary_size, name="logits")(features)
    return keras.Model([decoder_states, contexts], logits, name=OUTPUT_HEAD)


def _build_attention(attention, attention_units, units):
    if attention == "additive":
        return AdditiveAttention(attention_units or units, name=ATTENTION)
    return DotProductAttention(score_mode=attention, name=ATTENTION)


def build_attention_seq2seq(
    source_vocabulary_size,
    target_vocabulary_size,
    embedding_dim=32,
    units=128,
    rnn_type="gru",
    attention="additive",
    attention_units=None,
    bidirectional=True,
    num_encoder_layers=1,
    residual=False,
    dropout=0.0,
    name="attention_seq2seq",
):
    """Builds a teacher-forced RNN encoder-decoder with attention.

    The encoder embeds the source ids (id `0` is padding and is masked) and
    runs one or more (optionally bidirectional) GRU or LSTM layers, keeping
    its hidden state at every source step. The decoder is one RNN layer of
    the same kind, initialised from the encoder's final state and run over
    all target steps at once (teacher forcing). Its states are the queries of
    an attention layer over all encoder states, computed for every decoder
    step in one call; padded source steps get zero weight. The context
    vector of each step is concatenated with the decoder state (optionally
    followed by a residual `tanh` layer) and projected to the target
    vocabulary, as in Luong et al. (2015). The training model therefore
    contains no Python loop; `keras_attention.models.Seq2SeqGreedyDecoder`
    runs the same layers step by step for inference.

    The model is built from named parts that the greedy decoder looks up:
    the nested `"encoder"` model (`source_ids -> [states, *final_states]`),
    the `"target_embedding"`, the `"decoder"` RNN (whose `cell` runs one
    step), the `"attention"` layer and the nested `"output_head"` model
    (`[decoder_states, contexts] -> logits`).

    Args:
        source_vocabulary_size: int, the number of source ids (padding
            included).
        target_vocabulary_size: int, the number of target ids.
        embedding_dim: int, the size of both embeddings. Defaults to `32`.
        units: int, the size of the encoder states and of the decoder state
            (with a bidirectional encoder each direction has `units // 2`,
            so `units` must be even). Defaults to `128`.
        rnn_type: `"gru"` or `"lstm"`. Defaults to `"gru"`.
        attention: `"additive"` (Bahdanau, `AdditiveAttention`), `"dot"` or
            `"general"` (Luong, `DotProductAttention`). Defaults to
            `"additive"`.
        attention_units: int, the hidden size of additive attention.
            Defaults to `None` (`units`).
        bidirectional: bool, whether the encoder layers are bidirectional.
            Defaults to `True`.
        num_encoder_layers: int, the number of stacked encoder layers.
            Defaults to `1`.
        residual: bool, whether to add `tanh(W [state; context])` to the
            decoder state before the output projection. Defaults to `False`.
        dropout: float in `[0, 1)`, dropout before the output projection.
            Defaults to `0.0`.
        name: the model's name. Defaults to `"attention_seq2seq"`.

    Returns:
        A `keras.Model` mapping `{"source_ids": (batch, src_len),
        "target_in_ids": (batch, tgt_len)}` int32 ids to
        `(batch, tgt_len, target_vocabulary_size)` logits of the next target
        id at every step.

    Example:

    >>> model = build_attention_seq2seq(20, 15, embedding_dim=8, units=16)
    >>> logits = model({
    ...     "source_ids": np.array([[5, 6, 7, 0]]),
    ...     "target_in_ids": np.array([[2, 4, 5]]),
    ... })
    >>> tuple(logits.shape)
    (1, 3, 15)

    References:
        - [Bahdanau et al., 2014](https://arxiv.org/abs/1409.0473)
        - [Luong et al., 2015](https://arxiv.org/abs/1508.04025)
    """
    for arg_name, value in (
        ("source_vocabulary_size", source_vocabulary_size),
        ("target_vocabulary_size", target_vocabulary_size),
        ("embedding_dim", embedding_dim),
        ("units", units),
        ("num_encoder_layers", num_encoder_layers),
    ):
        check_positive_int(arg_name, value)
    if rnn_type not in RNN_TYPES:
        raise ValueError(
            f"`rnn_type` must be one of {RNN_TYPES}. "
            f"Received: rnn_type={rnn_type!r}"
        )
    if attention not in ATTENTION_TYPES:
        raise ValueError(
            f"`attention` must be one of {ATTENTION_TYPES}. "
            f"Received: attention={attention!r}"
        )
    check_positive_int("attention_units", attention_units, allow_none=True)
    if bidirectional and units % 2:
        raise ValueError(
            "`units` must be even with a bidirectional encoder (each "
            f"direction has units // 2). Received: units={units}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(
            f"`dropout` must be in [0, 1). Received: dropout={dropout}"
        )

    source_ids = keras.Input(shape=(None,), dtype="int32", name=SOURCE_INPUT)
    target_in_ids = keras.Input(shape=(None,), dtype="int32", name=TARGET_INPUT)
    encoder = _build_encoder(
        source_vocabulary_size,
        embedding_dim,
        units,
        rnn_type,
        bidirectional,
        num_encoder_layers,
    )
    # (batch, src_len, units) and the final state(s), each (batch, units).
    encoder_states, *final_states = encoder(source_ids)
    source_mask = ops.not_equal(source_ids, PADDING_ID)  # (batch, src_len)

    # (batch, tgt_len, embedding_dim)
    target_embeddings = keras.layers.Embedding(
        target_vocabulary_size, embedding_dim, name=TARGET_EMBEDDING
    )(target_in_ids)
    # (batch, tgt_len, units)
    decoder_states = _rnn(rnn_type, units, name=DECODER, return_state=False)(
        target_embeddings, initial_state=final_states
    )
    # (batch, tgt_len, units): the attention of every step at once.
    contexts = _build_attention(attention, attention_units, units)(
        decoder_states, encoder_states, value_mask=source_mask
    )
    head = _build_output_head(
        units, units, target_vocabulary_size, residual, dropout
    )
    logits = head([decoder_states, contexts])  # (batch, tgt_len, vocab)
    return keras.Model(
        {SOURCE_INPUT: source_ids, TARGET_INPUT: target_in_ids},
        logits,
        name=name,
    )
