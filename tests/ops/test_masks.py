import numpy as np
import pytest

from keras_attention.ops import masks


@pytest.mark.parametrize("q_len,k_len", [(4, 4), (2, 5), (1, 3)])
def test_causal_mask_is_bottom_right_aligned(q_len, k_len):
    expected = np.tri(q_len, k_len, k_len - q_len, dtype=bool)
    result = masks.causal_mask(q_len, k_len)
    np.testing.assert_array_equal(np.asarray(result), expected)


def test_causal_mask_square_is_lower_triangular():
    np.testing.assert_array_equal(
        np.asarray(masks.causal_mask(3)), np.tril(np.ones((3, 3), bool))
    )


def test_padding_mask_combines_query_and_key_masks():
    query_mask = np.array([[1, 1, 0]])
    key_mask = np.array([[True, False]])
    result = np.asarray(masks.padding_mask(query_mask, key_mask))
    expected = query_mask[:, :, None].astype(bool) & key_mask[:, None, :]
    np.testing.assert_array_equal(result, expected)
    assert masks.padding_mask(None, None) is None


def test_merge_masks_skips_none_and_reads_numbers_as_bools():
    a = np.array([[1, 0, 2]])
    b = np.array([[True, True, False]])
    np.testing.assert_array_equal(
        np.asarray(masks.merge_masks(None, a, b)), [[True, False, False]]
    )
    assert masks.merge_masks(None, None) is None


def test_compute_attention_mask_merges_every_source():
    query = np.zeros((2, 3, 4), "float32")
    value = np.zeros((2, 3, 4), "float32")
    value_mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    attention_mask = np.ones((2, 3, 3), bool)
    attention_mask[1, 2, 0] = False
    result = np.asarray(
        masks.compute_attention_mask(
            query,
            value,
            value_mask=value_mask,
            attention_mask=attention_mask,
            use_causal_mask=True,
        )
    )
    expected = (
        np.tril(np.ones((3, 3), bool))[None]
        & value_mask[:, None, :]
        & attention_mask
    )
    np.testing.assert_array_equal(result, expected)
    assert masks.compute_attention_mask(query, value) is None


def test_compute_attention_mask_rejects_wrong_shape():
    query = np.zeros((2, 3, 4), "float32")
    value = np.zeros((2, 5, 4), "float32")
    with pytest.raises(ValueError, match="attention_mask.*Received"):
        masks.compute_attention_mask(
            query, value, attention_mask=np.ones((2, 3, 3), bool)
        )
    with pytest.raises(ValueError, match="attention_mask.*Received"):
        masks.compute_attention_mask(
            query, value, attention_mask=np.ones((3, 5), bool)
        )
