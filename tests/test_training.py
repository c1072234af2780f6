"""Loss, token accuracy, learning-rate schedule and resumable training.

The `MirroredStrategy` test runs in a subprocess: logical CPU devices can
only be configured before TensorFlow initialises its devices, which other
tests in this process have already done.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.losses import MaskedSparseCategoricalCrossentropy
from keras_attention.metrics.masked_token_accuracy import MaskedTokenAccuracy
from keras_attention.schedules import TransformerSchedule
from keras_attention.training import HISTORY_FILE
from keras_attention.training import fit_run
from keras_attention.training import make_distribution_strategy
from keras_attention.training import read_history
from keras_attention.training import start_run
from keras_attention.training import tensorboard_available
from keras_attention.training import training_callbacks
from keras_attention.training import transformer_adam
from tests.testing import EpochRecorder

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _reference_loss(labels, logits, smoothing, padding_id=0, weights=None):
    """Per-token smoothed cross-entropy, mean over non-padding tokens."""
    vocabulary = logits.shape[-1]
    target = (
        np.eye(vocabulary)[labels] * (1 - smoothing) + smoothing / vocabulary
    )
    per_token = -(target * _log_softmax(logits.astype("float64"))).sum(-1)
    mask = (labels != padding_id).astype("float64")
    if weights is not None:
        mask_weights = mask * weights
    else:
        mask_weights = mask
    return (per_token * mask_weights).sum() / mask.sum(), per_token * mask


def _batch(seed=0, vocabulary=7):
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, vocabulary, size=(3, 5))
    labels[0, 3:] = 0
    labels[2, 1:] = 0
    logits = rng.normal(size=(3, 5, vocabulary)).astype("float32") * 3
    return labels, logits


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_loss_matches_numpy_reference(smoothing):
    labels, logits = _batch()
    loss = MaskedSparseCategoricalCrossentropy(label_smoothing=smoothing)
    expected, per_token = _reference_loss(labels, logits, smoothing)
    np.testing.assert_allclose(float(loss(labels, logits)), expected, rtol=1e-5)
    per_token_loss = MaskedSparseCategoricalCrossentropy(
        label_smoothing=smoothing, reduction="none"
    )(labels, logits)
    np.testing.assert_allclose(per_token_loss, per_token, rtol=1e-5, atol=1e-6)
    total = MaskedSparseCategoricalCrossentropy(
        label_smoothing=smoothing, reduction="sum"
    )(labels, logits)
    np.testing.assert_allclose(float(total), per_token.sum(), rtol=1e-5)


def test_loss_ignores_padding_positions_and_amount_of_padding():
    labels, logits = _batch()
    loss = MaskedSparseCategoricalCrossentropy()
    reference = float(loss(labels, logits))
    changed = logits.copy()
    changed[labels == 0] = 100.0 * np.random.default_rng(1).normal(
        size=changed[labels == 0].shape
    )
    assert float(loss(labels, changed)) == pytest.approx(reference, rel=1e-6)
    # More padding columns do not dilute the mean.
    padded_labels = np.pad(labels, [(0, 0), (0, 4)])
    padded_logits = np.pad(logits, [(0, 0), (0, 4), (0, 0)])
    assert float(loss(padded_labels, padded_logits)) == pytest.approx(
        reference, rel=1e-6
    )


def test_loss_custom_padding_id_and_sample_weight():
    labels, logits = _batch()
    labels = np.where(labels == 0, 6, np.minimum(labels, 5))
    weights = np.array([1.0, 2.0, 0.5])
    loss = MaskedSparseCategoricalCrossentropy(padding_id=6)
    expected, _ = _reference_loss(
        labels, logits, 0.1, padding_id=6, weights=weights[:, None]
    )
    value = loss(labels, logits, sample_weight=weights)
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)


def test_loss_from_probabilities():
    labels, logits = _batch()
    probabilities = np.exp(_log_softmax(logits)).astype("float32")
    loss = MaskedSparseCategoricalCrossentropy(from_logits=False)
    expected, _ = _reference_loss(labels, logits, 0.1)
    np.testing.assert_allclose(
        float(loss(labels, probabilities)), expected, rtol=1e-4
    )


def test_loss_float16_logits_are_finite_and_close():
    labels, logits = _batch()
    loss = MaskedSparseCategoricalCrossentropy()
    value = float(loss(labels, logits.astype("float16") * 1000))
    assert np.isfinite(value)
    expected = float(loss(labels, (logits.astype("float16") * 1000)))
    assert value == pytest.approx(expected)
    half = float(loss(labels, logits.astype("float16")))
    assert half == pytest.approx(float(loss(labels, logits)), rel=1e-2)


def test_loss_ignores_a_keras_mask_on_predictions():
    """`compile`/`evaluate` with logits that carry an `Embedding` mask."""
    vocabulary = 7
    inputs = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(vocabulary, 4, mask_zero=True)(inputs)
    logits = keras.layers.Dense(vocabulary)(embedded)
    model = keras.Model(inputs, logits)
    features = np.array([[3, 4, 5, 0], [2, 2, 0, 0]])
    # Labels are the inputs shifted by one: fewer real labels than inputs.
    labels = np.array([[4, 5, 0, 0], [2, 0, 0, 0]])
    model.compile(loss=MaskedSparseCategoricalCrossentropy())
    evaluated = model.evaluate(features, labels, verbose=0)
    expected, _ = _reference_loss(
        labels, model.predict(features, verbose=0), 0.1
    )
    assert evaluated == pytest.approx(expected, rel=1e-5)


def test_loss_serialization_round_trip():
    loss = MaskedSparseCategoricalCrossentropy(
        padding_id=3, label_smoothing=0.2, from_logits=False, reduction="sum"
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert isinstance(restored, MaskedSparseCategoricalCrossentropy)
    assert restored.get_config() == loss.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"padding_id": 0.5}, "padding_id"),
        ({"reduction": "mean_with_sample_weight"}, "reduction"),
    ],
)
def test_loss_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskedSparseCategoricalCrossentropy(**kwargs)


def test_token_accuracy_accumulates_token_counts():
    metric = MaskedTokenAccuracy()
    labels, logits = _batch()
    other_labels, other_logits = _batch(seed=2)
    # Make some predictions right.
    logits[0, 0, labels[0, 0]] = 50.0
    other_logits[1, :, :] = 0.0
    other_logits[1, np.arange(5), other_labels[1]] = 50.0
    metric.update_state(labels, logits)
    metric.update_state(other_labels, other_logits)
    all_labels = np.concatenate([labels, other_labels])
    all_logits = np.concatenate([logits, other_logits])
    mask = all_labels != 0
    hits = (all_logits.argmax(-1) == all_labels) & mask
    assert float(metric.result()) == pytest.approx(hits.sum() / mask.sum())
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_token_accuracy_sample_weight_and_config():
    metric = MaskedTokenAccuracy(padding_id=1)
    labels = np.array([[2, 3, 1], [3, 1, 1]])
    logits = np.zeros((2, 3, 4), "float32")
    logits[0, 0, 2] = logits[0, 1, 0] = logits[1, 0, 3] = 1.0
    metric.update_state(labels, logits, sample_weight=np.array([1.0, 3.0]))
    # Row 0: 1 of 2 right (weight 1); row 1: 1 of 1 right (weight 3).
    assert float(metric.result()) == pytest.approx((1 + 3) / (2 + 3))
    restored = MaskedTokenAccuracy.from_config(metric.get_config())
    assert restored.padding_id == 1 and restored.name == metric.name
    with pytest.raises(ValueError, match="padding_id"):
        MaskedTokenAccuracy(padding_id="0")


@pytest.mark.parametrize("d_model, warmup", [(512, 4000), (64, 10)])
def test_schedule_matches_the_paper_formula(d_model, warmup):
    schedule = TransformerSchedule(d_model, warmup)
    steps = np.array([0, 1, warmup // 2, warmup - 1, warmup, 3 * warmup])
    numbers = steps + 1.0  # the paper's step_num counts from 1
    expected = d_model**-0.5 * np.minimum(numbers**-0.5, numbers * warmup**-1.5)
    values = [float(schedule(step)) for step in steps]
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    # The peak is at step_num = warmup.
    assert values[3] == pytest.approx((d_model * warmup) ** -0.5, rel=1e-6)
    assert values[0] > 0  # the first update is not wasted
    assert values[3] > values[2] and values[3] > values[4] > values[5]


def test_schedule_scale_and_config():
    schedule = TransformerSchedule(128, warmup_steps=100, scale=2.0)
    base = TransformerSchedule(128, warmup_steps=100)
    assert float(schedule(7)) == pytest.approx(2 * float(base(7)))
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule)
    )
    assert isinstance(restored, TransformerSchedule)
    assert restored.get_config() == {
        "d_model": 128,
        "warmup_steps": 100,
        "scale": 2.0,
    }
    for kwargs in ({"d_model": 0}, {"d_model": 8, "warmup_steps": 1.5}):
        with pytest.raises(ValueError, match="must be a positive int"):
            TransformerSchedule(**kwargs)
    with pytest.raises(ValueError, match="scale"):
        TransformerSchedule(8, scale=0)


def test_transformer_adam_uses_the_schedule():
    optimizer = transformer_adam(d_model=64, warmup_steps=10, clipnorm=1.0)
    assert (optimizer.beta_1, optimizer.beta_2) == (0.9, 0.98)
    assert optimizer.epsilon == 1e-9 and optimizer.clipnorm == 1.0
    variable = keras.Variable(np.ones(3, "float32"))
    for _ in range(4):
        optimizer.apply_gradients([(np.ones(3, "float32"), variable)])
    expected = 64**-0.5 * min(5**-0.5, 5 * 10**-1.5)  # the 5th update
    assert float(optimizer.learning_rate) == pytest.approx(expected, rel=1e-6)
    config = optimizer.get_config()
    assert config["learning_rate"]["class_name"] == "TransformerSchedule"
    restored = keras.optimizers.Adam.from_config(config)
    first = 64**-0.5 * 10**-1.5  # a fresh optimizer: the 1st update
    assert float(restored.learning_rate) == pytest.approx(first, rel=1e-6)


def test_make_distribution_strategy():
    assert make_distribution_strategy("default").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="Received: name='tpu'"):
        make_distribution_strategy("tpu")


def test_training_callbacks_tensorboard_option(tmp_path):
    from keras_attention.training import EpochCheckpoint

    callbacks = training_callbacks(tmp_path)
    assert isinstance(callbacks[0], EpochCheckpoint)
    # The backup, the commit point of an epoch, comes after the others.
    assert isinstance(callbacks[-1], keras.callbacks.BackupAndRestore)
    names = [type(c).__name__ for c in callbacks]
    assert ("TensorBoard" in names) == tensorboard_available()
    if tensorboard_available():
        callbacks = training_callbacks(tmp_path, tensorboard=True)
        assert type(callbacks[-2]).__name__ == "TensorBoard"
    else:
        with pytest.raises(ValueError, match="pip install tensorboard"):
            training_callbacks(tmp_path, tensorboard=True)
    names = [
        type(c).__name__
        for c in training_callbacks(tmp_path, tensorboard=False)
    ]
    assert "TensorBoard" not in names


def _tiny_model():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(9, 4)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(9)(x))
    model.compile(
        optimizer=transformer_adam(d_model=4, warmup_steps=3),
        loss=MaskedSparseCategoricalCrossentropy(),
        metrics=[MaskedTokenAccuracy()],
    )
    return model


def test_interrupted_fit_resumes_from_the_saved_epoch(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.integers(1, 9, size=(8, 5))
    labels = np.roll(features, -1, axis=1)
    steps_per_epoch = 2
    model = _tiny_model()
    first = EpochRecorder(fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            features,
            labels,
            batch_size=4,
            epochs=4,
            callbacks=[first, *training_callbacks(tmp_path)],
            verbose=0,
        )
    assert first.epochs == [0, 1]
    assert (tmp_path / "backup").is_dir()
    saved = [w.numpy() for w in model.weights]

    # A new process would build a fresh model: its weights get restored.
    resumed_model = _tiny_model()
    resumed = EpochRecorder()
    history = resumed_model.fit(
        features,
        labels,
        batch_size=4,
        epochs=4,
        callbacks=[resumed, *training_callbacks(tmp_path)],
        verbose=0,
    )
    assert resumed.epochs == [2, 3]
    assert len(history.history["loss"]) == 2
    assert int(resumed_model.optimizer.iterations) == 4 * steps_per_epoch
    assert not (tmp_path / "backup").exists()  # deleted once fit completes
    checkpoints = sorted(os.listdir(tmp_path / "checkpoints"))
    assert checkpoints == [f"epoch_00{i}.weights.h5" for i in range(1, 5)]
    if tensorboard_available():
        assert (tmp_path / "logs" / "train").is_dir()
    assert not all(
        np.allclose(a, b) for a, b in zip(saved, resumed_model.get_weights())
    )


def test_fit_run_logs_and_resumes_the_whole_run(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.integers(1, 9, size=(8, 5))
    data = tf.data.Dataset.from_tensor_slices(
        (features, np.roll(features, -1, axis=1))
    ).batch(4)
    first = EpochRecorder(fail_at=1)
    with pytest.raises(KeyboardInterrupt):
        fit_run(_tiny_model(), data, tmp_path, epochs=3, callbacks=[first])
    resumed = EpochRecorder()
    history = fit_run(
        _tiny_model(), data, tmp_path, epochs=3, callbacks=[resumed]
    )
    assert (first.epochs, resumed.epochs) == ([0], [1, 2])
    assert len(history["loss"]) == 3  # the interrupted epoch 0 included
    assert history == read_history(tmp_path / HISTORY_FILE)
    assert len(os.listdir(tmp_path / "checkpoints")) == 3


def test_resuming_with_another_model_says_why(tmp_path):
    features = np.ones((4, 5), "int32")
    with pytest.raises(KeyboardInterrupt):
        _tiny_model().fit(
            features,
            features,
            epochs=3,
            callbacks=[
                EpochRecorder(fail_at=1),
                *training_callbacks(tmp_path),
            ],
            verbose=0,
        )
    inputs = keras.Input((None,), dtype="int32")
    wider = keras.layers.Embedding(9, 6)(inputs)  # 6 features, not 4
    other = keras.Model(inputs, keras.layers.Dense(9)(wider))
    other.compile(optimizer="adam", loss=MaskedSparseCategoricalCrossentropy())
    with pytest.raises(ValueError, match="differs from this one.*--restart"):
        other.fit(
            features,
            features,
            epochs=3,
            callbacks=training_callbacks(tmp_path),
            verbose=0,
        )


def test_start_run_clears_an_earlier_runs_files_unless_resuming(tmp_path):
    def leave_files():
        (tmp_path / "checkpoints").mkdir(exist_ok=True)
        (tmp_path / "checkpoints" / "epoch_002.weights.h5").write_text("x")
        (tmp_path / "logs" / "train").mkdir(parents=True, exist_ok=True)
        (tmp_path / HISTORY_FILE).write_text("epoch,loss\n0,1.0\n")
        # A user's own files in the output directory are never touched.
        (tmp_path / "checkpoints" / "mine.txt").write_text("keep")
        (tmp_path / "logs" / "mine.txt").write_text("keep")

    leave_files()
    (tmp_path / "backup").mkdir()
    assert start_run(tmp_path)  # an interrupted run: keep everything
    assert (tmp_path / HISTORY_FILE).exists()
    assert (tmp_path / "checkpoints" / "epoch_002.weights.h5").exists()
    assert not start_run(tmp_path, restart=True)
    assert not (tmp_path / "backup").exists()
    for name in (
        HISTORY_FILE,
        "checkpoints/epoch_002.weights.h5",
        "logs/train",
    ):
        assert not (tmp_path / name).exists(), name
    for name in ("checkpoints/mine.txt", "logs/mine.txt"):
        assert (tmp_path / name).read_text() == "keep"
    leave_files()  # a completed run's files
    assert not start_run(tmp_path)
    assert not (tmp_path / HISTORY_FILE).exists()
    assert not start_run(tmp_path / "new" / "dir")
    assert (tmp_path / "new" / "dir").is_dir()


def test_read_history_keeps_the_last_row_of_each_epoch(tmp_path):
    path = tmp_path / HISTORY_FILE
    assert read_history(path) == {}
    # A resumed run repeats epoch 1, which was cut short the first time.
    path.write_text("epoch,loss,val_loss\n0,3.0,2.5\n1,2.9,\n1,2.0,1.5\n")
    assert read_history(path) == {"loss": [3.0, 2.0], "val_loss": [2.5, 1.5]}


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import keras
    from keras_attention.data.translation import learn_translation_tokenizers
    from keras_attention.data.translation import make_translation_dataset
    from keras_attention.losses import MaskedSparseCategoricalCrossentropy
    from keras_attention.metrics import MaskedTokenAccuracy
    from keras_attention.models.transformer import build_transformer
    from keras_attention.training import make_distribution_strategy
    from keras_attention.training import transformer_adam

    keras.utils.set_random_seed(0)
    pairs = [(f"um dois {i}", f"one two {i}") for i in range(16)]
    source_tokenizer, target_tokenizer = learn_translation_tokenizers(
        pairs, 40
    )
    data = make_translation_dataset(
        pairs, source_tokenizer, target_tokenizer, batch_size=8
    )
    strategy = make_distribution_strategy(
        "mirrored", devices=["/cpu:0", "/cpu:1"]
    )
    with strategy.scope():
        model = build_transformer(
            source_tokenizer.vocabulary_size,
            target_tokenizer.vocabulary_size,
            num_layers=1, d_model=8, num_heads=2, feed_forward_dim=16,
        )
        model.compile(
            optimizer=transformer_adam(8, warmup_steps=4),
            loss=MaskedSparseCategoricalCrossentropy(),
            metrics=[MaskedTokenAccuracy()],
        )
    initial = model.trainable_variables[0].value.values[0].numpy()
    history = model.fit(data, epochs=2, verbose=0)
    variable = model.trainable_variables[0].value  # the tf.Variable
    replicas = [value.numpy() for value in variable.values]
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "variable": type(variable).__name__,
        "devices": [value.device for value in variable.values],
        "in_sync": bool(np.array_equal(replicas[0], replicas[1])),
        "changed": bool(not np.allclose(initial, replicas[0])),
        "loss": history.history["loss"],
        "accuracy": history.history["masked_token_accuracy"],
        "iterations": int(model.optimizer.iterations.numpy()),
    }))
    """
)


