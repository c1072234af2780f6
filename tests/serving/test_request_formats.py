"""TF Serving's request formats against the loaded signatures."""

import base64
import json

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.serving import answer_predict_request
from keras_attention.serving import answer_rest_body
from keras_attention.serving import export_seq2seq
from keras_attention.serving import load_saved_model
from keras_attention.serving import predict_request
from keras_attention.serving import predict_response_outputs
from keras_attention.serving import rest_predict_body
from tests.serving.tiny_models import seq2seq_parts

# The module-scoped exports are built once, on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_request_formats")

TEXTS = ["aug 19, 2003", "", b"\xff2/10", "2/10/93"]
STATUSES = ["ok", "empty", "invalid_utf8", "ok"]


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    model, source, target = seq2seq_parts()
    base = tmp_path_factory.mktemp("dates")
    export_seq2seq(base, model, source, target, 12, 6)
    signature = load_saved_model(base).signatures["serving_default"]
    direct = signature(texts=tf.constant(TEXTS))
    return signature, [s.decode() for s in direct["outputs"].numpy()]


def test_predict_request_and_response(serving):
    signature, expected = serving
    request = predict_request(TEXTS, model_name="dates")
    assert request.model_spec.name == "dates"
    # What a client sends is what the server reads: serialized protos.
    request = type(request).FromString(request.SerializeToString())
    response = answer_predict_request(signature, request)
    outputs = predict_response_outputs(response)
    assert [s.decode() for s in outputs["outputs"]] == expected
    assert [s.decode() for s in outputs["status"]] == STATUSES
    assert outputs["attention_weights"].shape[0] == len(TEXTS)


def test_rest_row_form(serving):
    signature, expected = serving
    body = rest_predict_body(TEXTS)
    assert body["instances"][2] == {
        "texts": {"b64": base64.b64encode(b"\xff2/10").decode()}
    }
    answer = answer_rest_body(signature, json.loads(json.dumps(body)))
    predictions = answer["predictions"]
    assert [p["outputs"] for p in predictions] == expected
    assert [p["status"] for p in predictions] == STATUSES
    assert np.asarray(predictions[0]["attention_weights"]).ndim == 2
    json.dumps(answer)  # JSON as it is


def test_rest_columnar_form(serving):
    signature, expected = serving
    body = rest_predict_body(TEXTS, columns=True)
    assert list(body) == ["inputs"]
    answer = answer_rest_body(signature, json.loads(json.dumps(body)))
    assert answer["outputs"]["outputs"] == expected
    assert answer["outputs"]["status"] == STATUSES
    # The one input may also be given as a bare list.
    bare = {"inputs": body["inputs"]["texts"]}
    assert answer_rest_body(signature, bare) == answer
