"""Writes Keras 3 reference fixtures for the layer graph (issue 14), and the example models.

`--only layers` (Tests/NNTests/Fixtures/layers/):
  <case>.keras        the model saved untrained by Keras's own model.save() (compiled with
                      SGD(0.01) and categorical cross-entropy): the input of DPTrain's reader.
  <case>.safetensors  x (NHWC float32), y (int32 labels), probabilities (training=True forward),
                      inference_probabilities (training=False), loss ([1], mean categorical
                      cross-entropy of the training-mode forward), grad/<layer>/<var> for every
                      trainable variable, weight/<layer>/<var> for every variable (= the .keras),
                      and for models with BatchNormalization after_step/<layer>/<var> for every
                      variable after one Keras train_on_batch with SGD(0.01).
  augment.safetensors RandomFlip / RandomTranslation on known inputs with fixed transformations.
  dropout.safetensors Dropout's mask statistics (Keras semantics).
`--only models` (examples/keras/): keras-io's mnist_convnet, a CIFAR-style residual model and the
  benchmark's plain CIFAR-style convnet (bench/run),
  untrained, as .keras, .json (model.to_json()) and .summary.txt (model.summary()).

Every file is reloaded and checked by an independent float64 NumPy interpreter of the .keras
file itself (config.json + model.weights.h5 through h5py), central finite differences of that
loss, and NumPy transcriptions of the augmentation geometry. Run through scripts/make-fixtures.
"""
import argparse
import io
import json
import math
import os
import re
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py  # noqa: E402
import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import read_idx, save_reproducible  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/NNTests/Fixtures/layers"
EXAMPLES = ROOT / "examples/keras"
SEED = 1234
SGD_LR = 0.01
FRAMEWORK = f"keras {keras.__version__} / jax {jax.__version__}"
L = keras.layers


# ---- Model cases ----

def convnet_k3():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(6, 3, activation="relu"), L.MaxPooling2D(2),
        L.Flatten(), L.Dropout(0.0), L.Dense(10, activation="softmax"),
    ])


def bn_same():
    return keras.Sequential([
        keras.Input((16, 16, 3)),
        L.Conv2D(4, 3, padding="same", use_bias=False), L.BatchNormalization(), L.Activation("relu"),
        L.Conv2D(6, 3, strides=2, padding="same"), L.BatchNormalization(), L.ReLU(),
        L.GlobalAveragePooling2D(), L.Dense(5, activation="softmax"),
    ])


def residual():
    inputs = keras.Input((12, 12, 3))
    h = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    b = L.Conv2D(4, 3, padding="same")(h)
    b = L.BatchNormalization()(b)
    h = L.Add()([b, h])
    h = L.ReLU()(h)
    h = L.AveragePooling2D(2)(h)
    h = L.MaxPooling2D(2, strides=1, padding="same")(h)
    h = L.GlobalMaxPooling2D()(h)
    outputs = L.Dense(3, activation="softmax")(h)
    return keras.Model(inputs, outputs)


def activations():
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        L.Rescaling(1 / 255.0), L.Flatten(),
        L.Dense(12), L.Activation("gelu"),
        L.Dense(12, activation="tanh"), L.Dense(12, activation="sigmoid"),
        L.Dense(12, activation="linear"), L.ReLU(),
        L.Dense(4, activation="softmax"),
    ])


# name -> (builder, batch, classes, input kind)
CASES = {
    "convnet_k3": (convnet_k3, 8, 10, "mnist"),
    "bn_same": (bn_same, 8, 5, "random"),
    "residual": (residual, 6, 3, "random"),
    "activations": (activations, 8, 4, "mnist_crop_raw"),
}


def case_inputs(kind, n, shape, classes, rng):
    if kind == "random":
        x = rng.uniform(0, 1, (n, *shape)).astype(np.float32)
        return x, rng.integers(0, classes, n).astype(np.int32)
    images = read_idx(ROOT / "data/mnist/t10k-images-idx3-ubyte.gz", 0x00000803)
    labels = read_idx(ROOT / "data/mnist/t10k-labels-idx1-ubyte.gz", 0x00000801)
    if kind == "mnist":  # the first n test images, pixels / 255 as the tutorial feeds them
        return (images[:n].astype(np.float32) / 255.0)[..., None], labels[:n].astype(np.int32)
    # 8x8 centre crops of the next n test images, raw 0..255 (the model rescales), label mod 4
    crop = images[n:2 * n, 10:18, 10:18].astype(np.float32)[..., None]
    return crop, (labels[n:2 * n] % classes).astype(np.int32)


