"""Serving: SavedModels that take raw strings and answer strings.

Every export is `export_*(path, <the thing exported>, ...options,
version=None)`: `path` is a model base directory as TF Serving watches it,
the SavedModel goes to `<path>/<version>/` (the next integer version by
default) and the export returns that directory. The SavedModel has a
`serving_default` signature, `texts: (batch,) tf.string` in, a dict with
at least `"outputs": (batch,) tf.string` and `"status": (batch,)
tf.string` out; a bad item (empty, over-long, not UTF-8) gets its status
and an empty answer, never failing the others. It loads with plain
TensorFlow (plus tensorflow-text for WordPiece models) in a process that
never imports `keras_attention`, and it never modifies the model,
tokenizer or translator it is given.

Layout (imports flow down this list only):

- `constants`: the signature names, their input and output keys, the
  item statuses, the asset file names; imports nothing.
- `item_status`: each item of a batch stands alone: its status (`ok`,
  `truncated`, `empty`, `too_long`, `invalid_utf8`), and the model run on
  the answerable items only.
- `model_versions`: TF Serving's layout, `<base>/<version>/`: writing a
  version all or nothing, finding and loading the newest.
- `request_formats`: TF Serving's gRPC requests (`PredictRequest`,
  `ClassificationRequest`) and REST bodies for a batch of texts, and their
  answers by a loaded signature.
- `warmup`: the `assets.extra/tf_serving_warmup_requests` file.
- `_archive`: private helpers of the exports (input spec, tokenizer copy,
  writing an `ExportArchive`).
- `translator`: `Translator`, a Transformer and its tokenizers as one
  `tf.Module` that translates in-process and is what gets exported.
- `seq2seq_translator`: `Seq2SeqTranslator`, a `build_attention_seq2seq`
  model and its character tokenizers, in-process, screening each item as
  `export_seq2seq` does.
- `text_to_text`: `export_text_to_text` (tokenize, decode, detokenize) and
  `export_seq2seq` (the greedy decoder of `build_attention_seq2seq`).
- `classifier`: `export_text_classifier`.
- `translator_export`: `export_translator`, a `Translator` with its
  vocabularies as assets.
- `language_model`: `export_causal_lm`, a `build_causal_lm` model with
  its tokenizer and cached sampling: prompts in, `outputs` and
  `completions` out, and a `generate` signature with per-item sampling
  settings.
- `op_check`: `check_saved_model_ops`, every op type of a SavedModel's
  graphs and whether TF Serving (TensorFlow core ops plus
  tensorflow-text's) can run it; `python -m keras_attention.serving check
  DIR` from a shell.
- `fresh_process`: `run_saved_model_in_fresh_process`, which checks that a
  SavedModel answers the same without `keras_attention`, and
  `compare_served_classes`, that comparison for a classifier (near ties
  allowed).
"""

from keras_attention.serving.classifier import export_text_classifier
from keras_attention.serving.constants import CLASSIFY_CLASSES
from keras_attention.serving.constants import CLASSIFY_INPUTS
from keras_attention.serving.constants import CLASSIFY_SCORES
from keras_attention.serving.constants import CLASSIFY_SIGNATURE
from keras_attention.serving.constants import EXAMPLE_TEXT_FEATURE
from keras_attention.serving.constants import GENERATE_SIGNATURE
from keras_attention.serving.constants import ITEM_STATUSES
from keras_attention.serving.constants import SAMPLING_INPUTS
from keras_attention.serving.constants import SERVING_ATTENTION
from keras_attention.serving.constants import SERVING_CLASS_IDS
from keras_attention.serving.constants import SERVING_COMPLETIONS
from keras_attention.serving.constants import SERVING_IDS
from keras_attention.serving.constants import SERVING_INPUT
from keras_attention.serving.constants import SERVING_OUTPUT
from keras_attention.serving.constants import SERVING_PROBABILITIES
from keras_attention.serving.constants import SERVING_SCORES
from keras_attention.serving.constants import SERVING_SIGNATURE
from keras_attention.serving.constants import SERVING_STATUS
from keras_attention.serving.constants import SOURCE_VOCABULARY_ASSET
from keras_attention.serving.constants import STATUS_EMPTY
from keras_attention.serving.constants import STATUS_INVALID_UTF8
from keras_attention.serving.constants import STATUS_OK
from keras_attention.serving.constants import STATUS_TOO_LONG
from keras_attention.serving.constants import STATUS_TRUNCATED
from keras_attention.serving.constants import TARGET_VOCABULARY_ASSET
from keras_attention.serving.fresh_process import compare_served_classes
from keras_attention.serving.fresh_process import (
    run_saved_model_in_fresh_process,
)
from keras_attention.serving.language_model import export_causal_lm
from keras_attention.serving.model_versions import load_saved_model
from keras_attention.serving.model_versions import next_version
from keras_attention.serving.model_versions import saved_model_path
from keras_attention.serving.op_check import check_saved_model_ops
from keras_attention.serving.op_check import registered_op_sets
from keras_attention.serving.request_formats import (
    answer_classification_request,
)
from keras_attention.serving.request_formats import answer_predict_request
from keras_attention.serving.request_formats import answer_rest_body
from keras_attention.serving.request_formats import classification_request
from keras_attention.serving.request_formats import predict_request
from keras_attention.serving.request_formats import predict_response_outputs
from keras_attention.serving.request_formats import rest_predict_body
from keras_attention.serving.seq2seq_translator import Seq2SeqTranslator
from keras_attention.serving.text_to_text import export_seq2seq
from keras_attention.serving.text_to_text import export_text_to_text
from keras_attention.serving.translator import Translator
from keras_attention.serving.translator_export import export_translator
from keras_attention.serving.warmup import read_warmup_requests
from keras_attention.serving.warmup import write_warmup_requests

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
    "Seq2SeqTranslator",
    "TARGET_VOCABULARY_ASSET",
    "Translator",
    "answer_classification_request",
    "answer_predict_request",
    "answer_rest_body",
    "check_saved_model_ops",
    "classification_request",
    "compare_served_classes",
    "export_causal_lm",
    "export_seq2seq",
    "export_text_classifier",
    "export_text_to_text",
    "export_translator",
    "load_saved_model",
    "next_version",
    "predict_request",
    "predict_response_outputs",
    "read_warmup_requests",
    "registered_op_sets",
    "rest_predict_body",
    "run_saved_model_in_fresh_process",
    "saved_model_path",
    "write_warmup_requests",
]
