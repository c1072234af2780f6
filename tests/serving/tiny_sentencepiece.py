"""An untrained tiny Transformer `Translator` with SentencePiece tokenizers.

`sentencepiece_translator(directory)` learns one cased SentencePiece model
per side of `CASED_PAIRS` (saved in `directory`) and wraps a random
`build_transformer` model in a greedy `Translator`.
"""

from keras_attention.serving.translator import Translator
from keras_attention.text import learn_or_load_sentencepiece_tokenizer
from tests.serving.tiny_models import tiny_transformer

# Cased pairs with names, numbers and punctuation.
CASED_PAIRS = [
    (f"O gato de {name} viu {n} cães.", f"{name}'s cat saw {n} dogs.")
    for name in ("Ana", "Bruno", "Carla", "Diogo")
    for n in range(0, 120, 7)
]
# Both sides give SentencePiece from 36 to 41 pieces.
VOCABULARY_SIZE = 38


def sentencepiece_translator(directory, max_output_length=5, **options):
    """A `Translator` of an untrained model, SentencePiece on both sides."""
    source_tokenizer, target_tokenizer = (
        learn_or_load_sentencepiece_tokenizer(
            [pair[side] for pair in CASED_PAIRS],
            VOCABULARY_SIZE,
            f"{directory}/{side}.model",
            add_start_end=True,
        )
        for side in (0, 1)
    )
    return Translator(
        tiny_transformer(source_tokenizer, target_tokenizer),
        source_tokenizer,
        target_tokenizer,
        max_output_length=max_output_length,
        **options,
    )
