"""Writes Keras/JAX reference fixtures for the Swift loss and gradient tests.

Each case builds the Keras tutorial-style CNN for one architecture, runs it on
the first N real MNIST test images, and saves inputs, weights (Keras names and
layouts: HWIO conv kernels, [in,out] dense kernels), softmax outputs, the mean
categorical cross-entropy and its gradient w.r.t. every weight. Afterwards every
file is reloaded and checked against an independent float64 numpy forward pass
and central finite differences. Run through scripts/make-fixtures.
"""
import gzip
import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/NNTests/Fixtures"
SEED = 1234

# Lists are per conv layer; "dense" = hidden Dense(relu) widths before Dense(10).
CASES = {
    "default_b16": (16, dict(filters=[32, 64], kernel_size=[5, 5], strides=[1, 1],
                             padding=["valid", "valid"], pool_size=[2, 2], dense=[])),
    "same_stride2_dense_b5": (5, dict(filters=[8, 16], kernel_size=[3, 5], strides=[2, 1],
                                      padding=["same", "same"], pool_size=[2, 2], dense=[32])),
    "k3_pool3_b7": (7, dict(filters=[4, 6], kernel_size=[3, 3], strides=[1, 1],
                            padding=["valid", "same"], pool_size=[3, 2], dense=[])),
}


def read_idx(path, magic):
    """IDX file: big-endian u32 magic (0x0000080<ndim>), ndim u32 dims, uint8 data."""
    raw = gzip.open(path, "rb").read()
    assert int.from_bytes(raw[:4], "big") == magic, path
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def layer_name(kind, i):
    return kind if i == 0 else f"{kind}_{i}"  # Keras's own default naming scheme


def conv_layers(arch):
    keys = ("filters", "kernel_size", "strides", "padding", "pool_size")
    return list(zip(*(arch[k] for k in keys)))


def build(arch):
    layers = [keras.Input((28, 28, 1))]
    for i, (f, k, s, p, q) in enumerate(conv_layers(arch)):
        layers += [keras.layers.Conv2D(f, k, strides=s, padding=p, activation="relu",
                                       name=layer_name("conv2d", i)),
                   keras.layers.MaxPooling2D(q, name=layer_name("max_pooling2d", i))]
    layers.append(keras.layers.Flatten(name="flatten"))
    widths = arch["dense"] + [10]
    for i, d in enumerate(widths):
        act = "softmax" if i == len(widths) - 1 else "relu"
        layers.append(keras.layers.Dense(d, activation=act, name=layer_name("dense", i)))
    return keras.Sequential(layers)


def make_case(name, n, arch, images, labels):
    keras.utils.set_random_seed(SEED)  # makes Keras's glorot_uniform init reproducible
    model = build(arch)
    # Keras initialises biases to zero; nonzero ones exercise the bias paths.
    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.uniform(-0.1, 0.1, layer.bias.shape).astype(np.float32))

    x = (images[:n].astype(np.float32) / 255.0)[..., None]
    y = labels[:n].astype(np.int32)
    onehot = keras.ops.one_hot(y, 10)
    names = [f"{v.path.split('/')[-2]}/{v.name}" for v in model.trainable_variables]
    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    def loss_fn(tv):
        probs, _ = model.stateless_call(tv, fixed, x, training=False)
        return keras.losses.CategoricalCrossentropy()(onehot, probs), probs

    (loss, probs), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    # Keras clips probs to [1e-7, 1-1e-7] inside the loss; a clipped entry would
    # zero its gradient and no longer match a plain softmax cross-entropy.
    assert 1e-7 < float(probs.min()) and float(probs.max()) < 1 - 1e-7

    f32 = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.float32))  # noqa: E731
    tensors = {"x": f32(x), "labels": y, "probs": f32(probs), "loss": f32(loss).reshape(1)}
    for nm, w, g in zip(names, trainable, grads):
        tensors[nm], tensors[f"grad/{nm}"] = f32(w), f32(g)
    meta = {"architecture": json.dumps(arch, separators=(",", ":")),
            "framework": f"keras {keras.__version__} / jax {jax.__version__}",
            "batch": str(n)}
    save_reproducible(tensors, OUT / f"{name}.safetensors", meta)