def var_names(model):
    """id(variable) -> "<layer name>/<variable name>", e.g. "batch_normalization_1/moving_mean":
    the names of model.weights.h5's groups. (v.path is not usable: it reads
    "sequential/conv2d/kernel" in a Sequential model but "conv2d/kernel" in a Functional one.)"""
    return {id(v): f"{layer.name}/{v.name}" for layer in model.layers for v in layer.variables}


def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def normalize_keras_file(path):
    """Rewrites the zip with fixed entry dates, metadata.json's date_saved pinned and config.json's
    "shared_object_id" values (Python id()s of the shared DTypePolicy object) renumbered 1, 2, ...
    in order of appearance, so a rerun with unchanged inputs leaves the committed .keras files
    byte-identical. Otherwise the entries are byte for byte what model.save() wrote (checked:
    model.weights.h5 is stable); load_model reads them back (make_case and make_models do)."""
    with zipfile.ZipFile(path) as z:
        entries = [(i.filename, z.read(i.filename), i.compress_type) for i in z.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data, compress in entries:
            if name == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = "2026-12-01@00:00:00"
                data = json.dumps(meta).encode()
            if name == "config.json":
                ids = {}
                data = re.sub(rb'"shared_object_id": (\d+)',
                              lambda m: b'"shared_object_id": %d' % ids.setdefault(m.group(1), len(ids) + 1), data)
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compress
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    path.write_bytes(out.getvalue())


def make_case(name):
    build, n, classes, kind = CASES[name]
    keras.backend.clear_session()  # Keras's default layer names (conv2d, conv2d_1, ...) from 0
    keras.utils.set_random_seed(SEED)  # reproducible glorot_uniform init
    model = build()
    rng = np.random.default_rng(SEED)
    # Keras initialises biases to 0 and BN to gamma 1, beta 0, mean 0, variance 1; other values
    # exercise those paths (and make inference mode a real test).
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.uniform(-0.1, 0.1, layer.bias.shape).astype(np.float32))
        if isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype(np.float32))
            layer.beta.assign(rng.uniform(-0.2, 0.2, c).astype(np.float32))
            layer.moving_mean.assign(rng.uniform(-0.3, 0.3, c).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c).astype(np.float32))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=SGD_LR),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    path = OUT / f"{name}.keras"
    model.save(path)
    normalize_keras_file(path)

    x, y = case_inputs(kind, n, model.input_shape[1:], classes, rng)
    names = var_names(model)
    var_name = lambda v: names[id(v)]  # noqa: E731
    onehot = keras.ops.one_hot(y, classes)
    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    def loss_fn(tv):
        probs, _ = model.stateless_call(tv, fixed, x, training=True)
        return keras.losses.CategoricalCrossentropy()(onehot, probs), probs

    (loss, probs), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    inference = model(x, training=False)
    # Keras clips probabilities to [1e-7, 1-1e-7] in the loss; a clipped entry would zero its
    # gradient and no longer match a plain softmax cross-entropy.
    assert 1e-7 < float(probs.min()) and float(probs.max()) < 1 - 1e-7, name

    tensors = {"x": f32(x), "y": y, "probabilities": f32(probs),
               "inference_probabilities": f32(inference), "loss": f32(loss).reshape(1)}
    for v in model.variables:
        tensors[f"weight/{var_name(v)}"] = f32(v.value)
    for v, g in zip(model.trainable_variables, grads):
        tensors[f"grad/{var_name(v)}"] = f32(g)
    has_bn = any(isinstance(layer, L.BatchNormalization) for layer in model.layers)
    if has_bn:
        # One real Keras training step on the model as read back from the file (its compile
        # config: SGD(0.01)): moving statistics from the batch, weights w - 0.01 * grad.
        loaded = keras.saving.load_model(path)
        loaded.train_on_batch(x, onehot)
        for k, v in var_names(loaded).items():
            tensors[f"after_step/{v}"] = f32(next(w for w in loaded.variables if id(w) == k).value)
    meta = {"framework": FRAMEWORK, "batch": str(n), "classes": str(classes),
            "input": {"mnist": "MNIST test images [0, n), pixels / 255",
                      "random": "seeded uniform [0, 1)",
                      "mnist_crop_raw": "MNIST test images [n, 2n), rows/cols 10..17, raw 0..255; label mod 4"}[kind],
            "probabilities": "training=True forward (no layer of this model draws random numbers)",
            "loss": "keras.losses.CategoricalCrossentropy() of the training-mode forward (batch mean)",
            "trainable": json.dumps([var_name(v) for v in model.trainable_variables]),
            "non_trainable": json.dumps([var_name(v) for v in model.non_trainable_variables])}
    if has_bn:
        meta["after_step"] = "keras.saving.load_model(<case>.keras).train_on_batch(x, one_hot(y)), SGD(learning_rate=0.01)"
        meta["batch_normalization"] = json.dumps(
            {"momentum": 0.99, "epsilon": 0.001, "variance": "biased (divide by N*H*W), also in the moving update",
             "moving_update": "moving = moving * momentum + batch * (1 - momentum)"})
    if name == "activations":
        meta["gelu"] = gelu_kind()
        meta["input_scale"] = "x is raw 0..255; the model's Rescaling(1/255) scales it"
    save_reproducible(tensors, OUT / f"{name}.safetensors", meta)