def test_fit_under_mirrored_strategy_on_two_logical_cpus():
    import json

    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    environment["PYTHONPATH"] = os.pathsep.join(
        [REPO_ROOT, environment.get("PYTHONPATH", "")]
    )
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["variable"] == "MirroredVariable"
    assert [d.split(":")[-2:] for d in report["devices"]] == [
        ["CPU", "0"],
        ["CPU", "1"],
    ]
    assert report["in_sync"] and report["changed"]
    # 2 epochs of 2 batches; with an unknown dataset cardinality Keras may
    # run one extra, empty step at the end of an epoch under a strategy.
    assert 4 <= report["iterations"] <= 6
    assert all(np.isfinite(report["loss"]))
    assert all(0.0 <= a <= 1.0 for a in report["accuracy"])


def test_tf_config_names_each_worker_and_worker_zero_is_chief():
    from keras_attention.training import is_chief
    from keras_attention.training import local_cluster
    from keras_attention.training import tf_config
    from keras_attention.training import worker_output_dir

    workers = local_cluster(2)
    assert len(set(workers)) == 2 and all(
        a.startswith("127.0.0.1:") for a in workers
    )
    configs = [tf_config(workers, index) for index in range(2)]
    assert [is_chief(c) for c in configs] == [True, False]
    assert worker_output_dir("run", configs[0]) == "run"
    assert worker_output_dir("run", configs[1]) == os.path.join(
        "run", ".workers", "worker_1"
    )
    with_chief = {
        "cluster": {"chief": ["a:1"], "worker": ["b:1"]},
        "task": {"type": "worker", "index": 0},
    }
    assert not is_chief(with_chief)
    assert is_chief({**with_chief, "task": {"type": "chief", "index": 0}})
    with pytest.raises(ValueError, match="index"):
        tf_config(workers, 2)
    with pytest.raises(ValueError, match="workers"):
        tf_config(["no-port"], 0)


