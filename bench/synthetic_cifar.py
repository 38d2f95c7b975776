#!/usr/bin/env python3
"""Writes a CIFAR-shaped synthetic data set as one .npz, for bench/run's CIFAR-style model.

x_train (N,32,32,3) uint8, y_train (N,) uint8 in 0..9, x_test, y_test likewise: random bytes
from a fixed seed, so dptrain (`--data FILE.npz`) and bench/pytorch_bench.py read the same
tensors. Speed does not depend on what the pixels show, and the file is made on the spot rather
than committed (31 MB at the default size). Standard library only: runs before bench/setup.

usage: bench/synthetic_cifar.py OUT.npz [--train N] [--test N] [--seed S]
"""
import argparse
import os
import random
import zipfile


def npy(shape, payload):
    """An .npy (format 1.0) of uint8 with this shape, C order."""
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (%s), }" % (
        "".join(f"{d}, " for d in shape) if len(shape) == 1 else ", ".join(str(d) for d in shape))
    header = header.ljust(64 * ((10 + len(header) + 1 + 63) // 64) - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + payload


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--train", type=int, default=10_000)
    p.add_argument("--test", type=int, default=1_000)
    p.add_argument("--seed", type=int, default=17)
    a = p.parse_args()
    rng = random.Random(a.seed)
    tmp = a.out + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for split, n in (("train", a.train), ("test", a.test)):
            z.writestr(f"x_{split}.npy", npy((n, 32, 32, 3), rng.randbytes(n * 32 * 32 * 3)))
            z.writestr(f"y_{split}.npy", npy((n,), bytes(rng.randrange(10) for _ in range(n))))
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
