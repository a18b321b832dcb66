"""Model: the baseline is exactly the seed document's; each variant changes one documented thing."""

from __future__ import annotations

import warnings
from importlib import metadata
from pathlib import Path

import keras
import pytest

from conftest import make_config
from lstmlab.errors import LstmlabError
from lstmlab.paths import config_dir
from lstmlab.pipeline.checks import LOSSES, OPTIMIZERS, SCALERS, check_config
from lstmlab.pipeline.instantiate import WHITELISTS, instantiate
from lstmlab.pipeline.keras_side.model import build_model, check_activation
from lstmlab.pipeline.params import run_params

VARIANTS = sorted(p.stem for p in Path(config_dir(), "variant").glob("*.yaml"))

# What each variant may change relative to the baseline (flattened config keys), and to what.
EXPECTED_DIFF = {
    "baseline": {},
    "bidirectional": {"model.bidirectional": "True"},
    "third_layer": {"model.units": "[50, 50, 50]"},
    "unequal_units": {"model.units": "[50, 25]"},
    "tanh": {"model.activation": "tanh"},
    "leaky_relu": {"model.activation": "leaky_relu"},
    "sgd": {"optimizer._target_": "keras.optimizers.SGD", "optimizer.name": "sgd",
            "optimizer.learning_rate": "0.01", "optimizer.momentum": "0.0"},
    "rmsprop": {"optimizer._target_": "keras.optimizers.RMSprop", "optimizer.name": "rmsprop"},
    "adagrad": {"optimizer._target_": "keras.optimizers.Adagrad", "optimizer.name": "adagrad"},
    "mae": {"loss._target_": "keras.losses.MeanAbsoluteError", "loss.name": "mae"},
    "huber": {"loss._target_": "keras.losses.Huber", "loss.name": "huber", "loss.delta": "0.05"},
}


def lstm_layers(model: keras.Model) -> list[keras.layers.LSTM]:
    found = []
    for layer in model.layers:
        inner = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
        if isinstance(inner, keras.layers.LSTM):
            found.append(inner)
    return found


def test_the_baseline_is_the_seed_model():
    cfg = make_config()
    model = build_model(cfg.model, lookback=cfg.data.lookback, n_features=1)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["LSTM", "Dropout", "LSTM", "Dropout", "Dense"]
    first, second = lstm_layers(model)
    assert (first.units, second.units) == (50, 50)
    assert first.activation is keras.activations.relu and second.activation is keras.activations.relu
    assert (first.return_sequences, second.return_sequences) == (True, False)
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.2, 0.2]
    assert model.layers[-1].units == 1
    assert model.input_shape == (None, 60, 1)
    assert model.count_params() == 30_651
    optimizer = instantiate(cfg.optimizer)
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert float(optimizer.learning_rate) == pytest.approx(0.001)
    assert isinstance(instantiate(cfg.loss), keras.losses.MeanSquaredError)
    assert (cfg.trainer.batch_size, cfg.trainer.epochs) == (32, 50)
    assert cfg.trainer.early_stopping.enabled is False
    assert cfg.tracking.variant == "baseline"


def test_every_documented_variant_has_a_config():
    assert sorted(EXPECTED_DIFF) == VARIANTS


@pytest.mark.parametrize("variant", sorted(EXPECTED_DIFF))
def test_each_variant_changes_exactly_one_documented_thing(variant):
    baseline = run_params(make_config("variant=baseline"))
    changed = run_params(make_config(f"variant={variant}"))
    assert changed.pop("tracking.variant") == variant
    baseline.pop("tracking.variant")
    diff = {key: changed.get(key) for key in baseline.keys() | changed.keys()
            if baseline.get(key) != changed.get(key)}
    assert diff == EXPECTED_DIFF[variant]


@pytest.mark.parametrize(
    "variant, check",
    [
        ("bidirectional", lambda m: all(isinstance(l, keras.layers.Bidirectional) for l in m.layers[::2][:2])),
        ("third_layer", lambda m: [l.units for l in lstm_layers(m)] == [50, 50, 50]),
        ("unequal_units", lambda m: [l.units for l in lstm_layers(m)] == [50, 25]),
        ("tanh", lambda m: all(l.activation is keras.activations.tanh for l in lstm_layers(m))),
        ("leaky_relu", lambda m: all(l.activation is keras.activations.leaky_relu for l in lstm_layers(m))),
    ],
)
def test_variant_models_have_the_layers_they_claim(variant, check):
    cfg = make_config(f"variant={variant}")
    assert check(build_model(cfg.model, lookback=60, n_features=1))


@pytest.mark.parametrize("variant, optimizer", [("sgd", keras.optimizers.SGD),
                                                ("rmsprop", keras.optimizers.RMSprop),
                                                ("adagrad", keras.optimizers.Adagrad)])
def test_optimizer_variants_instantiate_their_keras_class(variant, optimizer):
    assert isinstance(instantiate(make_config(f"variant={variant}").optimizer), optimizer)


@pytest.mark.parametrize("variant, loss", [("mae", keras.losses.MeanAbsoluteError),
                                           ("huber", keras.losses.Huber)])
def test_loss_variants_instantiate_their_keras_class(variant, loss):
    assert isinstance(instantiate(make_config(f"variant={variant}").loss), loss)


def test_every_class_a_config_may_name_is_built_without_hydras_execution_warning():
    # Hydra 1.4 warns (and 1.5 will refuse) when instantiate has no execution whitelist; 1.3 has none
    from omegaconf import OmegaConf

    release = tuple(int(p) for p in metadata.version("hydra-core").split(".")[:2])
    assert WHITELISTS is (release >= (1, 4))
    for module, classes in (("keras.optimizers", OPTIMIZERS), ("keras.losses", LOSSES),
                            ("sklearn.preprocessing", SCALERS)):
        for name in sorted(classes):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                built = instantiate(OmegaConf.create({"_target_": f"{module}.{name}"}))
            assert type(built).__name__ == name


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.units=[50,0]", r"model.units=\[50, 0\] must list one whole number above 0 per LSTM layer"),
        ("model.units=[]", r"model.units=\[\] must list one whole number above 0"),
        ("model.dropout=1.0", r"model.dropout=1.0 must be in \[0, 1\)"),
        ("model.dropout=-0.1", "must be in"),
        ("model.activation=nope", "not a Keras activation"),
    ],
)
def test_invalid_model_values_are_rejected(override, message):
    cfg = make_config(override)
    with pytest.raises(LstmlabError, match=message):
        check_config(cfg)
        check_activation(cfg.model.activation)
