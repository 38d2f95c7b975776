"""Opens .keras files DPTrain wrote with Keras 3 itself and reports what Keras sees, as JSON.

Usage: keras_load_check.py WRITTEN[=ORIGINAL] ...
For each WRITTEN file: its weights by variable path (float32 values as exact decimals), the
layer classes, the optimizer and its variables, and the warnings Keras gave while loading. With ORIGINAL (a file
Keras wrote), also whether every layer's config and the inference outputs on a fixed batch are
the same in both.
"""
import json
import os
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# XLA's backend optimisations cost ~20x the load time of these tiny models; nothing here is timed.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
import keras  # noqa: E402
import numpy as np  # noqa: E402


def load(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(path)
    return model, [str(w.message) for w in caught]


report = {}
for arg in sys.argv[1:]:
    written, _, original = arg.partition("=")
    model, caught = load(written)
    optimizer = getattr(model, "optimizer", None)
    entry = {
        "class": model.__class__.__name__,
        "layers": [layer.__class__.__name__ for layer in model.layers],
        "weights": {v.path: {"shape": list(v.shape), "values": [float(x) for x in np.asarray(v).ravel()]} for v in model.weights},
        "optimizer": None if optimizer is None else {
            "class": optimizer.__class__.__name__,
            "learning_rate": float(np.asarray(optimizer.learning_rate)),
            "variables": [[float(x) for x in np.asarray(v).ravel()] for v in optimizer.variables],
        },
        "warnings": caught,
    }
    if original:
        reference, _ = load(original)
        mine = {layer.name: layer.get_config() for layer in model.layers}
        theirs = {layer.name: layer.get_config() for layer in reference.layers}
        entry["same_configs"] = mine == theirs
        entry["config_differences"] = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        shape = (4,) + tuple(model.input_shape[1:])
        x = np.random.default_rng(7).uniform(0, 255, shape).astype("float32")
        entry["same_outputs"] = bool(np.array_equal(model.predict(x, verbose=0), reference.predict(x, verbose=0)))
    report[written] = entry
json.dump(report, sys.stdout)
