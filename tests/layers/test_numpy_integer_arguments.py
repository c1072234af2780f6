"""Integer arguments may be NumPy integers (e.g. from a hyper-parameter grid).

Keras accepts them; the layers store Python ints, so configs stay plain
JSON, and a NumPy float or a bool is still rejected.
"""

import numpy as np
import pytest

import keras_attention as ka

INT = np.int64


@pytest.mark.parametrize(
    "make, keys",
    [
        (
            lambda: ka.MultiHeadAttention(INT(2), INT(8), chunk_size=INT(3)),
            ("num_heads", "key_dim", "chunk_size"),
        ),
        (
            lambda: ka.TransformerBlock(INT(2), feed_forward_dim=INT(32)),
            ("num_heads", "feed_forward_dim"),
        ),
        (lambda: ka.PositionEmbedding(INT(10)), ("sequence_length",)),
    ],
)
def test_numpy_integers_are_stored_as_python_ints(make, keys):
    config = make().get_config()
    for key in keys:
        assert type(config[key]) is int, key


def test_numpy_integers_in_builders_and_the_op():
    model = ka.models.build_transformer(
        INT(20),
        INT(20),
        num_layers=INT(1),
        d_model=INT(16),
        num_heads=INT(2),
        feed_forward_dim=INT(16),
    )
    assert model.count_params() > 0
    x = np.random.default_rng(0).random((1, 5, 1, 4)).astype("float32")
    dense = ka.ops.scaled_dot_product_attention(x, x, x)
    chunked = ka.ops.scaled_dot_product_attention(
        x, x, x, chunk_size=INT(2), implementation="chunked"
    )
    np.testing.assert_allclose(chunked, dense, atol=1e-6)


@pytest.mark.parametrize("value", [np.float64(2.0), True, INT(0)])
def test_non_integers_and_zero_are_still_rejected(value):
    with pytest.raises(ValueError, match="num_heads.*positive integer"):
        ka.MultiHeadAttention(value, 8)