def gelu_kind():
    """Which GELU Activation("gelu") computes, measured rather than read from the source."""
    z = np.linspace(-4, 4, 801).astype(np.float32)
    got = np.asarray(L.Activation("gelu")(z), np.float64)
    zz = z.astype(np.float64)
    erf = 0.5 * zz * (1 + np.vectorize(math.erf)(zz / math.sqrt(2)))
    tanh = 0.5 * zz * (1 + np.tanh(math.sqrt(2 / math.pi) * (zz + 0.044715 * zz ** 3)))
    d_erf, d_tanh = np.abs(got - erf).max(), np.abs(got - tanh).max()
    kind = "erf" if d_erf < d_tanh else "tanh"
    return json.dumps({"kind": kind, "formula": "0.5*x*(1+erf(x/sqrt(2)))" if kind == "erf"
                       else "0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3)))",
                       "max_abs_diff_to_erf": float(d_erf), "max_abs_diff_to_tanh": float(d_tanh),
                       "note": "Activation('gelu') and activation='gelu' call keras.activations.gelu(approximate=False); "
                               "keras.ops.gelu defaults to approximate=True"}, sort_keys=True)


# ---- Independent check: a float64 NumPy interpreter of the .keras file ----

def read_keras(path):
    """config.json and the weights of every layer (layers/<name>/vars/<i>) from the archive."""
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        assert names == {"metadata.json", "config.json", "model.weights.h5"}, names
        config = json.loads(z.read("config.json"))
        with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as h:
            weights = {layer: [np.asarray(h[f"layers/{layer}/vars/{i}"], np.float64)
                               for i in range(len(h[f"layers/{layer}/vars"]))]
                       for layer in h["layers"]}
    return config, weights


VAR_NAMES = {"Conv2D": ["kernel", "bias"], "Dense": ["kernel", "bias"],
             "BatchNormalization": ["gamma", "beta", "moving_mean", "moving_variance"]}


def layer_vars(layer_config, arrays):
    cls, cfg = layer_config["class_name"], layer_config["config"]
    names = list(VAR_NAMES.get(cls, []))
    if cls in ("Conv2D", "Dense") and not cfg["use_bias"]:
        names.remove("bias")
    if cls == "BatchNormalization":
        names = [v for v in names if (v != "gamma" or cfg["scale"]) and (v != "beta" or cfg["center"])]
    assert len(names) == len(arrays), (cfg["name"], names, len(arrays))
    return dict(zip(names, arrays))


def same_pads(size, k, s):  # TF/XLA SAME: output ceil(size/s), the odd pixel of padding at the end
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def np_conv(x, w, b, strides, padding):
    kh, kw = w.shape[:2]
    if padding == "same":
        x = np.pad(x, ((0, 0), same_pads(x.shape[1], kh, strides[0]), same_pads(x.shape[2], kw, strides[1]), (0, 0)))
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::strides[0], ::strides[1]]
    out = np.einsum("nhwcij,ijco->nhwo", win, w)
    return out if b is None else out + b


def np_pool(x, pool, strides, padding, kind):
    if padding == "same":
        fill = -np.inf if kind == "max" else np.nan  # padded cells never win / are not counted
        x = np.pad(x, ((0, 0), same_pads(x.shape[1], pool[0], strides[0]),
                       same_pads(x.shape[2], pool[1], strides[1]), (0, 0)), constant_values=fill)
    win = sliding_window_view(x, pool, axis=(1, 2))[:, ::strides[0], ::strides[1]]
    return win.max(axis=(4, 5)) if kind == "max" else np.nanmean(win, axis=(4, 5))


def np_activation(name, h):
    if name == "relu":
        return np.maximum(h, 0)
    if name == "linear":
        return h
    if name == "tanh":
        return np.tanh(h)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-h))
    if name == "gelu":  # erf form (measured: gelu_kind)
        return 0.5 * h * (1 + np.vectorize(math.erf)(h / math.sqrt(2)))
    if name == "softmax":
        z = np.exp(h - h.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)
    raise ValueError(name)


