#!/usr/bin/env python3
"""PyTorch at its best on bench/run's three models: steady-state training images/s.

The peer of `dptrain bench`: the same model, data, batch (100) and optimizer, timed over
--steps training steps after --warmup steps, batches drawn from a fixed shuffle as dptrain does.
One process measures every thread count and precision asked for (import, data and oneDNN's
first-call JIT cost seconds, the steps a fraction of that), each network in its own instance.
PyTorch is set up as fast as it goes on a CPU:
  - flush-to-zero (torch.set_flush_denormal(True)): without it denormals cost up to 40 % here;
    dptrain flushes them itself;
  - --memory-format auto (default) builds the model twice, NCHW (contiguous) and NHWC
    (channels_last), warms both up and times them in alternating halves; the faster one is the
    result and both rates are printed;
  - torch.set_num_threads(t) for each t of --threads, one inter-op thread (a training step has
    no parallel ops), OpenMP's defaults otherwise (spinning threads: fastest on idle cores);
  - --precision bf16: torch.autocast("cpu", dtype=torch.bfloat16) around forward and loss,
    FP32 master weights, PyTorch's own mixed precision.
The CPU ISA is limited from outside (bench/run sets ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY,
MKL_ENABLE_INSTRUCTIONS for the AVX2 row); the JSON says what ATen picked.

Models (Keras semantics: Glorot-uniform kernels, zero biases; BN momentum 0.99, epsilon 1e-3):
  reference      Conv(32,5x5)-relu-pool-Conv(64,5x5)-relu-pool-Dense(10)        SGD 0.01, MNIST
  mnist_convnet  keras-io: Conv(32,3x3)-pool-Conv(64,3x3)-pool-Dropout(.5)-Dense  Adam 1e-3, MNIST
  cifar_convnet  3x3 same conv+BN+relu 32-32-pool-64-64-pool-128-GAP-Dense(10)  SGD 0.01, --data .npz

Prints one JSON object (stdout): per (precision, threads) the images/s of the faster memory
format, its images per CPU-second of the process, and both formats' rates; peak_rss_mb of the whole process; settings.
"""
import argparse
import gzip
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_idx(path):
    """A gzipped IDX file (big-endian header) as a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(model, data):
    """Training images as float NCHW in [0, 1] and int64 labels."""
    if model == "cifar_convnet":
        with np.load(data) as z:
            x, y = z["x_train"], z["y_train"]
        x = x.transpose(0, 3, 1, 2)  # NHWC bytes -> NCHW
    else:
        x = read_idx(os.path.join(data, "train-images-idx3-ubyte.gz"))[:, None]
        y = read_idx(os.path.join(data, "train-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) / np.float32(255))
    return x, torch.from_numpy(y.astype(np.int64))


def keras_init(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def build(model):
    """(network, optimizer factory); the network returns logits, softmax lives in the loss."""
    if model == "reference":
        net = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(4 * 4 * 64, 10))
        return keras_init(net), lambda p: torch.optim.SGD(p, lr=0.01)
    if model == "mnist_convnet":
        net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Dropout(0.5), nn.Linear(5 * 5 * 64, 10))
        return keras_init(net), lambda p: torch.optim.Adam(p, lr=0.001, eps=1e-7)
    layers, c = [], 3
    for filters, pool in ((32, False), (32, True), (64, False), (64, True), (128, False)):
        layers += [nn.Conv2d(c, filters, 3, padding=1), nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(2))
        c = filters
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10)]
    return keras_init(nn.Sequential(*layers)), lambda p: torch.optim.SGD(p, lr=0.01)


class Runner:
    """One network in one memory format, stepping through a fixed shuffle of the data."""

    def __init__(self, args, precision, fmt, x, y):
        torch.manual_seed(args.seed)
        self.net, make_opt = build(args.model)
        self.fmt = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        self.net = self.net.to(memory_format=self.fmt).train()
        self.opt = make_opt(self.net.parameters())
        self.x, self.y, self.bs, self.bf16 = x, y, args.batch_size, precision == "bf16"
        self.perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(args.seed))
        self.i = 0

    def steps(self, n):
        for _ in range(n):
            lo = (self.i * self.bs) % (self.x.shape[0] - self.bs + 1)
            idx = self.perm[lo:lo + self.bs]
            self.i += 1
            xb = self.x.index_select(0, idx).contiguous(memory_format=self.fmt)
            yb = self.y.index_select(0, idx)
            self.opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                loss = F.cross_entropy(self.net(xb), yb)
            loss.backward()
            self.opt.step()
        return float(loss.detach())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["reference", "mnist_convnet", "cifar_convnet"], default="reference")
    p.add_argument("--data", help="MNIST IDX directory (default data/mnist) or, for cifar_convnet, the .npz")
    p.add_argument("--threads", default="1,2", help="thread counts, measured in turn in one process")
    p.add_argument("--precision", default="fp32", help="fp32, bf16 or both (fp32,bf16)")
    p.add_argument("--memory-format", choices=["auto", "contiguous", "channels_last"], default="auto")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10, help="steps of each network before measuring")
    p.add_argument("--steps", type=int, default=40, help="measured steps per network and thread count")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    precisions = args.precision.split(",")
    if args.model == "cifar_convnet" and not args.data:
        p.error("--data: cifar_convnet needs the .npz (bench/synthetic_cifar.py writes one)")
    if not set(precisions) <= {"fp32", "bf16"} or min(threads) < 1 or args.steps < 2:
        p.error("--precision: fp32 and/or bf16; --threads >= 1; --steps >= 2")

    torch.set_flush_denormal(True)
    torch.set_num_interop_threads(1)
    torch.set_num_threads(max(threads))
    x, y = load(args.model, args.data or os.path.join(REPO, "data", "mnist"))
    formats = ["contiguous", "channels_last"] if args.memory_format == "auto" else [args.memory_format]
    runners = {(pr, f): Runner(args, pr, f, x, y) for pr in precisions for f in formats}
    for r in runners.values():
        r.steps(args.warmup)
    seconds = {(pr, f, t): 0.0 for pr, f in runners for t in threads}
    cpu = dict.fromkeys(seconds, 0.0)  # process CPU time: what the steps cost when others share the cores
    # Two halves, thread counts in turn (reversed in the second), every network in each, so a
    # burst of load on the shared machine hits all of them; one untimed step after a switch.
    for half, n in enumerate((args.steps // 2, args.steps - args.steps // 2)):
        for t in (threads if half == 0 else threads[::-1]):
            torch.set_num_threads(t)
            next(iter(runners.values())).steps(1)
            for (pr, f), r in runners.items():
                start, cpu_start = time.perf_counter(), time.process_time()
                r.steps(n)
                seconds[(pr, f, t)] += time.perf_counter() - start
                cpu[(pr, f, t)] += time.process_time() - cpu_start
    results = []
    for pr in precisions:
        for t in threads:
            rates = {f: args.steps * args.batch_size / seconds[(pr, f, t)] for f in formats}
            best = max(rates, key=rates.get)
            results.append({"precision": pr, "threads": t, "images_per_second": round(rates[best], 1),
                            "images_per_cpu_second": round(args.steps * args.batch_size / cpu[(pr, best, t)], 1),
                            "memory_format": best, "per_format": {f: round(v, 1) for f, v in rates.items()}})
    print(json.dumps({
        "runner": "pytorch", "torch_version": torch.__version__, "model": args.model,
        "batch_size": args.batch_size, "warmup": args.warmup, "steps": args.steps, "results": results,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_env": {k: v for k, v in os.environ.items()
                    if k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
