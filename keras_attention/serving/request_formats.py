"""TF Serving's request formats, for the exports' signatures.

Build what a client sends to `tensorflow_model_server`, and read what it
answers, for a batch of texts:

- gRPC: `predict_request` (a `PredictRequest` of the `serving_default`
  signature) and `classification_request` (a `ClassificationRequest` of
  `tf.Example`s with a `"text"` bytes feature, for the classifier's
  `classification` signature); `predict_response_outputs` reads a
  `PredictResponse` back into NumPy arrays.
- REST: `rest_predict_body` writes the JSON body of `POST
  /v1/models/<name>:predict` in either form, rows (`{"instances": [...]}`,
  answered by `"predictions"`) or columns (`{"inputs": ...}`, answered by
  `"outputs"`); a text that is not valid UTF-8 goes as `{"b64": ...}`.

`answer_predict_request`, `answer_classification_request` and
`answer_rest_body` answer those requests with a loaded signature, as the
model server does, so that a request can be checked without a server.
"""

import base64

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import predict_pb2

from keras_attention.serving.constants import CLASSIFY_CLASSES
from keras_attention.serving.constants import CLASSIFY_INPUTS
from keras_attention.serving.constants import CLASSIFY_SCORES
from keras_attention.serving.constants import CLASSIFY_SIGNATURE
from keras_attention.serving.constants import EXAMPLE_TEXT_FEATURE
from keras_attention.serving.constants import SERVING_INPUT
from keras_attention.serving.constants import SERVING_SIGNATURE

__all__ = [
    "answer_classification_request",
    "answer_predict_request",
    "answer_rest_body",
    "classification_request",
    "predict_request",
    "predict_response_outputs",
    "rest_predict_body",
]

# The model name of a request when none is given; TF Serving's
# `--model_name` defaults to it too.
DEFAULT_MODEL_NAME = "default"


def _as_bytes(texts):
    return [t if isinstance(t, bytes) else str(t).encode() for t in texts]