def np_layer(cls, cfg, w, inputs, training, stats):
    """One layer of the graph; `stats` collects BN batch statistics (for the moving update)."""
    h = inputs[0]
    if cls == "InputLayer":
        return h
    if cls == "Conv2D":
        assert cfg["data_format"] == "channels_last" and cfg["dilation_rate"] == [1, 1] and cfg["groups"] == 1
        return np_activation(cfg["activation"], np_conv(h, w["kernel"], w.get("bias"), cfg["strides"], cfg["padding"]))
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        return np_pool(h, cfg["pool_size"], cfg["strides"], cfg["padding"], "max" if cls[0] == "M" else "avg")
    if cls == "GlobalAveragePooling2D":
        assert not cfg["keepdims"]
        return h.mean(axis=(1, 2))
    if cls == "GlobalMaxPooling2D":
        assert not cfg["keepdims"]
        return h.max(axis=(1, 2))
    if cls == "Flatten":
        return h.reshape(len(h), -1)  # channels last: index (row*W + col)*C + c
    if cls == "Dense":
        return np_activation(cfg["activation"], h @ w["kernel"] + (w["bias"] if cfg["use_bias"] else 0))
    if cls == "Dropout":
        assert cfg["rate"] == 0.0 or not training
        return h
    if cls == "BatchNormalization":
        assert cfg["axis"] == -1
        if training:
            mean, var = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))  # biased variance
            stats[cfg["name"]] = (mean, var)
        else:
            mean, var = w["moving_mean"], w["moving_variance"]
        return (h - mean) / np.sqrt(var + cfg["epsilon"]) * w.get("gamma", 1) + w.get("beta", 0)
    if cls == "Activation":
        return np_activation(cfg["activation"], h)
    if cls == "ReLU":
        assert cfg["max_value"] is None and cfg["negative_slope"] == 0 and cfg["threshold"] == 0
        return np.maximum(h, 0)
    if cls == "Rescaling":
        return h * cfg["scale"] + cfg["offset"]
    if cls == "Add":
        return sum(inputs)
    raise ValueError(cls)


def graph(config):
    """(layer config, [(inbound layer name)]) in execution order, output layer name."""
    cls, cfg = config["class_name"], config["config"]
    if cls == "Sequential":
        layers, prev = [], None
        for lc in cfg["layers"]:
            layers.append((lc, [] if prev is None else [prev]))
            prev = lc["config"]["name"]
        assert layers[0][0]["class_name"] == "InputLayer"
        return layers, prev
    # One input/output: a flat ["name", node, tensor]; several: a list of such triples.
    assert cls == "Functional" and isinstance(cfg["input_layers"][0], str), cls
    layers = []
    for lc in cfg["layers"]:
        assert len(lc["inbound_nodes"]) <= 1  # no shared layers
        inbound = []
        for node in lc["inbound_nodes"]:
            # kwargs: {} or {"mask": null} (BatchNormalization, Dropout: layers whose call takes a mask)
            assert all(v is None for v in node["kwargs"].values()) and len(node["args"]) == 1
            arg = node["args"][0]
            tensors = arg if isinstance(arg, list) else [arg]  # Add: a list of tensors
            for t in tensors:
                assert t["class_name"] == "__keras_tensor__"
                name, node_index, tensor_index = t["config"]["keras_history"]
                assert node_index == 0 and tensor_index == 0
                inbound.append(name)
        layers.append((lc, inbound))
    assert isinstance(cfg["output_layers"][0], str)
    out_name = cfg["output_layers"][0]
    return layers, out_name


def np_forward(config, params, x, training):
    layers, out_name = graph(config)
    values, stats = {}, {}
    for lc, inbound in layers:
        cfg = lc["config"]
        w = {k.split("/")[1]: v for k, v in params.items() if k.split("/")[0] == cfg["name"]}
        inputs = [x] if not inbound else [values[i] for i in inbound]
        values[cfg["name"]] = np_layer(lc["class_name"], cfg, w, inputs, training, stats)
    return values[out_name], stats


def np_loss(config, params, x, y, training=True):
    probs, stats = np_forward(config, params, x, training)
    return -np.log(probs[np.arange(len(y)), y]).mean(), probs, stats


