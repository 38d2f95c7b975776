"""Writes the Keras-made fixtures of Tests/KerasFilesTests/Fixtures with Keras 3 itself.

Run by scripts/make-keras-fixtures (Keras 3.15.1 on JAX, CPU). The outputs are committed; the
tests never run this. Each model is small (a few thousand weights) and trained one step, so the
files carry non-trivial weights, batch-norm moving statistics and optimizer state.
"""
import json
import os
import sys

import keras
import numpy as np
from keras import layers

out = sys.argv[1] if len(sys.argv) > 1 else "Tests/KerasFilesTests/Fixtures"
os.makedirs(out, exist_ok=True)
keras.utils.set_random_seed(1)


def one_step(model, shape, classes):
    x = np.random.default_rng(0).uniform(0, 1, (8,) + shape).astype("float32")
    y = keras.utils.to_categorical(np.arange(8) % classes, classes)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)


# keras-io's mnist_convnet, shrunk: Conv-Pool-Conv-Pool-Flatten-Dropout-Dense, Adam.
convnet = keras.Sequential([
    keras.Input(shape=(16, 16, 1)),
    layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Flatten(),
    layers.Dropout(0.5),
    layers.Dense(10, activation="softmax"),
], name="convnet")
convnet.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
one_step(convnet, (16, 16, 1), 10)
convnet.save(f"{out}/convnet.keras")
with open(f"{out}/convnet.json", "w") as f:
    f.write(convnet.to_json())

# A Functional residual model: identity block, then a projection block whose two branches have
# the same depth (Keras orders such layers by its graph walk, not by creation).
inputs = keras.Input(shape=(8, 8, 3), name="image")
x = layers.Rescaling(1.0 / 255)(inputs)
x = layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
x = layers.BatchNormalization()(x)
x = layers.ReLU()(x)
y = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
y = layers.Conv2D(8, 3, padding="same")(y)
x = layers.Add()([y, x])
x = layers.Activation("relu")(x)
shortcut = layers.Conv2D(12, 1, strides=2, name="shortcut")(x)
main = layers.Conv2D(12, 3, strides=2, padding="same", name="main")(x)
x = layers.Add(name="merge")([main, shortcut])
x = layers.GlobalAveragePooling2D()(x)
x = layers.Dropout(0.2)(x)
outputs = layers.Dense(4, activation="softmax")(x)
residual = keras.Model(inputs, outputs, name="residual")
residual.compile(loss="categorical_crossentropy",
                 optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True))
one_step(residual, (8, 8, 3), 4)
residual.save(f"{out}/residual.keras")

# Augmentation and the other settings, uncompiled.
augment = keras.Sequential([
    keras.Input(shape=(12, 12, 3)),
    layers.RandomFlip("horizontal"),
    layers.RandomTranslation(0.1, (-0.2, 0.3), fill_mode="constant", interpolation="nearest", fill_value=0.5),
    layers.Rescaling(scale=2.0, offset=-1.0),
    layers.Conv2D(4, (3, 5), strides=(2, 1), padding="same", use_bias=False, activation="tanh"),
    layers.AveragePooling2D(pool_size=2, strides=1, padding="same"),
    layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False),
    layers.Activation("gelu"),
    layers.MaxPooling2D(pool_size=(3, 2), strides=(1, 2)),
    layers.GlobalMaxPooling2D(),
    layers.Dense(5, activation="sigmoid", use_bias=False),
    layers.Dense(3, activation="softmax"),
], name="augment")
augment.save(f"{out}/augment.keras")

# Refused: a layer class DPTrain does not have, and a graph with two inputs.
conv3d = keras.Sequential([
    keras.Input(shape=(4, 4, 4, 1)),
    layers.Conv3D(2, 3),
    layers.Flatten(),
    layers.Dense(2, activation="softmax"),
])
with open(f"{out}/conv3d.json", "w") as f:
    f.write(conv3d.to_json())
a = keras.Input(shape=(4, 4, 1), name="left")
b = keras.Input(shape=(4, 4, 1), name="right")
x = layers.Flatten()(layers.Add()([a, b]))
two = keras.Model([a, b], layers.Dense(2, activation="softmax")(x), name="two_inputs")
with open(f"{out}/two_inputs.json", "w") as f:
    f.write(two.to_json())

# What Keras holds after loading each file: the tests compare the reader's weights with these.
expected = {}
for name in ["convnet", "residual", "augment"]:
    model = keras.saving.load_model(f"{out}/{name}.keras")
    optimizer = getattr(model, "optimizer", None)
    optimizer = optimizer.variables if optimizer is not None and optimizer.built else []
    expected[name] = {
        "weights": {v.path: [float(x) for x in np.asarray(v).ravel()] for v in model.weights},
        "optimizer": [[float(x) for x in np.asarray(v).ravel()] for v in optimizer],
    }
with open(f"{out}/expected.json", "w") as f:
    json.dump(expected, f)
print("wrote", sorted(os.listdir(out)))
