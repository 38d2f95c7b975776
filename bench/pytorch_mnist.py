#!/usr/bin/env python3
"""PyTorch reference for the DPTrain side-by-side benchmark.

Model (classic Keras MNIST CNN, 62,346 parameters):
    Conv2D(32, 5x5, relu, valid) -> MaxPool 2x2 -> Conv2D(64, 5x5, relu, valid)
    -> MaxPool 2x2 -> Flatten -> Dense(10, softmax)
Loss: categorical cross-entropy (softmax folded into F.cross_entropy on the
logits, mean over the batch as in Keras). Optimizer: plain SGD, lr 0.01, no
momentum. Batch 100, reshuffled every epoch. Weights use Keras' defaults
(Glorot-uniform kernels, zero biases) so accuracy is comparable.

Data: the gzipped IDX files in data/mnist, decoded with gzip + numpy and held
as in-memory tensors (no DataLoader, no worker processes), so an epoch's time
is compute (plus the per-batch gather), like the Swift trainer.

Output (stdout, one JSON object per line):
    {"event": "epoch", "epoch": 1, "seconds": ..., "images_per_second": ..., ...}
    ...
    {"event": "summary", "steady_images_per_second": ..., "test_accuracy": ...,
     "peak_rss_mb": ..., ...}
steady_images_per_second is the mean of the per-epoch images/s over epochs
2..E when E > 1 (epoch 1 carries warm-up), else epoch 1's.
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
    """Reads a gzipped IDX file (big-endian header) into a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: bad IDX magic {raw[:4]!r}")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != 0x08:
        raise ValueError(f"{path}: expected unsigned byte data, got type 0x{dtype_code:02x}")
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    data = np.frombuffer(raw, dtype=np.uint8, count=count, offset=offset)
    if len(raw) != offset + count:
        raise ValueError(f"{path}: size {len(raw)} != header {offset + count}")
    return data.reshape(tuple(int(d) for d in dims))


def load_split(data_dir, prefix):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{prefix}: {images.shape[0]} images vs {labels.shape[0]} labels")
    x = images.astype(np.float32)  # one float copy; scaled in place to keep peak RSS low
    x /= np.float32(255.0)
    x = torch.from_numpy(x.reshape(images.shape[0], 1, images.shape[1], images.shape[2]))
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


class KerasMnistCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=5)   # 28 -> 24, pool -> 12
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5)  # 12 -> 8,  pool -> 4
        self.fc = nn.Linear(4 * 4 * 64, 10)
        for m in (self.conv1, self.conv2, self.fc):
            nn.init.xavier_uniform_(m.weight)  # Keras glorot_uniform
            nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        # Keras flattens NHWC; the order is irrelevant for training speed/accuracy.
        return self.fc(torch.flatten(x, 1))  # logits; softmax lives in the loss


def evaluate(model, x, y, batch):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            pred = model(x[i:i + batch]).argmax(dim=1)
            correct += int((pred == y[i:i + batch]).sum())
    model.train()
    return correct / x.shape[0]


def peak_rss_mb():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def emit(obj):
    print(json.dumps(obj), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--max-steps", type=int, default=0,
                   help="cap on optimizer steps per epoch (0 = full epoch); for quick runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=os.path.join(REPO, "data", "mnist"))
    args = p.parse_args(argv)
    if args.epochs < 1 or args.threads < 1 or args.batch_size < 1:
        p.error("--epochs, --threads and --batch-size must be >= 1")

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass  # already set (only possible once per process)
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "t10k")
    load_seconds = time.perf_counter() - t0

    model = KerasMnistCNN()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 62346, n_params
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.0)

    n = x_train.shape[0]
    bs = args.batch_size
    steps_per_epoch = n // bs + (1 if n % bs else 0)
    if args.max_steps > 0:
        steps_per_epoch = min(steps_per_epoch, args.max_steps)

    epoch_ips = []
    model.train()
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(n)
        loss_sum = torch.zeros(())
        images = 0
        start = time.perf_counter()
        for step in range(steps_per_epoch):
            idx = perm[step * bs:(step + 1) * bs]
            xb = x_train.index_select(0, idx)
            yb = y_train.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * idx.numel()
            images += idx.numel()
        seconds = time.perf_counter() - start
        ips = images / seconds
        epoch_ips.append(ips)
        emit({
            "event": "epoch", "runner": "pytorch", "epoch": epoch,
            "seconds": round(seconds, 4), "images": images, "steps": steps_per_epoch,
            "images_per_second": round(ips, 2),
            "train_loss": round(float(loss_sum) / images, 6),
            "threads": args.threads,
        })

    steady = epoch_ips[1:] if len(epoch_ips) > 1 else epoch_ips
    acc = evaluate(model, x_test, y_test, bs)  # training batch size keeps peak RSS honest
    emit({
        "event": "summary", "runner": "pytorch",
        "torch_version": torch.__version__, "threads": args.threads,
        "epochs": args.epochs, "batch_size": bs, "lr": args.lr,
        "max_steps": args.max_steps, "params": n_params,
        "steady_images_per_second": round(sum(steady) / len(steady), 2),
        "steady_epochs": list(range(2, args.epochs + 1)) if args.epochs > 1 else [1],
        "test_accuracy": round(acc, 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "data_load_seconds": round(load_seconds, 3),
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
