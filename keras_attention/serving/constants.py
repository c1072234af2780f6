"""Names shared by every SavedModel of the package and its callers.

The signature, its input and its output keys, and the asset file names.
Plain strings: this module imports nothing, so any module (the exports, the
`Translator`, a recipe reading a served answer) can use them without an
import cycle.
"""

__all__ = [
    "SERVING_ATTENTION",
    "SERVING_CLASS_IDS",
    "SERVING_IDS",
    "SERVING_INPUT",
    "SERVING_OUTPUT",
    "SERVING_PROBABILITIES",
    "SERVING_SCORES",
    "SERVING_SIGNATURE",
    "SOURCE_VOCABULARY_ASSET",
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

# Vocabulary files written into a translator SavedModel's `assets/`.
SOURCE_VOCABULARY_ASSET = "source_vocabulary.txt"
TARGET_VOCABULARY_ASSET = "target_vocabulary.txt"