def test_build_and_compile_creates_everything_under_the_scope():
    from keras_attention.training import build_and_compile

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])

    def build():
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    model = build_and_compile(
        build, lambda: {"optimizer": "adam", "loss": "mse"}, strategy
    )
    assert model.loss == "mse"
    extended = strategy.extended
    assert all(
        extended.variable_created_in_scope(w.value) for w in model.weights
    )
    assert extended.variable_created_in_scope(model.optimizer.iterations.value)


def test_transformer_compile_arguments_are_the_papers():
    from keras_attention.training import transformer_compile_arguments

    arguments = transformer_compile_arguments(64, 100, label_smoothing=0.2)
    optimizer = arguments["optimizer"]
    assert (optimizer.beta_2, optimizer.epsilon) == (0.98, 1e-9)
    assert isinstance(optimizer.learning_rate, TransformerSchedule) or (
        float(optimizer.learning_rate) > 0
    )
    loss = arguments["loss"]
    assert isinstance(loss, MaskedSparseCategoricalCrossentropy)
    assert loss.label_smoothing == 0.2
    assert isinstance(arguments["metrics"][0], MaskedTokenAccuracy)


def test_cosine_decay_adam_decays_to_the_final_fraction():
    from keras_attention.training import cosine_decay_adam

    optimizer = cosine_decay_adam(0.5, decay_steps=10, final_fraction=0.1)
    schedule = optimizer._learning_rate  # the schedule, not its value
    assert float(schedule(0)) == pytest.approx(0.5)
    assert float(schedule(10)) == pytest.approx(0.05)
    assert float(schedule(5)) == pytest.approx(0.5 * (0.1 + 0.9 * 0.5))


