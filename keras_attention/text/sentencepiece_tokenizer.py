"""A SentencePiece subword tokenizer layer that runs in the TensorFlow graph."""

import base64
import os
import uuid

import keras
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops.sentencepiece_tokenizer import (
    gen_sentencepiece_tokenizer,
)

from keras_attention.text._subword_tokenizer import SubwordTokenizer
from keras_attention.text._subword_tokenizer import batch_of_texts
from keras_attention.text._subword_tokenizer import check_sequence_length
from keras_attention.text._subword_tokenizer import detokenize_with
from keras_attention.text._subword_tokenizer import frame_ids
from keras_attention.text.sentencepiece_model import check_model_proto
from keras_attention.text.sentencepiece_model import read_model_file
from keras_attention.text.sentencepiece_model import write_model_file

__all__ = ["SentencePieceTokenizer"]

# The file `save_assets` writes (and `load_assets` reads) in a `.keras`.
MODEL_ASSET = "sentencepiece.model"


class _SentencepieceModel(tf.saved_model.experimental.TrackableResource):
    """The model resource of one tokenizer, under a name of its own.

    tensorflow-text's own resource has no name, so it belongs to the
    kernel that made it: eager kernels are cached and shared by every
    tokenizer of the same model bytes, and `keras.backend.clear_session()`
    (which clears that cache) deletes the resource under all of them
    (`Resource ... SentencepieceResource does not exist`). A unique shared
    name keeps the resource in the resource manager whatever happens to
    the kernel; a SavedModel's initializer creates it again on load.
    """

    def __init__(self, model):
        super().__init__()
        self._model = model
        self._shared_name = f"keras_attention_sentencepiece_{uuid.uuid4().hex}"
        self._handle = self.resource_handle  # creates the resource

    def _create_resource(self):
        return gen_sentencepiece_tokenizer.sentencepiece_op(
            model=self._model, shared_name=self._shared_name
        )


