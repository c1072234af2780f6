"""Tests of `WordPieceTokenizer`.

`tests.testing.run_layer_test` is not called here: it builds its symbolic
inputs with `keras.Input(dtype=str(array.dtype))`, which NumPy string arrays
(`"<U7"`, `"object"`) cannot satisfy, and its fit and mixed-precision checks
need float outputs, while this layer maps strings to integer ids and has no
weights. The same checks (config round trip, Keras serialisation, a symbolic
call in a Functional model, `.keras` save and reload) are written out below.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer
from keras_attention.text.wordpiece_vocabulary import learn_wordpiece_vocabulary
from keras_attention.text.wordpiece_vocabulary import save_vocabulary
from tests.text.test_wordpiece_vocabulary import make_corpus
from tests.text.test_wordpiece_vocabulary import reference_words

PAD, UNK, START, END = 0, 1, 2, 3
VOCABULARY = [
    "[PAD]",
    "[UNK]",
    "[START]",
    "[END]",
    "the",  # 4
    "cat",  # 5
    "un",  # 6
    "##play",  # 7
    "##able",  # 8
    "play",  # 9
    "##ing",  # 10
    "!",  # 11
    ",",  # 12
]


def strings(tensor):
    return [text.decode("utf-8") for text in tensor.numpy().tolist()]


def test_known_ids_for_a_hand_made_vocabulary():
    tokenizer = WordPieceTokenizer(VOCABULARY)
    ids = tokenizer(["The cat, unplayable!", "Playing dogs", "playable"])
    assert isinstance(ids, tf.RaggedTensor)
    assert ids.dtype == tf.int32
    assert ids.to_list() == [
        [4, 5, 12, 6, 7, 8, 11],
        [9, 10, UNK],
        [9, 8],
    ]
    assert strings(tokenizer.detokenize(ids)) == [
        "the cat , unplayable !",
        "playing [UNK]",
        "playable",
    ]


def test_scalar_and_column_inputs():
    tokenizer = WordPieceTokenizer(VOCABULARY, add_start_end=True)
    ids = tokenizer("the cat")
    assert ids.numpy().tolist() == [START, 4, 5, END]
    assert tokenizer.detokenize(ids).numpy() == b"the cat"
    column = tokenizer(tf.constant([["the"], ["cat cat"]]))
    assert column.to_list() == [[START, 4, END], [START, 5, 5, END]]
    assert tokenizer(np.array(["cat"])).to_list() == [[START, 5, END]]


@pytest.mark.parametrize(
    "lowercase,normalization",
    [(True, "nfd_strip_accents"), (True, "nfkc"), (False, None)],
)
def test_round_trip_gives_the_normalised_text(lowercase, normalization):
    corpus = make_corpus(seed=0)
    vocabulary = learn_wordpiece_vocabulary(
        corpus, 100, lowercase=lowercase, normalization=normalization
    )
    tokenizer = WordPieceTokenizer(
        vocabulary, lowercase=lowercase, normalization=normalization
    )
    # Held-out sentences, and new words spelled with known characters.
    texts = make_corpus(10, seed=99) + ["unplayable cats, replayed!"]
    ids = tokenizer(texts)
    assert UNK not in ids.flat_values.numpy()
    # Small vocabularies split words into pieces, so this is a real check.
    assert ids.flat_values.shape[0] > sum(len(t.split()) for t in texts)
    expected = [
        " ".join(reference_words(text, lowercase, normalization))
        for text in texts
    ]
    assert strings(tokenizer.detokenize(ids)) == expected


def test_unknown_words_and_characters():
    vocabulary = learn_wordpiece_vocabulary(make_corpus(), 120)
    tokenizer = WordPieceTokenizer(vocabulary)
    ids = tokenizer(["the жук cat", "日本 the"]).to_list()
    the, cat = tokenizer.token_to_id("the"), tokenizer.token_to_id("cat")
    # A word with an unknown character is one [UNK]; CJK ideographs are
    # words of their own.
    assert ids == [[the, UNK, cat], [UNK, UNK, the]]
    assert strings(tokenizer.detokenize(ids)) == [
        "the [UNK] cat",
        "[UNK] [UNK] the",
    ]


def test_too_long_word_is_unknown():
    tokenizer = WordPieceTokenizer(VOCABULARY)
    assert tokenizer("the " + "play" * 30).numpy().tolist() == [4, UNK]


@pytest.mark.parametrize(
    "add_start_end,expected",
    [
        (False, [[4, 5, 4, 5], [5, PAD, PAD, PAD], [PAD] * 4]),
        (
            True,
            [[START, 4, 5, END], [START, 5, END, PAD], [START, END] + [0] * 2],
        ),
    ],
)
def test_padding_and_truncation(add_start_end, expected):
    tokenizer = WordPieceTokenizer(
        VOCABULARY, sequence_length=4, add_start_end=add_start_end
    )
    ids = tokenizer(["the cat the cat the", "cat", ""])
    assert isinstance(ids, tf.Tensor) and ids.shape == (3, 4)
    assert ids.numpy().tolist() == expected
    assert tokenizer.compute_output_shape((3,)) == (3, 4)


def test_ragged_start_end():
    tokenizer = WordPieceTokenizer(VOCABULARY, add_start_end=True)
    ids = tokenizer(["", "the the the"])
    assert ids.to_list() == [[START, END], [START, 4, 4, 4, END]]


def test_detokenize_drops_special_ids_and_stops_at_end():
    tokenizer = WordPieceTokenizer(VOCABULARY)
    dense = tf.constant(
        [
            [START, 9, 10, PAD, 5, END, 4, 4],  # Stops at the first END.
            [4, 99, -1, 5, PAD, PAD, PAD, PAD],  # Out of range -> [UNK].
        ],
        tf.int64,
    )
    assert strings(tokenizer.detokenize(dense)) == [
        "playing cat",
        "the [UNK] [UNK] cat",
    ]
    ragged = tf.ragged.constant([[START, 6, 7, 8, END], [END, 4]])
    assert strings(tokenizer.detokenize(ragged)) == ["unplayable", ""]
    assert tokenizer.detokenize([4, 5]).numpy() == b"the cat"


def test_vocabulary_accessors():
    tokenizer = WordPieceTokenizer(VOCABULARY)
    assert tokenizer.vocabulary_size == len(VOCABULARY)
    assert tokenizer.get_vocabulary() == VOCABULARY
    assert tokenizer.get_vocabulary() is not tokenizer.vocabulary
    assert (tokenizer.padding_id, tokenizer.oov_id) == (PAD, UNK)
    assert (tokenizer.start_id, tokenizer.end_id) == (START, END)
    assert tokenizer.token_to_id("##play") == 7
    assert tokenizer.id_to_token(7) == "##play"
    tokens = tokenizer.id_to_token(tf.ragged.constant([[4, 5], [99]]))
    assert tokens.to_list() == [[b"the", b"cat"], [b"[UNK]"]]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tokenizer.token_to_id("dog")
    with pytest.raises(ValueError, match="Received: id=13"):
        tokenizer.id_to_token(13)


def test_custom_special_tokens():
    vocabulary = ["<pad>", "<unk>", "<s>", "</s>", "the"]
    tokenizer = WordPieceTokenizer(
        vocabulary,
        sequence_length=5,
        add_start_end=True,
        padding_token="<pad>",
        oov_token="<unk>",
        start_token="<s>",
        end_token="</s>",
    )
    ids = tokenizer(["the dog"]).numpy().tolist()
    assert ids == [[2, 4, 1, 3, 0]]
    assert strings(tokenizer.detokenize(ids)) == ["the <unk>"]


def test_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.txt"
    save_vocabulary(VOCABULARY, path)
    from_file = WordPieceTokenizer(str(path), name="tokenizer")
    from_list = WordPieceTokenizer(VOCABULARY, name="tokenizer")
    assert from_file.vocabulary == VOCABULARY
    assert from_file.get_config() == from_list.get_config()
    assert WordPieceTokenizer(path)("the cat").numpy().tolist() == [4, 5]


@pytest.mark.parametrize("sequence_length,batch_size", [(None, 2), (8, None)])
def test_tf_data_map(sequence_length, batch_size):
    tokenizer = WordPieceTokenizer(
        VOCABULARY, sequence_length=sequence_length, add_start_end=True
    )
    texts = ["The cat!", "unplayable", "", "cat, cat, cat"]
    eager = tokenizer(texts)
    ragged = sequence_length is None
    expected = eager.to_list() if ragged else eager.numpy().tolist()
    dataset = tf.data.Dataset.from_tensor_slices(texts)
    if batch_size:
        dataset = dataset.batch(batch_size)
    mapped = []
    for element in dataset.map(tokenizer):
        mapped += list(element) if batch_size else [element]
    assert [row.numpy().tolist() for row in mapped] == expected


def test_tf_function_round_trip():
    tokenizer = WordPieceTokenizer(VOCABULARY, add_start_end=True)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(batch):
        return tokenizer.detokenize(tokenizer(batch))

    texts = ["The cat!", "unplayable", "", "cat, cat, cat"]
    assert strings(round_trip(tf.constant(texts))) == [
        "the cat !",
        "unplayable",
        "",
        "cat , cat , cat",
    ]


def test_ids_stay_integers_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    tokenizer = WordPieceTokenizer(VOCABULARY, sequence_length=3)
    assert tokenizer(["the cat"]).dtype == tf.int32
    assert WordPieceTokenizer(VOCABULARY, dtype="int64")("cat").dtype == (
        tf.int64
    )


def test_config_round_trip():
    kwargs = {
        "vocabulary": VOCABULARY,
        "sequence_length": 7,
        "lowercase": False,
        "normalization": "nfkc",
        "add_start_end": True,
        "padding_token": "[PAD]",
        "oov_token": "[UNK]",
        "start_token": "[START]",
        "end_token": "[END]",
        "suffix_indicator": "##",
    }
    tokenizer = WordPieceTokenizer(**kwargs)
    config = tokenizer.get_config()
    assert {name: config[name] for name in kwargs} == kwargs
    revived = WordPieceTokenizer.from_config(config)
    assert revived.get_config() == config
    serialized = keras.saving.serialize_keras_object(tokenizer)
    json.dumps(serialized)  # Self-contained and JSON-serialisable.
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is WordPieceTokenizer
    assert deserialized.get_config() == config
    texts = ["The Cat", "ﬁne"]
    np.testing.assert_array_equal(deserialized(texts), tokenizer(texts))


def test_keras_model_save_and_reload(tmp_path):
    texts = tf.constant(["The cat!", "unplayable cat", "play"])
    inputs = keras.Input(shape=(), dtype="string", name="text")
    tokenizer = WordPieceTokenizer(
        VOCABULARY, sequence_length=6, add_start_end=True
    )
    ids = tokenizer(inputs)
    assert ids.shape == (None, 6) and ids.dtype == "int32"
    hidden = keras.layers.Embedding(len(VOCABULARY), 4, mask_zero=True)(ids)
    pooled = keras.layers.GlobalAveragePooling1D()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(2)(pooled))
    reference = model.predict(texts, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(texts, verbose=0), reference, rtol=1e-6
    )
    revived = reloaded.get_layer(tokenizer.name)
    assert revived.get_config() == tokenizer.get_config()


def test_symbolic_ragged_output():
    inputs = keras.Input(shape=(), dtype="string")
    outputs = WordPieceTokenizer(VOCABULARY)(inputs)
    assert outputs.shape == (None, None) and outputs.ragged
    model = keras.Model(inputs, outputs)
    assert model(tf.constant(["the cat", "cat"])).to_list() == [[4, 5], [5]]


_LOAD_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (registers the WordPiece ops)

    module_path, model_path, texts = sys.argv[1:]
    texts = tf.constant(json.loads(texts))
    loaded = tf.saved_model.load(module_path)
    ids = loaded.tokenize(texts)
    serving = loaded.signatures["serving_default"](texts=texts)
    exported = tf.saved_model.load(model_path)
    assert all(not name.startswith("keras_attention") for name in sys.modules)
    print(json.dumps({
        "ids": ids.numpy().tolist(),
        "serving": list(serving.values())[0].numpy().tolist(),
        "strings": [s.decode() for s in loaded.detokenize(ids).numpy()],
        "model": exported.serve(texts).numpy().tolist(),
    }))
    """
)


