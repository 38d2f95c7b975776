"""Writes the data sets the format tests read, the way their users make them (NumPy, Pillow).

    make_data_sets.py OUT MNIST_DIR

OUT/mnist.npz          the embedded MNIST's arrays, np.savez (stored entries)
OUT/mnist-other.npz    the same images: np.savez_compressed, big-endian int64 train labels,
                       Fortran-order test images, one-hot float32 test labels
OUT/folders/           train/ and test/ with one folder of PNG (and some JPEG) images per class
OUT/pngs/              single PNG files to predict, one per class, named by class
OUT/cifar/             CIFAR-10 binary batches (data_batch_1.bin, test_batch.bin, batches.meta.txt)
OUT/cifar100/          CIFAR-100 binary (train.bin, test.bin, fine_label_names.txt)
OUT/npy/               x_train.npy… as float32 images and uint16 N×1 labels
OUT/bad/               one broken input per case, named by the case
"""
import gzip, io, os, sys, zipfile
import numpy as np
from PIL import Image

out, mnist = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)

def idx(name):
    b = gzip.open(os.path.join(mnist, name + ".gz")).read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)

xt, yt = idx("train-images-idx3-ubyte"), idx("train-labels-idx1-ubyte")
xs, ys = idx("t10k-images-idx3-ubyte"), idx("t10k-labels-idx1-ubyte")
np.savez(os.path.join(out, "mnist.npz"), x_train=xt, y_train=yt, x_test=xs, y_test=ys)
np.savez_compressed(os.path.join(out, "mnist-other.npz"), x_train=xt, y_train=yt.astype(">i8"),
                    x_test=np.asfortranarray(xs), y_test=np.eye(10, dtype=np.float32)[ys])

# Three colour classes, named so that alphanumeric order differs from creation order.
rng = np.random.default_rng(7)
colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
def image(colour, size=16):
    base = np.array(colours[colour], np.float64)
    return np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)

for split, count in (("train", 40), ("test", 10)):
    for colour in colours:
        d = os.path.join(out, "folders", split, colour)
        os.makedirs(d, exist_ok=True)
        for i in range(count):
            pixels = image(colour)
            if i % 5 == 4:
                Image.fromarray(pixels).save(os.path.join(d, f"{i:03d}.jpg"), quality=95)
            else:
                Image.fromarray(pixels).save(os.path.join(d, f"{i:03d}.png"))
os.makedirs(os.path.join(out, "pngs"), exist_ok=True)
for colour in colours:
    Image.fromarray(image(colour, 24)).save(os.path.join(out, "pngs", colour + ".png"))
# An exact-pixel reference for the PNG decoder, grayscale and RGB.
ref = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
Image.fromarray(ref).save(os.path.join(out, "reference.png"))
ref.tofile(os.path.join(out, "reference.rgb"))

# CIFAR-10 format: records of a label byte and R, G, B planes; labels cycle through the classes
# and each class has its own mean colour, so it is learnable.
def cifar(path, n):
    labels = np.arange(n) % 10
    planes = np.zeros((n, 3, 32, 32), np.uint8)
    for c in range(3):
        planes[:, c] = ((labels * (c + 3) * 37) % 256)[:, None, None]
    planes = np.clip(planes + rng.integers(0, 20, planes.shape), 0, 255).astype(np.uint8)
    records = np.concatenate([labels[:, None].astype(np.uint8), planes.reshape(n, -1)], axis=1)
    records.tofile(path)