def save_reproducible(tensors, path, meta):
    save_file(tensors, str(path), metadata=meta)
    # safetensors keeps __metadata__ in a Rust HashMap, so its key order (and the
    # file bytes) changed from run to run; rewrite the header with sorted keys so
    # a rerun with unchanged inputs leaves the committed files byte-identical.
    raw = bytearray(path.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n
    raw[8:8 + n] = text.ljust(n)  # same length: data offsets stay valid
    path.write_bytes(raw)


# ---- Self-check: independent float64 numpy model (documents the semantics) ----

def np_conv(x, w, b, stride, padding):
    kh, kw = w.shape[:2]
    if padding == "same":  # TF/XLA SAME: output ceil(in/stride), extra pad at the end
        pads = []
        for size, k in ((x.shape[1], kh), (x.shape[2], kw)):
            total = max((-(-size // stride) - 1) * stride + k - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, ((0, 0), *pads, (0, 0)))
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("nhwcij,ijco->nhwo", win, w) + b


def np_loss(arch, w, x, labels):
    h = x
    for i, (_, _, s, p, q) in enumerate(conv_layers(arch)):
        c = layer_name("conv2d", i)
        h = np.maximum(np_conv(h, w[c + "/kernel"], w[c + "/bias"], s, p), 0)
        n, hh, ww, ch = h.shape  # max pool, stride = pool size, valid (floor)
        h = h[:, :hh // q * q, :ww // q * q].reshape(n, hh // q, q, ww // q, q, ch).max(axis=(2, 4))
    h = h.reshape(len(h), -1)  # channels-last flatten: index = (row*W + col)*C + c
    for i in range(len(arch["dense"]) + 1):
        d = layer_name("dense", i)
        h = h @ w[d + "/kernel"] + w[d + "/bias"]
        if i < len(arch["dense"]):
            h = np.maximum(h, 0)
    z = h - h.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(labels)), labels].mean(), np.exp(logp)


def check_case(name, n, arch):
    t = load_file(str(OUT / f"{name}.safetensors"))
    f64 = {k: v.astype(np.float64) for k, v in t.items()}
    wnames = [k for k in t if "/" in k and not k.startswith("grad/")]
    assert t["x"].shape == (n, 28, 28, 1) and t["labels"].shape == (n,)
    assert t["probs"].shape == (n, 10) and t["loss"].shape == (1,)
    assert all(t[f"grad/{k}"].shape == t[k].shape for k in wnames)
    loss, probs = np_loss(arch, f64, f64["x"], t["labels"])
    print(f"{name}: loss {t['loss'][0]:.7f} (numpy64 {loss:.7f}), "
          f"max|dprobs| {np.abs(probs - t['probs']).max():.1e}")
    for k in sorted(wnames):
        print(f"  {k:18s} {str(list(t[k].shape)):15s}", end="")
        # Central difference along a random unit direction covers the whole
        # tensor, plus the single entry with the largest |gradient|.
        rng = np.random.default_rng(0)
        v = rng.standard_normal(t[k].shape)
        e = np.zeros(t[k].size)
        e[np.abs(t[f"grad/{k}"]).argmax()] = 1
        for label, d in (("dir", v / np.linalg.norm(v)), ("max", e.reshape(t[k].shape))):
            eps = 1e-5
            lp = np_loss(arch, {**f64, k: f64[k] + eps * d}, f64["x"], t["labels"])[0]
            lm = np_loss(arch, {**f64, k: f64[k] - eps * d}, f64["x"], t["labels"])[0]
            fd, an = (lp - lm) / (2 * eps), float((f64[f"grad/{k}"] * d).sum())
            print(f"  {label} fd {fd:+.6e} grad {an:+.6e} rel {abs(fd - an) / max(abs(fd), 1e-12):.1e}",
                  end="")
        print()


def main():
    images = read_idx(ROOT / "data/mnist/t10k-images-idx3-ubyte.gz", 0x00000803)
    labels = read_idx(ROOT / "data/mnist/t10k-labels-idx1-ubyte.gz", 0x00000801)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (n, arch) in CASES.items():
        make_case(name, n, arch, images, labels)
    for name, (n, arch) in CASES.items():
        check_case(name, n, arch)


if __name__ == "__main__":
    main()
