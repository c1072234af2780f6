"""Datasets: the package's TFDS builders, local parallel text, pipelines.

Importing this package registers the `date_conversion` TFDS builder.
"""

from keras_attention.data.date_conversion import DateConversion
from keras_attention.data.date_conversion import DateConversionConfig
from keras_attention.data.date_conversion import generate_date_pairs
from keras_attention.data.parallel_text import load_parallel_text
from keras_attention.data.parallel_text import make_seq2seq_dataset
from keras_attention.data.parallel_text import split_pairs

__all__ = [
    "DateConversion",
    "DateConversionConfig",
    "generate_date_pairs",
    "load_parallel_text",
    "make_seq2seq_dataset",
    "split_pairs",
]
