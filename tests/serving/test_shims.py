"""The deprecated modules still give the very objects of `serving`."""

import pytest

import keras_attention.export as export
import keras_attention.models.transformer_translator as transformer_translator
from keras_attention import models
from keras_attention import serving


def test_export_module_is_an_alias_of_serving():
    for name in export.__all__:
        assert getattr(export, name) is getattr(serving, name), name


def test_transformer_translator_module_is_an_alias_of_serving():
    for name in transformer_translator.__all__:
        assert getattr(transformer_translator, name) is getattr(
            serving, name
        ), name


@pytest.mark.parametrize("name", ["Seq2SeqTranslator", "Translator"])
def test_models_names_of_moved_translators_warn_and_alias(name):
    with pytest.warns(DeprecationWarning, match=f"serving.{name}"):
        alias = getattr(models, name)
    assert alias is getattr(serving, name)


def test_models_has_no_other_attributes():
    with pytest.raises(AttributeError, match="no attribute 'Translater'"):
        models.Translater  # noqa: B018
