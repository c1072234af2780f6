"""TF Serving warmup records: `assets.extra/tf_serving_warmup_requests`.

The model server replays this file's requests when it loads a version,
before serving it, so the first client requests do not pay for the graph's
first runs. It is a TFRecord file of `PredictionLog` protos
(`tensorflow-serving-api`), at most 1000 of them (the most the server
reads). The exports write one, from a few real examples, when given
`warmup_texts`: `predict_log` requests for `serving_default`, and for a
model with a `classification` signature (the classifier) `classify_log`
requests too, so both signatures are warm.
"""

import os

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from keras_attention.serving.request_formats import classification_request
from keras_attention.serving.request_formats import predict_request

__all__ = [
    "MAX_WARMUP_RECORDS",
    "WARMUP_FILE",
    "read_warmup_requests",
    "write_warmup_requests",
]

# Where TF Serving looks for the file, relative to the version directory.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# The model server reads at most this many records.
MAX_WARMUP_RECORDS = 1000


def write_warmup_requests(
    saved_model_dir, texts, batch_sizes=(1, 8), classify=False
):
    """Writes the warmup file of a SavedModel from example texts.

    For each batch size, the texts are sent in batches of that size (the
    last one maybe smaller), so the server warms up the batch shapes it
    will see.

    Args:
        saved_model_dir: the version directory of the SavedModel.
        texts: a non-empty list of example inputs, str or bytes.
        batch_sizes: the batch sizes to send the texts in. Defaults to
            `(1, 8)`.
        classify: bool, whether to also write `ClassificationRequest`s
            (each text a `tf.Example`, see `classification_request`) for
            the `classification` signature, after the predict requests.
            Defaults to `False`.

    Returns:
        The path of the file written.

    Example:

    >>> write_warmup_requests("/tmp/dates/1",
    ...                       ["aug 19, 2003"])  # doctest: +SKIP
    '/tmp/dates/1/assets.extra/tf_serving_warmup_requests'
    """
    texts = list(texts)
    if not texts:
        raise ValueError(
            "`texts` must hold at least one example. Received: texts=[]"
        )
    batches = [
        texts[start : start + batch_size]
        for batch_size in batch_sizes
        for start in range(0, len(texts), batch_size)
    ]
    logs = []
    for batch in batches:
        log = prediction_log_pb2.PredictionLog()
        log.predict_log.request.CopyFrom(predict_request(batch))
        logs.append(log)
    for batch in batches if classify else ():
        log = prediction_log_pb2.PredictionLog()
        log.classify_log.request.CopyFrom(classification_request(batch))
        logs.append(log)
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(
            f"The model server reads at most {MAX_WARMUP_RECORDS} warmup "
            f"records: pass fewer `texts`. Received: {len(texts)} texts, "
            f"{len(logs)} records"
        )
    path = os.path.join(os.fspath(saved_model_dir), WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(saved_model_dir):
    """The `PredictionLog`s of a SavedModel's warmup file, in order.

    Example:

    >>> logs = read_warmup_requests("/tmp/dates/1")  # doctest: +SKIP
    >>> logs[0].predict_log.request.inputs["texts"]  # doctest: +SKIP
    >>> logs[-1].WhichOneof("log_type")  # doctest: +SKIP
    'classify_log'
    """
    path = os.path.join(os.fspath(saved_model_dir), WARMUP_FILE)
    logs = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        logs.append(prediction_log_pb2.PredictionLog.FromString(record))
    return logs