def test_transformer_presets_are_complete_and_the_base_is_the_papers():
    import dataclasses

    from keras_attention.cli import COMMON_ARGUMENTS
    from keras_attention.training import TRANSFORMER_PRESETS

    assert set(TRANSFORMER_PRESETS) == {"cpu-small", "base"}
    for preset in TRANSFORMER_PRESETS.values():
        assert all(
            f.name in COMMON_ARGUMENTS for f in dataclasses.fields(preset)
        )
    base = TRANSFORMER_PRESETS["base"]
    assert (base.num_layers, base.d_model, base.num_heads) == (6, 512, 8)
    assert (base.feed_forward_dim, base.warmup_steps) == (2048, 4000)


def test_a_nan_loss_stops_the_run_naming_the_step_and_keeps_good_epochs(
    tmp_path,
):
    from keras_attention.training import NonFiniteLossError

    # The second epoch's third batch holds a NaN feature: the loss turns
    # NaN there, after one good epoch.
    x = np.ones((16, 3), "float32")
    y = np.ones((16, 1), "float32")
    x_bad = x.copy()
    x_bad[10] = np.nan
    data = tf.data.Dataset.from_tensor_slices(
        (np.concatenate([x, x_bad]), np.concatenate([y, y]))
    ).batch(4)
    steps = 4  # per epoch: epoch 1 reads rows 0-15, epoch 2 rows 16-31
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NonFiniteLossError) as raised:
        fit_run(
            model,
            data.repeat(),
            tmp_path,
            epochs=3,
            steps_per_epoch=steps,
            verbose=0,
        )
    message = str(raised.value)
    assert "epoch 2, step 3 of the epoch" in message
    assert "optimizer step 7" in message
    assert "epoch_001.weights.h5" in message
    # Only the good epoch was saved, and its weights are finite.
    saved = sorted(os.listdir(tmp_path / "checkpoints"))
    assert saved == ["epoch_001.weights.h5"]
    model.load_weights(tmp_path / "checkpoints" / saved[0])
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_perplexity_printer_prints_exp_of_the_held_out_loss(capsys):
    from keras_attention.training import PerplexityPrinter

    PerplexityPrinter().on_epoch_end(2, {"val_loss": np.log(7.5)})
    assert capsys.readouterr().out == (
        "epoch 3: held-out loss 2.0149, perplexity 7.50 per token\n"
    )


