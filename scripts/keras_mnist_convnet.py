"""Keras's own run of keras-io examples/vision/mnist_convnet.py, for DPTrain's comparison table.

The example as published (model, Adam, batch 128, 15 epochs, validation_split 0.1), except that
the data come from data/mnist (IDX files) instead of keras.datasets (no download), and the model
starts from examples/keras/mnist_convnet.keras (its untrained weights), when given. Prints one
JSON line with the test loss and accuracy and the wall time of fit.

usage: KERAS_BACKEND=jax JAX_PLATFORMS=cpu .venv-fixtures/bin/python scripts/keras_mnist_convnet.py [MODEL.keras]
"""
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import keras  # noqa: E402
import numpy as np  # noqa: E402
from make_fixtures import read_idx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
data = ROOT / "data/mnist"
x_train = read_idx(data / "train-images-idx3-ubyte.gz", 0x803).astype("float32")[..., None] / 255
y_train = keras.utils.to_categorical(read_idx(data / "train-labels-idx1-ubyte.gz", 0x801), 10)
x_test = read_idx(data / "t10k-images-idx3-ubyte.gz", 0x803).astype("float32")[..., None] / 255
y_test = keras.utils.to_categorical(read_idx(data / "t10k-labels-idx1-ubyte.gz", 0x801), 10)

if len(sys.argv) > 1:
    model = keras.saving.load_model(sys.argv[1])  # compiled: Adam(0.001), categorical_crossentropy
else:
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(), keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
start = time.time()
history = model.fit(x_train, y_train, batch_size=128, epochs=15, validation_split=0.1, verbose=2)
fit_seconds = time.time() - start
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(json.dumps({"test_loss": loss, "test_accuracy": accuracy, "fit_seconds": round(fit_seconds, 1),
                  "val_accuracy": history.history["val_accuracy"][-1],
                  "keras": keras.__version__, "backend": keras.backend.backend()}))