def check_case(name):
    t = load_file(str(OUT / f"{name}.safetensors"))
    config, h5 = read_keras(OUT / f"{name}.keras")
    layers, _ = graph(config)
    params = {}
    for lc, _ in layers:
        if lc["config"]["name"] in h5:
            for v, a in layer_vars(lc, h5[lc["config"]["name"]]).items():
                params[f"{lc['config']['name']}/{v}"] = a
    assert sorted(params) == sorted(k[len("weight/"):] for k in t if k.startswith("weight/")), name
    for k, a in params.items():  # the safetensors weights are the .keras weights, bit for bit
        assert np.array_equal(a.astype(np.float32), t[f"weight/{k}"]), k
    x, y = t["x"].astype(np.float64), t["y"]
    loss, probs, stats = np_loss(config, params, x, y)
    inf = np_forward(config, params, x, training=False)[0]
    d_train, d_inf = np.abs(probs - t["probabilities"]).max(), np.abs(inf - t["inference_probabilities"]).max()
    print(f"{name}: loss {t['loss'][0]:.7f} (numpy64 {loss:.7f}), max|dprob| train {d_train:.1e} inference {d_inf:.1e}")
    assert abs(loss - t["loss"][0]) < 1e-5 and d_train < 1e-5 and d_inf < 1e-5, name
    grads = sorted(k[len("grad/"):] for k in t if k.startswith("grad/"))
    for k in grads:
        g = t[f"grad/{k}"].astype(np.float64)
        rng = np.random.default_rng(0)
        direction = rng.standard_normal(g.shape)
        e = np.zeros(g.size)
        e[np.abs(g).argmax()] = 1
        line = f"  {k:32s} {str(list(g.shape)):14s}"
        for label, d in (("dir", direction / np.linalg.norm(direction)), ("max", e.reshape(g.shape))):
            eps = 1e-6
            lp = np_loss(config, {**params, k: params[k] + eps * d}, x, y)[0]
            lm = np_loss(config, {**params, k: params[k] - eps * d}, x, y)[0]
            fd, an = (lp - lm) / (2 * eps), float((g * d).sum())
            rel = abs(fd - an) / max(abs(fd), 1e-6)
            line += f"  {label} fd {fd:+.5e} grad {an:+.5e} rel {rel:.1e}"
            assert rel < 2e-3 or abs(fd - an) < 1e-6, (name, k, label, fd, an)
        print(line)
    after = sorted(k for k in t if k.startswith("after_step/"))
    if after:
        worst = 0.0
        for k in after:
            v = k[len("after_step/"):]
            layer, var = v.split("/")
            if var in ("moving_mean", "moving_variance"):
                batch = stats[layer][0 if var == "moving_mean" else 1]
                want = params[v] * 0.99 + batch * 0.01
            else:
                want = params[v] - SGD_LR * t[f"grad/{v}"].astype(np.float64)
            worst = max(worst, float(np.abs(t[k] - want).max()))
        print(f"  after_step: {len(after)} variables, max |Keras - numpy64| {worst:.1e}")
        assert worst < 1e-5, name


# ---- Augmentation: RandomFlip and RandomTranslation on known inputs ----

# Per image of the batch: (height fraction, width fraction); translation in pixels is
# fraction * size (H = 7, W = 9), so these include integer and non-integer shifts, both signs,
# and shifts of almost the whole image (reflect/wrap past one period of the border).
TRANSLATIONS = [(0.2, 0.0), (0.0, -0.3), (-0.5, 0.45), (1 / 7, 2 / 9), (0.9, -1.0)]
AUG_SHAPE = (len(TRANSLATIONS), 7, 9, 2)
TRANSLATE_CASES = [("reflect", "bilinear", 0.0), ("wrap", "bilinear", 0.0), ("constant", "bilinear", 0.0),
                   ("nearest", "bilinear", 0.0), ("constant", "bilinear", 0.5), ("reflect", "nearest", 0.0)]


