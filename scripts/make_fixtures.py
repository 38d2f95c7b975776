"""Writes Keras/JAX reference fixtures for the Swift loss, gradient, optimizer and schedule tests.

Each case builds the Keras tutorial-style CNN for one architecture, runs it on
the first N real MNIST test images, and saves inputs, weights (Keras names and
layouts: HWIO conv kernels, [in,out] dense kernels), softmax outputs, the mean
categorical cross-entropy and its gradient w.r.t. every weight. Afterwards every
file is reloaded and checked against an independent float64 numpy forward pass
and central finite differences. Run through scripts/make-fixtures.

optimizers.safetensors: Keras's own optimizers applied to given weights with a fixed
sequence of gradients (and a learning rate that changes per step); the weights and the
state after every step. schedules.safetensors: Keras's learning-rate schedules step by
step. `--only conv|optimizers|schedules` writes one group (default: all).
"""
import argparse
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


# ---- Optimizers: Keras's update rules, step by step ----

# (Keras class, its keyword arguments, the first learning rate). Empty kwargs = Keras's
# defaults, so the Swift defaults are checked too. Keras applies weight decay in every
# optimizer (base_optimizer._apply_weight_decay); AdamW is Adam whose default is 0.004.
OPTIMIZER_CASES = {
    "sgd_default": ("SGD", {}, 0.01),
    "sgd_momentum": ("SGD", {"momentum": 0.9}, 0.05),
    "sgd_nesterov_decay": ("SGD", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01}, 0.1),
    "adam_default": ("Adam", {}, 0.001),
    "adam_custom": ("Adam", {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5}, 0.01),
    "adam_decay": ("Adam", {"weight_decay": 0.1}, 0.01),
    "adamw_default": ("AdamW", {}, 0.001),
    "adamw_custom": ("AdamW", {"weight_decay": 0.05, "beta_1": 0.85, "beta_2": 0.995, "epsilon": 1e-6}, 0.01),
    "rmsprop_default": ("RMSprop", {}, 0.001),
    "rmsprop_momentum": ("RMSprop", {"rho": 0.8, "momentum": 0.5, "epsilon": 1e-6}, 0.01),
    "rmsprop_centered_decay": ("RMSprop", {"centered": True, "momentum": 0.9, "weight_decay": 0.01}, 0.005),
}
OPTIMIZER_STEPS = 5
LR_FACTORS = [1.0, 0.5, 2.0, 1.0, 0.25]  # learning rate of step k = first rate x factor (a schedule)

# Keras's slot variables -> the names dptrain gives the same buffers (Optimizer.swift).
STATE_NAMES = {
    "SGD": {"momentums": "velocity"},
    "Adam": {"_momentums": "m", "_velocities": "v"},
    "AdamW": {"_momentums": "m", "_velocities": "v"},
    "RMSprop": {"_velocities": "mean_square", "_momentums": "momentum", "_average_gradients": "average_gradient"},
}


def optimizer_inputs():
    """Two small tensors (weights of a 4x3 kernel and a 5-bias) and 5 gradient steps.

    Every step mixes gradient magnitudes per entry: ~1, ~1e-2, ~1e-6 (where Keras's epsilon
    1e-7 added to sqrt(v) differs by percents from PyTorch's 1e-8 added to sqrt(v_hat)),
    ~1e-8 and exact zeros, with signs that change between steps.
    """
    rng = np.random.default_rng(SEED)
    shapes = [(4, 3), (5,)]
    weights = [rng.uniform(-1, 1, s).astype(np.float32) for s in shapes]
    scales = np.array([1, 1e-2, 1e-6, 1e-8, 0, 1, 3e-6, 1e-2, 1e-6, 2, 1e-3, 1e-6, 0.5, 1e-7, 1e-6, 5e-2, 1],
                      dtype=np.float64)
    n = sum(int(np.prod(s)) for s in shapes)
    assert len(scales) == n
    grads = (rng.standard_normal((OPTIMIZER_STEPS, n)) * scales).astype(np.float32)
    return shapes, weights, grads


def split(flat, shapes):
    out, at = [], 0
    for s in shapes:
        k = int(np.prod(s))
        out.append(flat[at:at + k].reshape(s))
        at += k
    return out


def make_optimizer_fixture():
    shapes, weights, grads = optimizer_inputs()
    flat = lambda arrays: np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays])  # noqa: E731
    tensors = {"initial": flat(weights), "gradients": grads}
    meta = {"framework": f"keras {keras.__version__} / jax {jax.__version__}",
            "shapes": json.dumps(shapes), "steps": str(OPTIMIZER_STEPS)}
    for name, (cls, kwargs, lr) in OPTIMIZER_CASES.items():
        variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
        opt = getattr(keras.optimizers, cls)(learning_rate=lr, **kwargs)
        opt.build(variables)
        rates, after, state = [], [], {}
        for k in range(OPTIMIZER_STEPS):
            opt.learning_rate = np.float32(lr * LR_FACTORS[k])  # assigns the lr variable
            rates.append(float(np.asarray(opt.learning_rate)))
            opt.apply(split(grads[k], shapes), variables)
            after.append(flat([v.value for v in variables]))
            for attr, ours in STATE_NAMES[cls].items():
                slots = getattr(opt, attr, [])
                if slots:
                    state.setdefault(ours, []).append(flat([v.value for v in slots]))
        assert int(opt.iterations.value) == OPTIMIZER_STEPS
        tensors[f"{name}/learning_rate"] = np.array(rates, np.float32)
        tensors[f"{name}/weights"] = np.stack(after)
        for ours, steps in state.items():
            tensors[f"{name}/state/{ours}"] = np.stack(steps)
        meta[name] = json.dumps({"kind": cls.lower(), "keras": kwargs, "state": sorted(state)},
                                separators=(",", ":"), sort_keys=True)
    save_reproducible(tensors, OUT / "optimizers.safetensors", meta)
    check_optimizer_fixture()


