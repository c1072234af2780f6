import numpy as np
import pytest

from keras_attention import viz
from keras_attention.models.transformer_classifier import (
    build_transformer_classifier,
)
from keras_attention.serving import Seq2SeqTranslator
from keras_attention.serving import Translator
from keras_attention.text.wordpiece_tokenizer import WordPieceTokenizer
from keras_attention.viz import plot_attention
from keras_attention.viz import plot_attention_heads
from keras_attention.viz import plot_classifier_attention
from keras_attention.viz import plot_seq2seq_attention
from keras_attention.viz import plot_training_curves
from keras_attention.viz import plot_translator_attention
from tests.serving.tiny_models import seq2seq_parts
from tests.serving.tiny_models import translator_parts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_attention_writes_png(tmp_path):
    weights = np.random.default_rng(0).random((5, 9))  # padded, cropped
    examples = [
        (list("aug 1"), list("2003"), weights),
        (list("a b"), list("xy"), np.eye(3)),
    ]
    path = plot_attention(examples, tmp_path / "plots" / "attention.png")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_plot_attention_validates(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plot_attention([], tmp_path / "a.png")
    with pytest.raises(ValueError, match="Received: weights.shape=\\(3,\\)"):
        plot_attention([(["a"], ["b"], np.ones(3))], tmp_path / "a.png")


def test_plot_training_curves(tmp_path):
    history = {"loss": [1.0, 0.1, 0.01], "val_exact_match": [0.5, 0.9, 1.0]}
    path = plot_training_curves(history, tmp_path / "curves.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="none of the metrics"):
        plot_training_curves({"accuracy": [1.0]}, tmp_path / "c.png")


@pytest.mark.parametrize("shape", [(3, 6, 6), (2, 2, 6, 6)])
def test_plot_attention_heads_writes_png(tmp_path, shape):
    scores = np.random.default_rng(0).random(shape)
    tokens = ["[CLS]", "the", " ", "cat", "sat"]  # the last key is cropped
    path = plot_attention_heads(
        tokens, scores, tmp_path / "plots" / "heads.png", title="example"
    )
    with open(path, "rb") as file:
        assert file.read(8) == PNG_MAGIC


@pytest.mark.parametrize(
    "tokens,shape,match",
    [
        (["a", "b"], (2, 2), "scores"),
        (["a", "b", "c"], (1, 2, 2), "tokens"),
        ([], (1, 2, 2), "tokens"),
    ],
)
def test_plot_attention_heads_rejects_bad_input(tmp_path, tokens, shape, match):
    with pytest.raises(ValueError, match=f"{match}.*Received"):
        plot_attention_heads(tokens, np.zeros(shape), tmp_path / "x.png")


def spy_on(monkeypatch, name):
    """Record the arguments of `viz.<name>`, which still draws."""
    calls = []
    draw = getattr(viz, name)

    def record(*args, **kwargs):
        calls.append((args, kwargs))
        return draw(*args, **kwargs)

    monkeypatch.setattr(viz, name, record)
    return calls


CLASSIFIER_VOCABULARY = [
    "[PAD]",
    "[UNK]",
    "[START]",
    "[END]",
    "the",
    "cat",
    "sat",
    "on",
    "mat",
]


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_plot_classifier_attention(tmp_path, monkeypatch, pooling):
    tokenizer = WordPieceTokenizer(CLASSIFIER_VOCABULARY)
    model = build_transformer_classifier(
        len(CLASSIFIER_VOCABULARY),
        2,
        num_layers=2,
        num_heads=2,
        embedding_dim=8,
        feed_forward_dim=16,
        pooling=pooling,
    )
    calls = spy_on(monkeypatch, "plot_attention_heads")
    texts = ["the cat sat on the mat", "", "the cat sat", "cat sat on mat"]
    path = tmp_path / "heads.png"
    text = plot_classifier_attention(
        model, tokenizer, texts, path, ["no", "yes"], max_tokens=2
    )
    assert text == "the cat sat"  # the fewest tokens, but not none
    assert path.read_bytes().startswith(PNG_MAGIC)
    (tokens, scores, _), kwargs = calls[0]
    expected = ["the", "cat"]  # cut to max_tokens
    if pooling == "cls":
        expected = ["[CLS]", *expected]
    assert tokens == expected
    assert scores.shape == (2, 2, len(expected), len(expected))
    assert kwargs["title"].startswith("'the cat sat' -> ")
    assert kwargs["title"].split(" -> ")[1].split()[0] in ("no", "yes")
    with pytest.raises(ValueError, match="empty"):
        plot_classifier_attention(model, tokenizer, [], path)


def test_plot_seq2seq_attention(tmp_path, monkeypatch):
    model, source, target = seq2seq_parts()
    translator = Seq2SeqTranslator(
        model, source, target, 10, 32, jit_compile=False
    )
    calls = spy_on(monkeypatch, "plot_attention")
    sources = ["aug 19", "2003"]
    path = plot_seq2seq_attention(translator, sources, tmp_path / "a.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    (examples, _), _ = calls[0]
    predictions = translator.translate(sources)
    for source_text, prediction, (inputs, outputs, weights) in zip(
        sources, predictions, examples
    ):
        assert inputs == list(source_text)
        assert outputs == list(prediction) + ["[END]"]
        assert weights.shape[1] >= len(inputs)


def test_plot_translator_attention(tmp_path, monkeypatch):
    model, source_tokenizer, target_tokenizer = translator_parts()
    beam = Translator(
        model, source_tokenizer, target_tokenizer, 5, beam_width=2
    )
    with pytest.raises(ValueError, match="greedy.*Received: beam_width=2"):
        plot_translator_attention(beam, ["um"], tmp_path / "a.png")
    calls = spy_on(monkeypatch, "plot_attention")
    sources = ["um dois 3", "dois"]
    path = plot_translator_attention(beam.greedy(), sources, tmp_path / "a.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    (examples, _), _ = calls[0]
    end = target_tokenizer.id_to_token(target_tokenizer.end_id)
    for source_text, (inputs, outputs, weights) in zip(sources, examples):
        # The source's WordPieces with [START] and [END], no padding.
        expected = source_tokenizer([source_text]).to_list()[0]
        assert inputs == [source_tokenizer.id_to_token(i) for i in expected]
        assert 1 <= len(outputs) <= 5
        assert end not in outputs[:-1]
        assert weights.shape == (5, 5)  # (steps, longest source)


def test_plot_causal_lm_attention_labels_tokens_with_the_vocabulary(tmp_path):
    from keras_attention.viz import plot_causal_lm_attention

    class Tokenizer:
        vocabulary = ["<pad>", "a", "b", "c"]

    class Generator:
        def attention_scores(self, ids):
            self.ids = ids
            n = ids.shape[1]
            return (
                np.tril(np.ones((1, 2, 2, n, n))) / np.arange(1, n + 1)[:, None]
            )

    generator = Generator()
    path = plot_causal_lm_attention(
        generator, Tokenizer(), [1, 2, 3], tmp_path / "lm.png", title="t"
    )
    assert path.stat().st_size > 0
    np.testing.assert_array_equal(generator.ids, [[1, 2, 3]])  # one batch