def make_augment_fixture():
    rng = np.random.default_rng(SEED)
    x = rng.uniform(0, 1, AUG_SHAPE).astype(np.float32)
    n, hh, ww, _ = x.shape
    tensors = {"input": x}
    meta = {"framework": FRAMEWORK, "shape": json.dumps(list(x.shape))}
    flip = L.RandomFlip("horizontal")
    flips = np.array([True, False, True, False, True])
    tr = {"flips": flips.reshape(n, 1, 1, 1), "input_shape": x.shape}
    tensors["flip/flips"] = flips.astype(np.int32)
    tensors["flip/output"] = f32(flip.transform_images(x, tr, training=True))
    meta["flip"] = json.dumps({
        "layer": "RandomFlip('horizontal')", "call": "layer.transform_images(input, {'flips': flips[:,None,None,None]}, training=True)",
        "random": "flips = uniform[0,1) <= 0.5, one draw per image, shape [batch,1,1,1]; training=False is the identity"})
    for fill_mode, interpolation, fill_value in TRANSLATE_CASES:
        case = f"{fill_mode}_{interpolation}" + ("" if fill_value == 0 else f"_fill{fill_value}")
        layer = L.RandomTranslation(0.5, 0.5, fill_mode=fill_mode, interpolation=interpolation, fill_value=fill_value)
        # Keras's own sampled form: translations[:, 0] = width fraction * W (dx, pixels),
        # translations[:, 1] = height fraction * H (dy, pixels), float32.
        tl = np.array([[np.float32(wf) * np.float32(ww), np.float32(hf) * np.float32(hh)]
                       for hf, wf in TRANSLATIONS], np.float32)
        out = layer.transform_images(x, {"translations": tl, "input_shape": x.shape}, training=True)
        tensors[f"translate/{case}/translations"] = tl
        tensors[f"translate/{case}/output"] = f32(out)
        meta[f"translate/{case}"] = json.dumps({
            "fill_mode": fill_mode, "interpolation": interpolation, "fill_value": fill_value,
            "fractions_height_width": TRANSLATIONS}, sort_keys=True)
    # Keras's own transformation as sampled by the layer, to confirm the form used above.
    layer = L.RandomTranslation((0.1, 0.2), (-0.4, -0.3), seed=7)
    sampled = np.asarray(layer.get_random_transformation(x, training=True)["translations"])
    assert sampled.shape == (n, 2) and np.all((sampled[:, 0] >= -0.4 * ww) & (sampled[:, 0] <= -0.3 * ww))
    assert np.all((sampled[:, 1] >= 0.1 * hh) & (sampled[:, 1] <= 0.2 * hh))
    meta["translate"] = json.dumps({
        "call": "layer.transform_images(input, {'translations': translations, 'input_shape': shape}, training=True)",
        "translations": "[batch, 2] float32 pixels: column 0 = dx = width_fraction * W, column 1 = dy = height_fraction * H",
        "geometry": "output[b, r, c, ch] = input sampled at (row r - dy, col c - dx): positive dy moves the image "
                    "down, positive dx moves it right (content at column c appears at column c + dx)",
        "bilinear": "taps floor(s) and floor(s)+1 per axis, weights 1-f and f (f = s - floor(s)); each tap index "
                    "is mapped by the fill mode separately (jax.scipy.ndimage.map_coordinates, order 1)",
        "nearest": "index round-half-away-from-zero(s), then the fill mode",
        "fill_modes": "reflect: (d c b a | a b c d | d c b a), i.e. index i -> i mod 2n, then 2n-1-m if m >= n; "
                      "wrap: i mod n; nearest: clip to [0, n-1]; constant: a tap outside [0, n) contributes fill_value",
        "random": "height then width: uniform[lower, upper) of shape [batch, 1] each, times H resp. W; a single "
                  "factor f means [-f, f]; training=False is the identity",
        "defaults": "fill_mode reflect, interpolation bilinear, fill_value 0.0"})
    save_reproducible(tensors, OUT / "augment.safetensors", meta)
    check_augment_fixture()


def fix_index(i, size, mode):
    if mode == "reflect":
        m = np.mod(i, 2 * size)
        return np.where(m >= size, 2 * size - 1 - m, m), np.ones_like(i, bool)
    if mode == "wrap":
        return np.mod(i, size), np.ones_like(i, bool)
    if mode == "nearest":
        return np.clip(i, 0, size - 1), np.ones_like(i, bool)
    return np.clip(i, 0, size - 1), (i >= 0) & (i < size)


def np_translate(img, dx, dy, mode, interpolation, fill_value):
    """float64 transcription of the geometry documented in the fixture's metadata."""
    h, w, _ = img.shape
    rows = np.arange(h)[:, None] - np.float64(dy)
    cols = np.arange(w)[None, :] - np.float64(dx)
    rows, cols = np.broadcast_to(rows, (h, w)), np.broadcast_to(cols, (h, w))
    if interpolation == "nearest":
        taps_r = [(np.where(rows >= 0, np.floor(rows + 0.5), np.ceil(rows - 0.5)).astype(int), 1.0)]
        taps_c = [(np.where(cols >= 0, np.floor(cols + 0.5), np.ceil(cols - 0.5)).astype(int), 1.0)]
    else:
        r0, c0 = np.floor(rows), np.floor(cols)
        taps_r = [(r0.astype(int), 1 - (rows - r0)), (r0.astype(int) + 1, rows - r0)]
        taps_c = [(c0.astype(int), 1 - (cols - c0)), (c0.astype(int) + 1, cols - c0)]
    out = np.zeros(img.shape)
    for ri, rw in taps_r:
        for ci, cw in taps_c:
            (rf, rv), (cf, cv) = fix_index(ri, h, mode), fix_index(ci, w, mode)
            val = np.where((rv & cv)[..., None], img[rf, cf].astype(np.float64), fill_value)
            out += (np.asarray(rw) * np.asarray(cw))[..., None] * val
    return out