def check_optimizer_fixture():
    """Replays each case with a float64 numpy transcription of the update rules written from
    the papers' formulas in Keras's form; prints the largest relative difference per case."""
    t = load_file(str(OUT / "optimizers.safetensors"))
    for name, (cls, kw, _) in OPTIMIZER_CASES.items():
        w = t["initial"].astype(np.float64)
        z = np.zeros_like(w)
        s = dict(m=z.copy(), v=z.copy(), a=z.copy())
        wd = kw.get("weight_decay", 0.004 if cls == "AdamW" else 0.0)
        worst = 0.0
        for k in range(OPTIMIZER_STEPS):
            g, lr = t["gradients"][k].astype(np.float64), float(t[f"{name}/learning_rate"][k])
            w = w - w * wd * lr
            if cls == "SGD":
                mu = kw.get("momentum", 0.0)
                s["m"] = mu * s["m"] - lr * g
                w = w + (mu * s["m"] - lr * g if kw.get("nesterov") else s["m"]) if mu else w - lr * g
            elif cls in ("Adam", "AdamW"):
                b1, b2, eps = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999), kw.get("epsilon", 1e-7)
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g * g
                alpha = lr * np.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1))
                w = w - alpha * s["m"] / (np.sqrt(s["v"]) + eps)
            else:
                rho, mu, eps = kw.get("rho", 0.9), kw.get("momentum", 0.0), kw.get("epsilon", 1e-7)
                s["v"] = rho * s["v"] + (1 - rho) * g * g
                s["a"] = rho * s["a"] + (1 - rho) * g
                denom = s["v"] - s["a"] ** 2 + eps if kw.get("centered") else s["v"] + eps
                inc = lr * g / np.sqrt(denom)
                s["m"] = mu * s["m"] + inc
                w = w - (s["m"] if mu else inc)
            keras_w = t[f"{name}/weights"][k]
            worst = max(worst, float(np.max(np.abs(keras_w - w) / np.maximum(np.abs(w), 1e-3))))
        print(f"{name}: {OPTIMIZER_STEPS} steps, max relative difference to numpy64 {worst:.1e}")
        assert worst < 1e-5, name


# ---- Learning-rate schedules: Keras's values per optimizer step ----

SCHEDULE_BASE, STEPS_PER_EPOCH, SCHEDULE_EPOCHS = 0.1, 7, 4
SCHEDULE_STEPS = STEPS_PER_EPOCH * SCHEDULE_EPOCHS + 3  # a few steps past the end too


def schedule_cases():
    s, spe, base = SCHEDULE_STEPS, STEPS_PER_EPOCH, SCHEDULE_BASE
    sch = keras.optimizers.schedules
    total = spe * SCHEDULE_EPOCHS
    warmup = 10
    return {
        # (schedule, parameters in dptrain's terms, the steps it is evaluated at)
        "cosine": (sch.CosineDecay(base, decay_steps=total), {"alpha": 0.0}, range(s)),
        "cosine_alpha": (sch.CosineDecay(base, decay_steps=total, alpha=0.1), {"alpha": 0.1}, range(s)),
        "exponential": (sch.ExponentialDecay(base, decay_steps=spe, decay_rate=0.9), {"decay_rate": 0.9}, range(s)),
        # x0.1 from the first step of epochs 2 and 3: Keras's boundaries are inclusive
        # on the left value (step <= b keeps it), so b = epoch * spe - 1.
        "step": (sch.PiecewiseConstantDecay([2 * spe - 1, 3 * spe - 1], [base, base * 0.1, base * 0.01]),
                 {"factor": 0.1, "epochs": [2, 3]}, range(s)),
        # Keras's linear warm-up from base/N to base over N-1 steps is base*(s+1)/N for s < N,
        # the warm-up dptrain applies over N steps.
        "warmup": (sch.CosineDecay(base / warmup, decay_steps=1, warmup_target=base, warmup_steps=warmup - 1),
                   {"warmup_steps": warmup}, range(warmup)),
    }


def make_schedule_fixture():
    tensors = {}
    meta = {"framework": f"keras {keras.__version__} / jax {jax.__version__}",
            "base": repr(SCHEDULE_BASE), "steps_per_epoch": str(STEPS_PER_EPOCH), "epochs": str(SCHEDULE_EPOCHS)}
    for name, (schedule, params, steps) in schedule_cases().items():
        tensors[name] = np.array([float(schedule(k)) for k in steps], np.float32)
        meta[name] = json.dumps(params, separators=(",", ":"), sort_keys=True)
    save_reproducible(tensors, OUT / "schedules.safetensors", meta)
    t = load_file(str(OUT / "schedules.safetensors"))
    for name in sorted(t):
        print(f"schedule {name}: {len(t[name])} steps, {t[name][0]:.6g} .. {t[name][-1]:.6g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["conv", "optimizers", "schedules"],
                        help="write one group of fixtures (default: all)")
    only = parser.parse_args().only
    OUT.mkdir(parents=True, exist_ok=True)
    if only in (None, "conv"):
        images = read_idx(ROOT / "data/mnist/t10k-images-idx3-ubyte.gz", 0x00000803)
        labels = read_idx(ROOT / "data/mnist/t10k-labels-idx1-ubyte.gz", 0x00000801)
        for name, (n, arch) in CASES.items():
            make_case(name, n, arch, images, labels)
        for name, (n, arch) in CASES.items():
            check_case(name, n, arch)
    if only in (None, "optimizers"):
        make_optimizer_fixture()
    if only in (None, "schedules"):
        make_schedule_fixture()


if __name__ == "__main__":
    main()