@keras.saving.register_keras_serializable(package="keras_attention")
class SentencePieceTokenizer(SubwordTokenizer):
    """Splits raw text into SentencePiece subwords and maps them to ids.

    The text is read as written: case, accents and punctuation are kept
    (only the model's own `nmt_nfkc` normalization applies), and
    `detokenize` inverts `tokenize` into natural text (`"A man in an orange
    hat."`, not `"a man in an orange hat ."`), since a SentencePiece model
    encodes spaces as part of its pieces (`"▁man"`). Tokenization runs in
    the TensorFlow graph with `tensorflow_text.SentencepieceTokenizer`, an
    op set TF Serving links, so the layer works eagerly, in `tf.data`
    pipelines, in `tf.function`s and in exported SavedModels (which hold
    the model as a resource restored by the graph's initializer).

    The model must have the padding id `0` and unknown, start and end ids,
    as `learn_sentencepiece_model` trains it (`0`, `1`, `2`, `3`).
    Characters the model does not cover become the unknown id, which
    `detokenize` writes as `" ⁇ "`.

    Args:
        model: the serialized SentencePiece model (`bytes`, e.g. from
            `learn_sentencepiece_model`) or the path of a `.model` file.
        sequence_length: optional int. When set, `tokenize` returns a
            dense `(batch, sequence_length)` tensor, truncated and padded
            with the padding id; when `None`, a ragged tensor. Defaults to
            `None`.
        add_start_end: bool, whether to put the start id first and the end
            id last in every sequence (on truncation the end id is kept).
            Defaults to `False`.
        **kwargs: arguments of `keras.layers.Layer`; `dtype` is the id
            dtype, `"int32"` (the default) or `"int64"`.

    Call arguments:
        inputs: strings, a scalar, `(batch,)` or `(batch, 1)` (Python
            strings, NumPy arrays or `tf.string` tensors).

    Returns:
        The ids, in `dtype`: `(batch, sequence_length)` when
        `sequence_length` is set, else a `(batch, None)` `tf.RaggedTensor`;
        for a scalar input, one sequence without the batch axis.

    Example:

    >>> from keras_attention.text import learn_sentencepiece_model
    >>> model = learn_sentencepiece_model(
    ...     ["A man in an orange hat.", "Two dogs run."] * 20, 23)
    >>> tokenizer = SentencePieceTokenizer(model, add_start_end=True)
    >>> ids = tokenizer(["A man in an orange hat.", "Two dogs run."])
    >>> [(row[0], row[-1]) for row in ids.to_list()]  # start, end ids
    [(2, 3), (2, 3)]
    >>> tokenizer.detokenize(ids).numpy().tolist()
    [b'A man in an orange hat.', b'Two dogs run.']

    References:
        - [Kudo and Richardson, 2018](https://arxiv.org/abs/1808.06226),
          SentencePiece.
        - [Kudo, 2018](https://arxiv.org/abs/1804.10959), the unigram
          language model of subwords.
    """

    def __init__(
        self, model, sequence_length=None, add_start_end=False, **kwargs
    ):
        if isinstance(model, (str, os.PathLike)):
            model = read_model_file(model)
        if not isinstance(model, (bytes, bytearray)):
            raise ValueError(
                "`model` must be the serialized SentencePiece model (bytes) "
                f"or a file path. Received: {type(model).__name__}"
            )
        model = bytes(model)
        processor = check_model_proto(model)
        sequence_length = check_sequence_length(sequence_length, add_start_end)
        super().__init__(**kwargs)
        self.model = model
        self.sequence_length = sequence_length
        self.add_start_end = bool(add_start_end)
        self.vocabulary = [
            processor.id_to_piece(i) for i in range(processor.get_piece_size())
        ]
        self.padding_id = processor.pad_id()
        self.oov_id = processor.unk_id()
        self.start_id = processor.bos_id()
        self.end_id = processor.eos_id()
        self.padding_token = self.vocabulary[self.padding_id]
        self.oov_token = self.vocabulary[self.oov_id]
        self.start_token = self.vocabulary[self.start_id]
        self.end_token = self.vocabulary[self.end_id]
        self._token_to_id = {t: i for i, t in enumerate(self.vocabulary)}
        self._sentencepiece = tf_text.SentencepieceTokenizer(
            model=model, out_type=tf.int32
        )
        self._sentencepiece._model_resource = _SentencepieceModel(model)
        self.built = True

    def tokenize(self, inputs):
        """Maps strings to ids (see the class docstring for shapes)."""
        texts, scalar = batch_of_texts(inputs)  # (batch,)
        pieces = self._sentencepiece.tokenize(texts)  # (batch, None)
        ids = tf.cast(frame_ids(self, pieces), self.compute_dtype)
        return ids[0] if scalar else ids

    def detokenize(self, ids):
        """Joins ids back into natural text.

        Each sequence is read up to its first end id; padding, start and
        end ids are dropped and the pieces are decoded by the model (the
        `"▁"` of a piece becomes a space; no space before punctuation the
        model learned attached). Out-of-range ids read as unknown.

        Args:
            ids: integer ids, `(batch, length)` (dense or ragged) or
                `(length,)`.

        Returns:
            A `(batch,)` string tensor, or a scalar for `(length,)` ids.
        """
        return detokenize_with(self, ids, self._sentencepiece.detokenize)

    def save_model_file(self, path):
        """Writes the model to `path` (atomically): a `.model` file that
        `SentencePieceTokenizer(path)` and `sentencepiece` itself read."""
        write_model_file(self.model, path)

    def save_assets(self, dir_path):
        self.save_model_file(os.path.join(dir_path, MODEL_ASSET))

    def load_assets(self, dir_path):
        model = read_model_file(os.path.join(dir_path, MODEL_ASSET))
        if model != self.model:
            raise ValueError(
                f"The SentencePiece model asset in {dir_path!r} differs from "
                "the model in the layer's config. Received: a file of "
                f"{len(model)} bytes for a model of {len(self.model)}"
            )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                # JSON holds no bytes: the model as base64 text.
                "model": base64.b64encode(self.model).decode("ascii"),
                "sequence_length": self.sequence_length,
                "add_start_end": self.add_start_end,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("model"), str):
            config["model"] = base64.b64decode(config["model"])
        return cls(**config)