def test_saved_model_loads_without_keras_attention(tmp_path):
    """`tf.saved_model.save` of a `tf.Module` and `Model.export` both load.

    The loading process imports TensorFlow and tensorflow-text only.
    """
    tokenizer = WordPieceTokenizer(
        learn_wordpiece_vocabulary(make_corpus(), 90),
        sequence_length=12,
        add_start_end=True,
    )

    class TokenizerModule(tf.Module):
        def __init__(self, tokenizer):
            super().__init__()
            self.tokenizer = tokenizer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def tokenize(self, texts):
            return self.tokenizer(texts)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
        def detokenize(self, ids):
            return self.tokenizer.detokenize(ids)

    module = TokenizerModule(tokenizer)
    module_path = str(tmp_path / "tokenizer")
    tf.saved_model.save(
        module, module_path, signatures={"serving_default": module.tokenize}
    )
    inputs = keras.Input(shape=(), dtype="string")
    ids = tokenizer(inputs)
    embedded = keras.layers.Embedding(tokenizer.vocabulary_size, 3)(ids)
    model = keras.Model(inputs, keras.layers.Flatten()(embedded))
    model_path = str(tmp_path / "model")
    model.export(model_path, verbose=False)

    texts = ["The café is naïve!", "Straße — über alles", "жук"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, module_path, model_path]
        + [json.dumps(texts)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    expected_ids = tokenizer(texts).numpy().tolist()
    assert loaded["ids"] == expected_ids
    assert loaded["serving"] == expected_ids
    assert loaded["strings"] == strings(tokenizer.detokenize(expected_ids))
    assert loaded["strings"][0] == "the cafe is naive !"
    np.testing.assert_allclose(
        loaded["model"], model.predict(tf.constant(texts), verbose=0)
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"vocabulary": []}, "must not be empty"),
        ({"vocabulary": VOCABULARY[:3] + ["a"]}, "`end_token` '\\[END\\]'"),
        ({"vocabulary": VOCABULARY[1:] + ["[PAD]"]}, "id 0"),
        ({"vocabulary": VOCABULARY + ["the"]}, "repeat"),
        ({"vocabulary": VOCABULARY + ["a b"]}, "whitespace"),
        ({"vocabulary": VOCABULARY + [3]}, "non-empty string"),
        ({"vocabulary": 3}, "list of strings or a file path"),
        ({"vocabulary": VOCABULARY, "normalization": "nfc"}, "normalization"),
        ({"vocabulary": VOCABULARY, "sequence_length": 0}, "sequence_length"),
        (
            {
                "vocabulary": VOCABULARY,
                "sequence_length": 1,
                "add_start_end": 1,
            },
            "at least 2",
        ),
        ({"vocabulary": VOCABULARY, "dtype": "float32"}, "id dtype"),
        ({"vocabulary": VOCABULARY, "suffix_indicator": ""}, "suffix"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WordPieceTokenizer(**kwargs)


def test_missing_and_empty_vocabulary_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        WordPieceTokenizer(str(tmp_path / "nope.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        WordPieceTokenizer(empty)


def test_input_errors():
    tokenizer = WordPieceTokenizer(VOCABULARY)
    with pytest.raises(ValueError, match="must be strings. Received: dtype"):
        tokenizer(tf.constant([1, 2]))
    with pytest.raises(ValueError, match="must be strings"):
        tokenizer.tokenize([1.5])
    with pytest.raises(ValueError, match="must be strings"):
        tokenizer(np.array([1, 2]))
    with pytest.raises(ValueError, match="Received: shape=\\(1, 2\\)"):
        tokenizer(tf.constant([["the", "cat"]]))
    with pytest.raises(ValueError, match="must be integers"):
        tokenizer.detokenize(tf.constant([[1.0]]))
    with pytest.raises(ValueError, match="Received: shape=\\(1, 1, 1\\)"):
        tokenizer.detokenize(tf.constant([[[1]]]))
