"""The warmup file, read back with TF Serving's protos and replayed."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from keras_attention.serving import Translator
from keras_attention.serving import answer_classification_request
from keras_attention.serving import answer_predict_request
from keras_attention.serving import export_seq2seq
from keras_attention.serving import export_text_classifier
from keras_attention.serving import export_translator
from keras_attention.serving import load_saved_model
from keras_attention.serving import predict_response_outputs
from keras_attention.serving import read_warmup_requests
from keras_attention.serving import write_warmup_requests
from keras_attention.serving.warmup import WARMUP_FILE
from tests.serving.tiny_models import EXAMPLE_TEXT
from tests.serving.tiny_models import classifier_parts
from tests.serving.tiny_models import seq2seq_parts
from tests.serving.tiny_models import translator_parts

WARMUP_TEXTS = ["aug 19, 2003", "2/10/93", "", "x" * 40] + ["1/1/01"] * 6


def _export_seq2seq(base, **options):
    model, source, target = seq2seq_parts()
    return export_seq2seq(base, model, source, target, 12, 6, **options)


def _export_translator(base, **options):
    model, source_tokenizer, target_tokenizer = translator_parts()
    translator = Translator(
        model, source_tokenizer, target_tokenizer, max_output_length=4
    )
    return export_translator(base, translator, **options)


@pytest.mark.parametrize("export", [_export_seq2seq, _export_translator])
def test_every_warmup_request_runs_through_the_signature(export, tmp_path):
    path = export(tmp_path / "model", warmup_texts=WARMUP_TEXTS)
    with open(os.path.join(path, WARMUP_FILE), "rb") as file:
        assert file.read(1)  # TF Serving's path, not empty
    logs = read_warmup_requests(path)
    # Batches of 1 and of 8: 10 + 2 requests.
    assert [
        len(log.predict_log.request.inputs["texts"].string_val) for log in logs
    ] == [1] * 10 + [8, 2]
    serving = load_saved_model(path).signatures["serving_default"]
    for log in logs:
        assert isinstance(log, prediction_log_pb2.PredictionLog)
        request = log.predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        outputs = predict_response_outputs(
            answer_predict_request(serving, request)
        )
        texts = tf.make_ndarray(request.inputs["texts"])
        assert outputs["status"].shape == texts.shape
        direct = serving(texts=tf.constant(texts))
        np.testing.assert_array_equal(outputs["outputs"], direct["outputs"])


def test_classifier_warmup_also_warms_the_classification_signature(tmp_path):
    model, tokenizer = classifier_parts(max_sequence_length=4)
    texts = [EXAMPLE_TEXT, "", "the cat the cat the cat"]
    path = export_text_classifier(
        tmp_path / "classifier",
        model,
        tokenizer,
        ["a", "b", "c"],
        max_sequence_length=4,
        warmup_texts=texts,
    )
    logs = read_warmup_requests(path)
    kinds = [log.WhichOneof("log_type") for log in logs]
    # Batches of 1 and of 8 for each signature, predict requests first.
    assert kinds == ["predict_log"] * 4 + ["classify_log"] * 4
    saved_model = load_saved_model(path)
    serving = saved_model.signatures["serving_default"]
    classification = saved_model.signatures["classification"]
    for predict_log, classify_log in zip(logs[:4], logs[4:]):
        request = classify_log.classify_log.request
        assert request.model_spec.signature_name == "classification"
        response = answer_classification_request(classification, request)
        predicted = predict_response_outputs(
            answer_predict_request(serving, predict_log.predict_log.request)
        )
        scores = [
            [label.score for label in result.classes]
            for result in response.result.classifications
        ]
        # The same texts: the same probabilities by either signature.
        np.testing.assert_allclose(
            scores, predicted["probabilities"], atol=1e-6
        )


def test_no_warmup_file_unless_asked(tmp_path):
    path = _export_seq2seq(tmp_path / "model")
    assert not os.path.exists(os.path.join(path, WARMUP_FILE))


def test_warmup_limits(tmp_path):
    with pytest.raises(ValueError, match="at least one.*Received"):
        write_warmup_requests(tmp_path, [])
    with pytest.raises(ValueError, match="at most 1000.*Received"):
        write_warmup_requests(tmp_path, ["a"] * 1000)
