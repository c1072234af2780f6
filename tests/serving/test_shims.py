"""The deprecated modules still give the very objects of `serving`."""

import keras_attention.export as export
import keras_attention.models.transformer_translator as transformer_translator
from keras_attention import serving


def test_export_module_is_an_alias_of_serving():
    for name in export.__all__:
        assert getattr(export, name) is getattr(serving, name), name


def test_transformer_translator_module_is_an_alias_of_serving():
    for name in transformer_translator.__all__:
        assert getattr(transformer_translator, name) is getattr(
            serving, name
        ), name
