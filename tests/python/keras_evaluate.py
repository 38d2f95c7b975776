"""Evaluates a .keras model with Keras 3 itself on the MNIST test set; prints one JSON line.

The other side of DPTrain's Keras writer: the file must open with keras.saving.load_model as it
is (its compile_config included), and Keras's own evaluate must give the accuracy DPTrain
reported. Loss and accuracy are categorical cross-entropy and accuracy of one-hot labels (what
DPTrain reports), whatever the file's compile_config names; the model runs in inference mode.

usage: keras_evaluate.py MODEL.keras DATA_DIR [--limit N] [--pixels auto|scaled|raw] [--batch-size B]
  DATA_DIR holds t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (IDX, gzip).
  --pixels scaled feeds pixels / 255 (the tutorial's input), raw feeds 0..255; auto (default) feeds
  raw pixels to a model whose first layer is Rescaling, as its Keras user would, else scaled.
  Images are reshaped to the model's input shape (e.g. (28, 28, 1) or (784,)).
-> {"loss": 0.0279, "accuracy": 0.9912, "examples": 10000, "pixels": "scaled"}
Bad input: one line `keras_evaluate: error: <file>: <what is wrong>` on stderr, exit 1.
"""
import argparse
import gzip
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def fail(path, message):
    print(f"keras_evaluate: error: {path}: {message}", file=sys.stderr)
    sys.exit(1)


def read_idx(path, ndim):
    """IDX: big-endian u32 magic 0x0000080<ndim>, ndim big-endian u32 sizes, then uint8 data."""
    import numpy as np
    try:
        raw = gzip.open(path, "rb").read()
    except OSError as e:
        fail(path, e.strerror or str(e))
    if len(raw) < 4 + 4 * ndim or int.from_bytes(raw[:4], "big") != 0x800 + ndim:
        fail(path, f"not an IDX file of {ndim} dimensions")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    count = 1
    for d in dims:
        count *= d
    if len(raw) != 4 + 4 * ndim + count:
        fail(path, f"{len(raw) - 4 - 4 * ndim} data bytes, header says {count}")
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data_dir")
    parser.add_argument("--limit", type=int, help="evaluate the first N test images only")
    parser.add_argument("--pixels", choices=["auto", "scaled", "raw"], default="auto")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    data = Path(args.data_dir)
    images = read_idx(data / "t10k-images-idx3-ubyte.gz", 3)
    labels = read_idx(data / "t10k-labels-idx1-ubyte.gz", 1)
    if len(images) != len(labels):
        fail(data, f"{len(images)} images but {len(labels)} labels")
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]

    import keras
    import numpy as np
    if not Path(args.model).is_file():
        fail(args.model, "no such file")
    try:
        model = keras.saving.load_model(args.model)  # compile=True: a broken compile_config fails here
    except Exception as e:  # Keras raises many kinds; the message is what a user needs
        fail(args.model, f"keras.saving.load_model: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")

    pixels = args.pixels
    if pixels == "auto":
        first = next((layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)), None)
        pixels = "raw" if isinstance(first, keras.layers.Rescaling) else "scaled"
    x = images.astype(np.float32)
    if pixels == "scaled":
        x /= 255.0
    shape = tuple(model.input_shape[1:])
    if int(np.prod(shape)) != int(np.prod(x.shape[1:])):
        fail(args.model, f"input shape {shape} does not hold a {x.shape[1]}x{x.shape[2]} image")
    x = x.reshape((len(x), *shape))
    classes = model.output_shape[-1]
    if classes <= int(labels.max()):
        fail(args.model, f"{classes} outputs, but the labels go up to {int(labels.max())}")
    y = np.eye(classes, dtype=np.float32)[labels]

    # An uncompiled file (no compile_config) has no optimizer; evaluate needs none, compile does.
    model.compile(optimizer=getattr(model, "optimizer", None) or "sgd",
                  loss="categorical_crossentropy", metrics=["accuracy"])
    scores = model.evaluate(x, y, batch_size=args.batch_size, verbose=0, return_dict=True)
    print(json.dumps({"loss": float(scores["loss"]), "accuracy": float(scores["accuracy"]),
                      "examples": len(x), "pixels": pixels}))


if __name__ == "__main__":
    main()