def test_classifier_and_seq2seq_compile_arguments():
    from keras_attention.training import classifier_compile_arguments
    from keras_attention.training import seq2seq_compile_arguments

    classifier = classifier_compile_arguments(1e-3)
    assert float(classifier["optimizer"].learning_rate) == pytest.approx(1e-3)
    assert not classifier["loss"].from_logits
    seq2seq = seq2seq_compile_arguments(
        1e-2, decay_steps=10, final_fraction=0.5
    )
    assert seq2seq["loss"].from_logits and seq2seq["loss"].ignore_class == 0
    optimizer = seq2seq["optimizer"]
    assert float(optimizer.learning_rate) == pytest.approx(1e-2)  # step 0
    optimizer.iterations.assign(10)  # the end of the decay
    assert float(optimizer.learning_rate) == pytest.approx(5e-3)
    # Padding (id 0) does not count: the loss is the unpadded token's.
    logits = np.array([[[2.0, 0.0, 1.0], [0.0, 5.0, -1.0]]], "float32")
    labels = np.array([[2, 0]])
    expected = -np.log(np.exp(1.0) / np.exp([2.0, 0.0, 1.0]).sum())
    loss = float(seq2seq["loss"](labels, logits))
    assert loss == pytest.approx(expected, rel=1e-5)