os.makedirs(os.path.join(out, "cifar"), exist_ok=True)
cifar(os.path.join(out, "cifar", "data_batch_1.bin"), 300)
cifar(os.path.join(out, "cifar", "test_batch.bin"), 50)
with open(os.path.join(out, "cifar", "batches.meta.txt"), "w") as f:
    f.write("\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]) + "\n\n")

# CIFAR-100 format: a coarse and a fine label byte per record; names of the fine classes.
os.makedirs(os.path.join(out, "cifar100"), exist_ok=True)
for name, n in (("train.bin", 200), ("test.bin", 40)):
    fine = np.arange(n) % 100
    records = np.concatenate([(fine // 5)[:, None], fine[:, None], rng.integers(0, 256, (n, 3072))], axis=1).astype(np.uint8)
    records.tofile(os.path.join(out, "cifar100", name))
with open(os.path.join(out, "cifar100", "fine_label_names.txt"), "w") as f:
    f.write("\n".join(f"class{i:02d}" for i in range(100)) + "\n")

# Broken inputs, small: each a directory or file named by its case.
bad = os.path.join(out, "bad")
os.makedirs(bad, exist_ok=True)
x = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
y = np.arange(20) % 10
def npz(name, **arrays):
    full = dict(x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])
    full.update(arrays)
    np.savez(os.path.join(bad, name), **full)
    return os.path.join(bad, name)
good = npz("good.npz")
# The same arrays as four .npy files, float32 images and uint16 N×1 labels.
os.makedirs(os.path.join(out, "npy"), exist_ok=True)
for k, v in (("x_train", x.astype(np.float32) / 255), ("y_train", y.astype(np.uint16)[:, None]), ("x_test", x[:8].astype(np.float32) / 255), ("y_test", y[:8])):
    np.save(os.path.join(out, "npy", k + ".npy"), v)
raw = open(good, "rb").read()
open(os.path.join(bad, "truncated.npz"), "wb").write(raw[: len(raw) // 2])
# A byte of x_train's data flipped: the zip's CRC-32 catches it.
at = raw.index(x.tobytes()[:16]) + 5
open(os.path.join(bad, "crc.npz"), "wb").write(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:])
npz("counts.npz", y_train=y[:19])
npz("complex.npz", x_train=x.astype(np.complex64))
stray = y.copy(); stray[3] = 11
npz("stray-label.npz", y_train=stray)
# A header that lies: claims 30 images where 20 are stored.
buf = io.BytesIO(); np.save(buf, x); lie = buf.getvalue().replace(b"(20, 28, 28)", b"(30, 28, 28)")
with zipfile.ZipFile(os.path.join(bad, "shape-lie.npz"), "w") as z:
    z.writestr("x_train.npy", lie)
    for k, v in (("y_train", y), ("x_test", x[:8]), ("y_test", y[:8])):
        b = io.BytesIO(); np.save(b, v); z.writestr(k + ".npy", b.getvalue())
with zipfile.ZipFile(os.path.join(bad, "magic.npz"), "w") as z:
    z.writestr("x_train.npy", b"not numpy at all")
    for k, v in (("y_train", y), ("x_test", x[:8]), ("y_test", y[:8])):
        b = io.BytesIO(); np.save(b, v); z.writestr(k + ".npy", b.getvalue())
for case in ("empty-class", "undecodable", "sizes"):
    for colour in ("a", "b"):
        for split in ("train", "test"):
            d = os.path.join(bad, case, split, colour)
            os.makedirs(d, exist_ok=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(os.path.join(d, f"{i}.png"))
for f in os.listdir(os.path.join(bad, "empty-class", "train", "b")):
    os.remove(os.path.join(bad, "empty-class", "train", "b", f))
open(os.path.join(bad, "undecodable", "train", "a", "1.png"), "wb").write(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
Image.fromarray(rng.integers(0, 256, (9, 8), dtype=np.uint8)).save(os.path.join(bad, "sizes", "test", "b", "2.png"))
os.makedirs(os.path.join(bad, "cifar-length"), exist_ok=True)
open(os.path.join(bad, "cifar-length", "data_batch_1.bin"), "wb").write(bytes(3073 * 3 + 100))
open(os.path.join(bad, "cifar-length", "test_batch.bin"), "wb").write(bytes(3073))