def predict_request(
    texts, model_name=DEFAULT_MODEL_NAME, signature_name=SERVING_SIGNATURE
):
    """A `PredictRequest` of a `(batch,)` batch of texts.

    Args:
        texts: a list of str or bytes.
        model_name: str, the served model's name. Defaults to `"default"`.
        signature_name: str. Defaults to `"serving_default"`.

    Returns:
        A `tensorflow_serving.apis.predict_pb2.PredictRequest`.

    Example:

    >>> request = predict_request(["aug 19, 2003"], model_name="dates")
    >>> request.model_spec.name, list(request.inputs)
    ('dates', ['texts'])
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs[SERVING_INPUT].CopyFrom(
        tf.make_tensor_proto(_as_bytes(texts), dtype=tf.string)
    )
    return request


def classification_request(
    texts, model_name=DEFAULT_MODEL_NAME, signature_name=CLASSIFY_SIGNATURE
):
    """A `ClassificationRequest`: one `tf.Example` per text.

    Each example holds its text in the bytes feature `"text"`.

    Args:
        texts: a list of str or bytes.
        model_name: str, the served model's name. Defaults to `"default"`.
        signature_name: str. Defaults to `"classification"`.

    Returns:
        A `tensorflow_serving.apis.classification_pb2.ClassificationRequest`.

    Example:

    >>> request = classification_request(["a wonderful film"])
    >>> len(request.input.example_list.examples)
    1
    """
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for text in _as_bytes(texts):
        example = request.input.example_list.examples.add()
        example.features.feature[EXAMPLE_TEXT_FEATURE].bytes_list.value.append(
            text
        )
    return request


def predict_response_outputs(response):
    """The outputs of a `PredictResponse`, as a dict of NumPy arrays."""
    return {
        key: tf.make_ndarray(proto) for key, proto in response.outputs.items()
    }


def answer_predict_request(signature, request):
    """Answers a `PredictRequest` with a loaded signature, as the server.

    Args:
        signature: a concrete function of a loaded SavedModel, e.g.
            `load_saved_model(path).signatures["serving_default"]`.
        request: a `PredictRequest`.

    Returns:
        A `PredictResponse`.
    """
    inputs = {
        key: tf.constant(tf.make_ndarray(proto))
        for key, proto in request.inputs.items()
    }
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for key, value in signature(**inputs).items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return response


def answer_classification_request(signature, request):
    """Answers a `ClassificationRequest` with the `classification` signature.

    As the model server does: the examples are serialized into the
    signature's `inputs`, and each row of `classes` and `scores` becomes
    one `Classifications` of the response.

    Args:
        signature: the loaded `classification` signature.
        request: a `ClassificationRequest` with an `example_list`.

    Returns:
        A `ClassificationResponse`.
    """
    serialized = [
        example.SerializeToString()
        for example in request.input.example_list.examples
    ]
    outputs = signature(**{CLASSIFY_INPUTS: tf.constant(serialized, tf.string)})
    classes = outputs[CLASSIFY_CLASSES].numpy()  # (batch, classes)
    scores = outputs[CLASSIFY_SCORES].numpy()  # (batch, classes)
    response = classification_pb2.ClassificationResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for row_classes, row_scores in zip(classes, scores):
        classifications = response.result.classifications.add()
        for label, score in zip(row_classes, row_scores):
            classifications.classes.add(
                label=label.decode("utf-8"), score=float(score)
            )
    return response


def _json_text(text):
    """A JSON value of a text: a string, or `{"b64": ...}` if not UTF-8."""
    if isinstance(text, str):
        return text
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(text).decode("ascii")}


def rest_predict_body(texts, columns=False):
    """The JSON body (a dict) of a REST `:predict` call for `texts`.

    Args:
        texts: a list of str or bytes; bytes that are not UTF-8 are sent
            as `{"b64": ...}`.
        columns: bool, whether to use the columnar form `{"inputs":
            {"texts": [...]}}` (answered by `"outputs"`) rather than the
            row form `{"instances": [...]}` (answered by `"predictions"`).
            Defaults to `False`.

    Returns:
        A dict to send as JSON.

    Example:

    >>> rest_predict_body(["aug 19, 2003", b"\\xff"])
    {'instances': [{'texts': 'aug 19, 2003'}, {'texts': {'b64': '/w=='}}]}
    """
    values = [_json_text(text) for text in texts]
    if columns:
        return {"inputs": {SERVING_INPUT: values}}
    return {"instances": [{SERVING_INPUT: value} for value in values]}


def _from_json(value):
    if isinstance(value, dict):
        return base64.b64decode(value["b64"])
    return value.encode("utf-8")


def _to_json(value):
    if isinstance(value, bytes):
        return _json_text(value)
    return value.tolist() if isinstance(value, np.ndarray) else value.item()


def answer_rest_body(signature, body):
    """Answers a REST `:predict` body with a loaded signature, as the server.

    Args:
        signature: the loaded `serving_default` signature.
        body: a dict, `{"instances": [...]}` or `{"inputs": ...}` (of one
            input, a list or a dict naming it), as `rest_predict_body`
            writes.

    Returns:
        The JSON answer as a dict: `{"predictions": [one dict per
        instance]}` for the row form, `{"outputs": {name: [...]}}` for the
        columnar form.
    """
    if "instances" in body:
        texts = [
            _from_json(row[SERVING_INPUT] if isinstance(row, dict) else row)
            for row in body["instances"]
        ]
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and SERVING_INPUT in inputs:
            inputs = inputs[SERVING_INPUT]
        texts = [_from_json(value) for value in inputs]
    outputs = {
        key: value.numpy()
        for key, value in signature(
            **{SERVING_INPUT: tf.constant(texts, tf.string)}
        ).items()
    }
    if "instances" in body:
        return {
            "predictions": [
                {key: _to_json(value[row]) for key, value in outputs.items()}
                for row in range(len(texts))
            ]
        }
    return {
        "outputs": {
            key: [_to_json(item) for item in value]
            for key, value in outputs.items()
        }
    }