class ScriptedLogs(keras.callbacks.Callback):
    """Sets `val_loss` to a scripted value per epoch (before the rule)."""

    def __init__(self, values, fail_at_train_end=False):
        super().__init__()
        self.values = values
        self.fail_at_train_end = fail_at_train_end

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]

    def on_train_end(self, logs=None):
        if self.fail_at_train_end:  # killed after stopping, before the end
            raise KeyboardInterrupt("simulated interruption")


def _stopping_data():
    features = np.random.default_rng(0).integers(1, 9, size=(8, 5))
    return tf.data.Dataset.from_tensor_slices(
        (features, np.roll(features, -1, axis=1))
    ).batch(4)


def _weights_of(path):
    model = _tiny_model()
    model.optimizer.build(model.trainable_variables)
    model.load_weights(path)
    return model.get_weights()


# Best at epoch index 1; with patience 2, training stops after index 3.
SCRIPTED_VAL_LOSS = [3.0, 2.0, 2.5, 2.1, 1.0, 0.5, 0.4, 0.3]


@pytest.mark.parametrize("interrupt_at", [None, 2, 3])
def test_patience_stops_and_keeps_the_best_epoch_across_resumes(
    tmp_path, interrupt_at
):
    from keras_attention.training import BEST_WEIGHTS_FILE
    from keras_attention.training import read_stopping_state

    data, epochs = _stopping_data(), len(SCRIPTED_VAL_LOSS)
    model = _tiny_model()
    scripted = ScriptedLogs(SCRIPTED_VAL_LOSS)
    if interrupt_at is not None:  # Ctrl-C at the start of that epoch
        with pytest.raises(KeyboardInterrupt):
            fit_run(
                model,
                data,
                tmp_path,
                epochs,
                [EpochRecorder(fail_at=interrupt_at), scripted],
                patience=2,
            )
        model = _tiny_model()  # a new process
    recorder = EpochRecorder()
    history = fit_run(
        model, data, tmp_path, epochs, [recorder, scripted], patience=2
    )
    assert recorder.epochs == list(range(interrupt_at or 0, 4))
    assert history["val_loss"] == SCRIPTED_VAL_LOSS[:4]
    state = read_stopping_state(tmp_path)
    assert (state["best_epoch"], state["wait"]) == (1, 2)
    assert state["stop_reason"] == "no improvement of val_loss for 2 epochs"
    assert [r["epoch"] for r in state["records"]] == [0, 1, 2, 3]
    # The model, and best.weights.h5, hold the weights of epoch index 1.
    best = _weights_of(tmp_path / "checkpoints" / "epoch_002.weights.h5")
    last = _weights_of(tmp_path / "checkpoints" / "epoch_004.weights.h5")
    for got, want in zip(model.get_weights(), best):
        np.testing.assert_array_equal(got, want)
    assert not all(
        np.array_equal(a, b) for a, b in zip(best, last)
    )  # the restore did something
    for got, want in zip(_weights_of(tmp_path / BEST_WEIGHTS_FILE), best):
        np.testing.assert_array_equal(got, want)
    assert not (tmp_path / "backup").exists()


