"""Predicts MNIST classes with plain NumPy from a dptrain checkpoint or model file.

An independent reader and forward pass (safetensors.numpy + NumPy only), so the test that runs
it checks both that the files are standard safetensors and that the weights mean what their
Keras names and shapes say: HWIO kernels, 'valid' convolutions, 2x2 max-pooling, Flatten in
H, W, C order, dense [in, out].

usage: numpy_forward.py MODEL.safetensors IMAGES-idx3-ubyte.gz  -> one class per line
"""
import gzip
import sys

import numpy as np
from safetensors.numpy import load_file


def read_images(path):
    with gzip.open(path) as f:
        data = f.read()
    count, rows, cols = np.frombuffer(data, dtype=">u4", count=3, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols, 1).astype(np.float32) / 255


def conv_relu(x, kernel, bias):
    kh, kw = kernel.shape[:2]
    n, h, w, _ = x.shape
    out = np.zeros((n, h - kh + 1, w - kw + 1, kernel.shape[3]), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            out += np.tensordot(x[:, i:i + out.shape[1], j:j + out.shape[2], :], kernel[i, j], axes=([3], [0]))
    return np.maximum(out + bias, 0)


def max_pool(x, p=2):
    n, h, w, c = x.shape
    return x[:, :h // p * p, :w // p * p, :].reshape(n, h // p, p, w // p, p, c).max(axis=(2, 4))


def main():
    weights = load_file(sys.argv[1])
    x = read_images(sys.argv[2])
    for name in ("conv2d", "conv2d_1"):
        x = max_pool(conv_relu(x, weights[name + "/kernel"], weights[name + "/bias"]))
    logits = x.reshape(x.shape[0], -1) @ weights["dense/kernel"] + weights["dense/bias"]
    print("\n".join(str(c) for c in logits.argmax(axis=1)))


if __name__ == "__main__":
    main()