def check_augment_fixture():
    t = load_file(str(OUT / "augment.safetensors"))
    x = t["input"]
    want = np.where(t["flip/flips"][:, None, None, None] == 1, x[:, :, ::-1], x)
    assert np.array_equal(t["flip/output"], want)
    print(f"augment: flip = reverse of the width axis where flips == 1: {t['flip/flips'].tolist()}")
    for fill_mode, interpolation, fill_value in TRANSLATE_CASES:
        case = f"{fill_mode}_{interpolation}" + ("" if fill_value == 0 else f"_fill{fill_value}")
        tl, out = t[f"translate/{case}/translations"], t[f"translate/{case}/output"]
        worst = max(float(np.abs(np_translate(x[b], tl[b, 0], tl[b, 1], fill_mode, interpolation, fill_value)
                                 - out[b]).max()) for b in range(len(x)))
        print(f"  translate {case:22s} max |Keras - numpy64| {worst:.1e}")
        assert worst < 1e-5, case
    # The sign convention on a picture: an impulse at (2, 3) moved by dx = +1, dy = +2 lands at (4, 4).
    img = np.zeros((7, 9, 1), np.float32)
    img[2, 3] = 1
    moved = np.asarray(L.RandomTranslation(0.5, 0.5, fill_mode="constant").transform_images(
        img[None], {"translations": np.array([[1.0, 2.0]], np.float32), "input_shape": (1, 7, 9, 1)}))[0, ..., 0]
    assert moved[4, 4] == 1 and moved.sum() == 1


# ---- Dropout ----

def make_dropout_fixture():
    keras.utils.set_random_seed(SEED)
    ones = np.ones((100_000,), np.float32)
    layer = L.Dropout(0.5, seed=SEED)
    out = np.asarray(layer(ones, training=True))
    kept = np.unique(out[out != 0])
    assert len(kept) == 1, kept
    assert np.array_equal(np.asarray(L.Dropout(0.0)(ones, training=True)), ones)
    assert np.array_equal(np.asarray(layer(ones, training=False)), ones)
    stats = {"fraction_zeroed": float((out == 0).mean()), "kept_value": float(kept[0]),
             "mean": float(out.astype(np.float64).mean()), "variance": float(out.astype(np.float64).var())}
    tensors = {f"rate_0_5/{k}": np.array([v], np.float32) for k, v in stats.items()}
    meta = {"framework": FRAMEWORK, "rate": "0.5", "elements": "100000", "input": "ones",
            **{k: repr(v) for k, v in stats.items()},
            "expected": json.dumps({"fraction_zeroed": 0.5, "kept_value": 2.0, "mean": 1.0, "variance": 1.0}),
            "semantics": "training: each element independently kept with probability 1-rate "
                         "(jax.random.bernoulli) and divided by 1-rate, else 0; rate 0 and training=False "
                         "are the identity; noise_shape broadcasts one mask draw"}
    save_reproducible(tensors, OUT / "dropout.safetensors", meta)
    t = load_file(str(OUT / "dropout.safetensors"))
    sd = math.sqrt(0.25 / 100_000)  # binomial standard deviation of the zeroed fraction
    assert abs(t["rate_0_5/fraction_zeroed"][0] - 0.5) < 5 * sd and t["rate_0_5/kept_value"][0] == 2.0
    print(f"dropout: fraction zeroed {stats['fraction_zeroed']:.5f} (0.5 +- {sd:.5f}), kept value "
          f"{stats['kept_value']}, mean {stats['mean']:.5f}, variance {stats['variance']:.5f}")


# ---- Example models (examples/keras/) ----

def mnist_convnet():
    """keras-io examples/vision/mnist_convnet.py, exactly (34,826 parameters)."""
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        L.Conv2D(32, kernel_size=(3, 3), activation="relu"), L.MaxPooling2D(pool_size=(2, 2)),
        L.Conv2D(64, kernel_size=(3, 3), activation="relu"), L.MaxPooling2D(pool_size=(2, 2)),
        L.Flatten(), L.Dropout(0.5), L.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  metrics=["accuracy"])
    return model