def test_a_run_killed_after_stopping_trains_no_further_epoch(tmp_path):
    data, epochs = _stopping_data(), len(SCRIPTED_VAL_LOSS)
    with pytest.raises(KeyboardInterrupt):
        fit_run(
            _tiny_model(),
            data,
            tmp_path,
            epochs,
            [ScriptedLogs(SCRIPTED_VAL_LOSS, fail_at_train_end=True)],
            patience=2,
        )
    assert (tmp_path / "backup").is_dir()  # the end never came
    model, recorder = _tiny_model(), EpochRecorder()
    history = fit_run(
        model,
        data,
        tmp_path,
        epochs,
        [recorder, ScriptedLogs(SCRIPTED_VAL_LOSS)],
        patience=2,
    )
    assert recorder.epochs == []
    assert len(history["loss"]) == 4
    best = _weights_of(tmp_path / "checkpoints" / "epoch_002.weights.h5")
    for got, want in zip(model.get_weights(), best):
        np.testing.assert_array_equal(got, want)
    assert not (tmp_path / "backup").exists()


def _script_distributed_validation(monkeypatch, values):
    """`fit_distributed_run`'s validation losses, scripted; the list of the
    model's weights at each evaluation."""
    import keras_attention.training as training

    values, seen = iter(values), []

    def evaluator(model, strategy):
        def evaluate(data):
            seen.append(model.get_weights())
            return next(values)

        return evaluate

    monkeypatch.setattr(training, "distributed_evaluator", evaluator)
    return seen


def test_distributed_run_stops_keeps_the_best_and_stays_stopped(
    tmp_path, monkeypatch
):
    # `fit_distributed_run`'s stopping rule (one process, the default
    # strategy): the scripted validation losses stop it after epoch index
    # 3, the model ends with epoch 1's weights, and a rerun (a run killed
    # after it stopped) trains no further epoch.
    import keras_attention.training as training

    seen = _script_distributed_validation(monkeypatch, SCRIPTED_VAL_LOSS)
    data, epochs = _stopping_data(), len(SCRIPTED_VAL_LOSS)
    model = _tiny_model()
    history = training.fit_distributed_run(
        model, data, tmp_path, epochs, validation_data=data, patience=2
    )
    assert history["val_loss"] == SCRIPTED_VAL_LOSS[:4]
    state = training.read_stopping_state(tmp_path)
    assert (state["best_epoch"], state["stop_reason"]) == (
        1,
        "no improvement of val_loss for 2 epochs",
    )
    assert len(seen) == 4
    assert not all(np.array_equal(a, b) for a, b in zip(seen[1], seen[3]))
    best_file = _weights_of(tmp_path / training.BEST_WEIGHTS_FILE)
    for got, file_weights, want in zip(model.get_weights(), best_file, seen[1]):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(file_weights, want)
    model = _tiny_model()  # a new process, the same command
    history = training.fit_distributed_run(
        model, data, tmp_path, epochs, validation_data=data, patience=2
    )
    assert len(history["loss"]) == 4 and len(seen) == 4
    for got, want in zip(model.get_weights(), seen[1]):
        np.testing.assert_array_equal(got, want)


