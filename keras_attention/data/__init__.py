"""Datasets: the package's TFDS builders, local parallel text, pipelines.

Where things live:

- `pipeline`: the one `tf.data` pipeline (tokenize in chunks, cache,
  seeded shuffle, length buckets or padded batches, prefetch) and its
  defaults; the tasks below supply its hooks.
- `tfds`: TFDS builders by name, supervised keys, split checks and the
  hold-out policy.
- `text_classification`, `translation`, `parallel_text`: each task's
  loaders and `make_*_dataset`.
- `sources`: a task's data from local files or a TFDS name
  (`load_text_classification`, `load_text_pairs`, `pair_texts`).
- `language_model_text`: a language model's documents, its tokenizer,
  their token stream and its windows (`load_documents`,
  `learn_or_load_tokenizer`, `token_streams`,
  `make_language_model_dataset`, `window_prompts`, `continue_texts`).
- `date_conversion`: the
  package's own TFDS dataset, and the character-level seq2seq data step
  of a list of text pairs (`character_seq2seq_data`).

Users' files are read by `keras_attention.files` (`read_text_lines`, errors
that name the file and line), which `keras_attention.text` uses too.

Importing this package registers the `date_conversion` TFDS builder.
"""

from keras_attention.data.date_conversion import CharacterSeq2SeqData
from keras_attention.data.date_conversion import DateConversion
from keras_attention.data.date_conversion import DateConversionConfig
from keras_attention.data.date_conversion import character_seq2seq_data
from keras_attention.data.date_conversion import generate_date_pairs
from keras_attention.data.language_model_text import TOKENIZER_FILES
from keras_attention.data.language_model_text import continue_texts
from keras_attention.data.language_model_text import learn_or_load_tokenizer
from keras_attention.data.language_model_text import load_documents
from keras_attention.data.language_model_text import make_language_model_dataset
from keras_attention.data.language_model_text import token_streams
from keras_attention.data.language_model_text import window_prompts
from keras_attention.data.parallel_text import load_parallel_text
from keras_attention.data.parallel_text import make_seq2seq_dataset
from keras_attention.data.parallel_text import split_pairs
from keras_attention.data.sources import TextPairs
from keras_attention.data.sources import load_text_classification
from keras_attention.data.sources import load_text_pairs
from keras_attention.data.sources import pair_texts
from keras_attention.data.text_classification import TextClassificationData
from keras_attention.data.text_classification import label_counts
from keras_attention.data.text_classification import load_class_names
from keras_attention.data.text_classification import (
    load_tfds_text_classification,
)
from keras_attention.data.text_classification import (
    load_tsv_text_classification,
)
from keras_attention.data.text_classification import (
    make_text_classification_dataset,
)
from keras_attention.data.text_classification import read_labeled_tsv
from keras_attention.data.text_classification import save_class_names
from keras_attention.data.tfds import tfds_builder
from keras_attention.data.translation import TranslationData
from keras_attention.data.translation import learn_translation_tokenizers
from keras_attention.data.translation import load_parallel_files
from keras_attention.data.translation import load_tfds_translation
from keras_attention.data.translation import load_tfds_translation_data
from keras_attention.data.translation import make_translation_dataset
from keras_attention.data.translation import normalized_references
from keras_attention.data.translation import text_pairs
from keras_attention.data.translation import translation_tokenizers
from keras_attention.files import read_text_lines

__all__ = [
    "CharacterSeq2SeqData",
    "DateConversion",
    "DateConversionConfig",
    "TOKENIZER_FILES",
    "character_seq2seq_data",
    "continue_texts",
    "generate_date_pairs",
    "learn_or_load_tokenizer",
    "load_documents",
    "make_language_model_dataset",
    "token_streams",
    "window_prompts",
    "load_parallel_text",
    "make_seq2seq_dataset",
    "split_pairs",
    "TextPairs",
    "load_text_classification",
    "load_text_pairs",
    "pair_texts",
    "TextClassificationData",
    "label_counts",
    "load_class_names",
    "load_tfds_text_classification",
    "load_tsv_text_classification",
    "make_text_classification_dataset",
    "read_labeled_tsv",
    "save_class_names",
    "TranslationData",
    "learn_translation_tokenizers",
    "load_parallel_files",
    "load_tfds_translation",
    "load_tfds_translation_data",
    "make_translation_dataset",
    "normalized_references",
    "read_text_lines",
    "text_pairs",
    "tfds_builder",
    "translation_tokenizers",
]