def cifar_resnet():
    """A CIFAR-10 course model: augmentation, same-padded 3x3 stacks with BN, one residual block."""
    def conv_bn_relu(h, filters):
        h = L.Conv2D(filters, 3, padding="same")(h)
        h = L.BatchNormalization()(h)
        return L.Activation("relu")(h)

    inputs = keras.Input(shape=(32, 32, 3))
    h = L.RandomFlip("horizontal")(inputs)
    h = L.RandomTranslation(0.1, 0.1)(h)
    h = conv_bn_relu(h, 32)
    h = conv_bn_relu(h, 32)
    h = L.MaxPooling2D(2)(h)
    h = conv_bn_relu(h, 64)
    h = conv_bn_relu(h, 64)
    h = L.MaxPooling2D(2)(h)
    r = conv_bn_relu(h, 64)  # residual block at 64 channels
    r = L.Conv2D(64, 3, padding="same")(r)
    r = L.BatchNormalization()(r)
    h = L.Add()([h, r])
    h = L.ReLU()(h)
    h = conv_bn_relu(h, 128)
    h = L.GlobalAveragePooling2D()(h)
    h = L.Dropout(0.3)(h)
    outputs = L.Dense(10, activation="softmax")(h)
    model = keras.Model(inputs, outputs, name="cifar_resnet")
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  metrics=["accuracy"])
    return model


def cifar_convnet():
    """The benchmark's CIFAR-style model: 3x3 same convs with BN, 32-32-pool-64-64-pool-128-GAP-Dense(10)."""
    model = keras.Sequential([keras.Input(shape=(32, 32, 3))], name="cifar_convnet")
    for filters, pool in ((32, False), (32, True), (64, False), (64, True), (128, False)):
        model.add(L.Conv2D(filters, 3, padding="same"))
        model.add(L.BatchNormalization())
        model.add(L.Activation("relu"))
        if pool:
            model.add(L.MaxPooling2D(2))
    model.add(L.GlobalAveragePooling2D())
    model.add(L.Dense(10, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(learning_rate=0.01),
                  metrics=["accuracy"])
    return model


def summary_text(model, columns):
    """model.summary() exactly as Keras prints it through print_fn in a terminal `columns` wide
    (Keras uses min(88, columns - 4) for Sequential-like tables, min(108, columns - 4) with the
    'Connected to' column; rich lays it out in the same width)."""
    os.environ["COLUMNS"] = str(columns)
    lines = []
    model.summary(print_fn=lambda s, **kw: lines.append(s))
    del os.environ["COLUMNS"]
    return "".join(lines)


def make_models():
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    for name, build in (("mnist_convnet", mnist_convnet), ("cifar_resnet", cifar_resnet),
                        ("cifar_convnet", cifar_convnet)):
        keras.backend.clear_session()
        keras.utils.set_random_seed(SEED)
        model = build()
        path = EXAMPLES / f"{name}.keras"
        model.save(path)
        normalize_keras_file(path)
        (EXAMPLES / f"{name}.json").write_text(model.to_json() + "\n")
        (EXAMPLES / f"{name}.summary.txt").write_text(summary_text(model, 200))
        (EXAMPLES / f"{name}.summary80.txt").write_text(summary_text(model, 80))
        loaded = keras.saving.load_model(path)
        assert loaded.count_params() == model.count_params()
        for a, b in zip(loaded.get_weights(), model.get_weights()):
            assert np.array_equal(a, b)
        print(f"{name}: {model.count_params():,} parameters "
              f"({sum(int(np.prod(v.shape)) for v in model.trainable_variables):,} trainable), {path.stat().st_size:,} bytes")
    assert keras.saving.load_model(EXAMPLES / "mnist_convnet.keras").count_params() == 34_826


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["layers", "augment", "dropout", "models"],
                        help="write one group (default: all; 'layers' includes augment and dropout)")
    parser.add_argument("--check", action="store_true", help="only check the files written before")
    args = parser.parse_args()
    only = args.only
    OUT.mkdir(parents=True, exist_ok=True)
    if args.check:
        for name in CASES:
            check_case(name)
        check_augment_fixture()
        return
    if only in (None, "layers"):
        for name in CASES:
            make_case(name)
        for name in CASES:
            check_case(name)
    if only in (None, "layers", "augment"):
        make_augment_fixture()
    if only in (None, "layers", "dropout"):
        make_dropout_fixture()
    if only in (None, "models"):
        make_models()


if __name__ == "__main__":
    main()