def test_distributed_run_killed_before_its_commit_keeps_committed_best(
    tmp_path, monkeypatch
):
    # Killed after epoch index 2's records (a new best, 1.0) and before its
    # checkpoint: the rerun redoes epoch 2 (2.5 now), stops after epoch 3,
    # and ends with epoch 1's weights, not the killed epoch's. The run
    # directory counts as resumable until `--restart` clears it.
    import keras_attention.training as training
    from keras_attention.training import start_run

    seen = _script_distributed_validation(
        monkeypatch, [3.0, 2.0, 1.0, 2.5, 2.1]
    )
    saves, original_save = [], tf.train.CheckpointManager.save

    def save_or_die(manager, *args, **kwargs):
        saves.append(1)
        if len(saves) == 3:
            raise KeyboardInterrupt("killed before epoch 2's checkpoint")
        return original_save(manager, *args, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_or_die)
    data = _stopping_data()
    with pytest.raises(KeyboardInterrupt):
        training.fit_distributed_run(
            _tiny_model(), data, tmp_path, 8, validation_data=data, patience=2
        )
    assert start_run(tmp_path)  # resumable: the distributed checkpoint
    model = _tiny_model()
    history = training.fit_distributed_run(
        model, data, tmp_path, 8, validation_data=data, patience=2
    )
    assert history["val_loss"] == [3.0, 2.0, 2.5, 2.1]
    assert training.read_stopping_state(tmp_path)["best_epoch"] == 1
    for got, want in zip(model.get_weights(), seen[1]):
        np.testing.assert_array_equal(got, want)
    assert not start_run(tmp_path, restart=True)
    assert not os.path.exists(training.distributed_checkpoint_dir(tmp_path))


def test_time_budget_counts_every_resume(tmp_path, monkeypatch):
    import keras_attention.training as training

    clock = iter(range(0, 10_000, 30))  # every reading 30 s later
    monkeypatch.setattr(training.time, "monotonic", lambda: next(clock))
    data = _stopping_data()
    with pytest.raises(KeyboardInterrupt):
        fit_run(
            _tiny_model(),
            data,
            tmp_path,
            6,
            [EpochRecorder(fail_at=2)],
            time_budget=1.2,  # 72 s: the third epoch passes it
        )
    recorder = EpochRecorder()
    history = fit_run(
        _tiny_model(), data, tmp_path, 6, [recorder], time_budget=1.2
    )
    assert recorder.epochs == [2]  # 30 + 30 before the resume, then 30
    assert len(history["loss"]) == 3
    state = training.read_stopping_state(tmp_path)
    assert state["elapsed_seconds"] == 90
    assert state["stop_reason"].startswith("the time budget of 1.2 minutes")
    assert state["best_epoch"] is None  # no patience: the last weights
    assert not (tmp_path / training.BEST_WEIGHTS_FILE).exists()


def test_stopping_rule_errors_name_the_argument(tmp_path):
    from keras_attention.training import StoppingRule

    with pytest.raises(ValueError, match="Received: patience=0"):
        StoppingRule(tmp_path, patience=0)
    with pytest.raises(ValueError, match="Received: mode='lowest'"):
        StoppingRule(tmp_path, patience=1, mode="lowest")
    rule = StoppingRule(tmp_path, patience=1, monitor="val_bleu")
    rule.on_train_begin()
    with pytest.raises(ValueError, match="'val_bleu'.*Received: logs with"):
        rule.on_epoch_end(0, {"loss": 1.0})


def test_history_logger_keeps_each_epoch_once_after_a_redone_epoch(tmp_path):
    from keras_attention.training import HistoryLogger

    path = tmp_path / HISTORY_FILE
    logger = HistoryLogger(path)
    for epoch in range(3):
        logger.on_epoch_begin(epoch)
        logger.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    # A killed run logged epoch 2, but its backup says 2 epochs: redo 2.
    resumed = HistoryLogger(path, start_epoch=2)
    resumed.on_train_begin()
    resumed.on_epoch_begin(2)
    resumed.on_epoch_end(2, {"loss": 0.25, "val_loss": 0.5})
    assert path.read_text().splitlines() == [
        "epoch,loss,val_loss",
        "0,1.0,NA",
        "1,0.5,NA",
        "2,0.25,0.5",
    ]
    assert read_history(path) == {
        "loss": [1.0, 0.5, 0.25],
        "val_loss": [0.5],
    }


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(
    tmp_path,
):
    def shuffled_data():  # a new process builds its dataset again
        features = np.random.default_rng(0).integers(1, 9, size=(12, 5))
        return (
            tf.data.Dataset.from_tensor_slices(
                (features, np.roll(features, -1, axis=1))
            )
            .shuffle(12, seed=3, reshuffle_each_iteration=True)
            .batch(4)
        )

    keras.utils.set_random_seed(0)
    whole = _tiny_model()
    fit_run(whole, shuffled_data(), tmp_path / "whole", epochs=3)
    keras.utils.set_random_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit_run(
            _tiny_model(),
            shuffled_data(),
            tmp_path / "cut",
            epochs=3,
            callbacks=[EpochRecorder(fail_at=2)],
        )
    keras.utils.set_random_seed(0)
    resumed = _tiny_model()
    fit_run(resumed, shuffled_data(), tmp_path / "cut", epochs=3)
    for got, want in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert read_history(tmp_path / "cut" / HISTORY_FILE)[
        "loss"
    ] == pytest.approx(
        read_history(tmp_path / "whole" / HISTORY_FILE)["loss"], rel=1e-6
    )
