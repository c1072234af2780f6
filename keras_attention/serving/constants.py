"""Names shared by every SavedModel of the package and its callers.

The signatures, their inputs and output keys, the per-item statuses, and
the asset file names.
Plain strings: this module imports nothing, so any module (the exports, the
`Translator`, a recipe reading a served answer) can use them without an
import cycle.
"""

__all__ = [
    "CLASSIFY_CLASSES",
    "CLASSIFY_INPUTS",
    "CLASSIFY_SCORES",
    "CLASSIFY_SIGNATURE",
    "EXAMPLE_TEXT_FEATURE",
    "GENERATE_SIGNATURE",
    "ITEM_STATUSES",
    "SAMPLING_INPUTS",
    "SERVING_ATTENTION",
    "SERVING_CLASS_IDS",
    "SERVING_COMPLETIONS",
    "SERVING_IDS",
    "SERVING_INPUT",
    "SERVING_OUTPUT",
    "SERVING_PROBABILITIES",
    "SERVING_SCORES",
    "SERVING_SIGNATURE",
    "SERVING_STATUS",
    "SOURCE_VOCABULARY_ASSET",
    "STATUS_EMPTY",
    "STATUS_INVALID_UTF8",
    "STATUS_OK",
    "STATUS_TOO_LONG",
    "STATUS_TRUNCATED",
    "TARGET_VOCABULARY_ASSET",
]

# The signature TF Serving calls by default, and its one input.
SERVING_SIGNATURE = "serving_default"
SERVING_INPUT = "texts"  # (batch,) tf.string

# Output keys.
SERVING_OUTPUT = "outputs"  # (batch,) tf.string, every export
SERVING_ATTENTION = "attention_weights"  # (batch, steps, src_len) float32
SERVING_IDS = "output_ids"  # (batch, steps) int32, `Translator`
SERVING_SCORES = "scores"  # (batch,) float32, `Translator` beam search
SERVING_PROBABILITIES = "probabilities"  # (batch, classes), classifier
SERVING_CLASS_IDS = "class_ids"  # (batch,) int32, classifier
SERVING_STATUS = "status"  # (batch,) tf.string, every export
SERVING_COMPLETIONS = "completions"  # (batch,) tf.string, language model

# The status of each item of a batch (see `item_status`). Only `ok` and
# `truncated` items are answered; the others get empty outputs.
STATUS_OK = "ok"
STATUS_TRUNCATED = "truncated"  # over-long, cut to the limit, answered
STATUS_EMPTY = "empty"  # nothing but blanks, or no token
STATUS_TOO_LONG = "too_long"  # over-long and rejected (the default)
STATUS_INVALID_UTF8 = "invalid_utf8"
ITEM_STATUSES = (
    STATUS_OK,
    STATUS_TRUNCATED,
    STATUS_EMPTY,
    STATUS_TOO_LONG,
    STATUS_INVALID_UTF8,
)

# The classifier's signature for TF Serving's Classify API: serialized
# `tf.Example`s in, the text in a bytes feature; every class and its
# probability out.
CLASSIFY_SIGNATURE = "classification"
CLASSIFY_INPUTS = "inputs"  # (batch,) serialized tf.Example
EXAMPLE_TEXT_FEATURE = "text"
CLASSIFY_CLASSES = "classes"  # (batch, classes) tf.string
CLASSIFY_SCORES = "scores"  # (batch, classes) float32

# The language model's signature with per-item sampling settings, and its
# inputs besides `texts`: name -> dtype name, each `(batch,)`.
GENERATE_SIGNATURE = "generate"
SAMPLING_INPUTS = {
    "max_new_tokens": "int32",
    "temperature": "float32",
    "top_k": "int32",
    "seed": "int32",
}

# Vocabulary files written into a translator SavedModel's `assets/`.
SOURCE_VOCABULARY_ASSET = "source_vocabulary.txt"
TARGET_VOCABULARY_ASSET = "target_vocabulary.txt"
