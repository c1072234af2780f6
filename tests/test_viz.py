import numpy as np
import pytest

from keras_attention.viz import plot_attention
from keras_attention.viz import plot_training_curves

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
