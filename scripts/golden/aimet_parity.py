#!/usr/bin/env python3
"""Parity goldens: aimet-onnx 2.42.0's QuantizationSimModel on two small committed models.

Run (see scripts/golden/README.md for the venv):
    /tmp/aimet-venv/bin/python scripts/golden/aimet_parity.py [out_dir]

Writes under __test__/fixtures/golden/parity/ (or out_dir):
  - mnist-cnn: __test__/fixtures/mnist-cnn.onnx itself (not copied; Conv+BN, depthwise Conv, Gemm),
    calibration inputs mnist-calib.npy (the first 64 digits of examples/mnist/calibration.npy).
  - block.onnx: a tiny transformer block exported from torch at opset 17 (LayerNormalization,
    MatMul/Add projections, MatMul of two activations, Softmax, Relu MLP, residual Adds);
    calibration inputs block-calib.npy (fixed seed).
  - <model>.<scheme>.<config>.encodings: AIMET's 1.0.0 export for scheme in (min_max, tf_enhanced)
    and config in (default, per_tensor, htp_v68, htp_v73), exactly as aimet-onnx wrote it.
  - <model>.min_max.default.v061.encodings and .v200.encodings: the same sim exported as 0.6.1 and
    2.0.0 (format checks of quantkit's writers).
  - <model>.min_max.default.aimet-output.npy: AIMET's simulated outputs (sim.session) on the first
    calibration batch, for the loadEncodings test.
  - manifest.json: versions, what was folded, inputs, batches, file list.

BN folding: aimet-onnx quantizes what it is given, so every model is first folded with
aimet_onnx.batch_norm_fold.fold_all_batch_norms_to_weight (quantkit's QuantSim.create prepares by
default, which folds the same way and keeps the Conv's weight name).
"""
import json
import logging
import os
import sys
import tempfile
import warnings

import numpy as np
import onnx

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import onnxruntime  # noqa: E402
import torch  # noqa: E402
import aimet_onnx  # noqa: E402
from aimet_onnx.quantsim import QuantizationSimModel  # noqa: E402
from aimet_onnx.batch_norm_fold import fold_all_batch_norms_to_weight  # noqa: E402

PINNED_AIMET = "2.42.0"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "__test__", "fixtures", "golden", "parity")
CONFIG_DIR = os.path.join(os.path.dirname(aimet_onnx.__file__), "common", "quantsim_config")

SCHEMES = ("min_max", "tf_enhanced")
# quantkit's names → what aimet-onnx's config_file gets (an alias, or the per-tensor file).
CONFIGS = {
    "default": "default",
    "per_tensor": os.path.join(CONFIG_DIR, "default_config.json"),
    "htp_v68": "htp_v68",
    "htp_v73": "htp_v73",
}
BATCH = 32
NBATCH = 2


# ----------------------------------------------------------------------------------------------
# Models and data
# ----------------------------------------------------------------------------------------------

class Block(torch.nn.Module):
    """Pre-norm transformer block: LN → Q,K,V → softmax(QKᵀ/√d) V → out proj → +x → LN → MLP → +."""

    def __init__(self, d=32, hidden=64):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(d)
        self.q = torch.nn.Linear(d, d)
        self.k = torch.nn.Linear(d, d)
        self.v = torch.nn.Linear(d, d)
        self.o = torch.nn.Linear(d, d)
        self.ln2 = torch.nn.LayerNorm(d)
        self.fc1 = torch.nn.Linear(d, hidden)
        self.fc2 = torch.nn.Linear(hidden, d)
        self.scale = 1.0 / d ** 0.5

    def forward(self, x):
        h = self.ln1(x)
        att = torch.softmax(torch.matmul(self.q(h), self.k(h).transpose(1, 2)) * self.scale, dim=-1)
        x = x + self.o(torch.matmul(att, self.v(h)))
        return x + self.fc2(torch.relu(self.fc1(self.ln2(x))))


def block_model(path):
    torch.manual_seed(0)
    m = Block().eval()
    with torch.no_grad():  # non-trivial LayerNorm affine params (they are quantized params)
        for ln in (m.ln1, m.ln2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.2, 0.2)
    x = torch.randn(1, 16, 32)
    torch.onnx.export(m, (x,), path, opset_version=17, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    return model


def block_calib():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((NBATCH * BATCH, 16, 32)).astype(np.float32)
    x[:, :, 3] *= 4.0  # one loud feature, as in real activations
    return x


def mnist_calib():
    return np.load(os.path.join(REPO_ROOT, "examples", "mnist", "calibration.npy"))[: NBATCH * BATCH].copy()


# ----------------------------------------------------------------------------------------------
# AIMET runs
# ----------------------------------------------------------------------------------------------

def make_sim(model, scheme, config):
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    bns = {n.name for n in folded.graph.node if n.op_type == "BatchNormalization"}
    conv_bns, bn_convs = fold_all_batch_norms_to_weight(folded)
    left = {n.name for n in folded.graph.node if n.op_type == "BatchNormalization"}
    sim = QuantizationSimModel(folded, param_type="int8", activation_type="int8", quant_scheme=scheme,
                               config_file=CONFIGS[config], providers=["CPUExecutionProvider"])
    folds = {"convs": [c.name for c, _ in conv_bns + bn_convs], "batchNormsRemoved": sorted(bns - left),
             "batchNormsLeft": sorted(left)}
    return sim, folds


def export(sim, version):
    with tempfile.TemporaryDirectory() as tmp:
        sim.export(tmp, "m", export_model=False, encoding_version=version)
        with open(os.path.join(tmp, "m.encodings")) as f:
            return f.read()


def run_model(name, model, calib, input_name, out_dir, manifest):
    batches = [{input_name: calib[i * BATCH:(i + 1) * BATCH]} for i in range(NBATCH)]
    for scheme in SCHEMES:
        for config in CONFIGS:
            sim, folds = make_sim(model, scheme, config)
            sim.compute_encodings(batches)
            base = f"{name}.{scheme}.{config}"
            with open(os.path.join(out_dir, f"{base}.encodings"), "w") as f:
                f.write(export(sim, "1.0.0"))
            manifest["files"].append(f"{base}.encodings")
            manifest["models"][name]["folded"] = folds
            if scheme == "min_max" and config == "default":
                for ver, tag in (("0.6.1", "v061"), ("2.0.0", "v200")):
                    with open(os.path.join(out_dir, f"{base}.{tag}.encodings"), "w") as f:
                        f.write(export(sim, ver))
                    manifest["files"].append(f"{base}.{tag}.encodings")
                out = sim.session.run(None, batches[0])[0].astype(np.float32)
                np.save(os.path.join(out_dir, f"{base}.aimet-output.npy"), out)
                manifest["files"].append(f"{base}.aimet-output.npy")
            del sim
            print(f"{base}: done", flush=True)


def main():
    from importlib.metadata import version
    v_aimet = version("aimet-onnx")
    if v_aimet != PINNED_AIMET:
        sys.exit(f"aimet-onnx {PINNED_AIMET} required, found {v_aimet}")
    out_dir = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    os.makedirs(out_dir, exist_ok=True)
    manifest = {
        "generator": {
            "script": "scripts/golden/aimet_parity.py",
            "aimetOnnx": v_aimet,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
        "bnFolding": "aimet_onnx.batch_norm_fold.fold_all_batch_norms_to_weight before QuantizationSimModel",
        "quantSim": {"param_type": "int8", "activation_type": "int8", "providers": ["CPUExecutionProvider"],
                     "configs": {k: (v if not os.path.isabs(v) else os.path.basename(v)) for k, v in CONFIGS.items()},
                     "batches": NBATCH, "batchSize": BATCH},
        "models": {
            "mnist-cnn": {"model": "../../mnist-cnn.onnx", "input": "input", "calibration": "mnist-calib.npy"},
            "block": {"model": "block.onnx", "input": "x", "calibration": "block-calib.npy"},
        },
        "files": ["block.onnx", "mnist-calib.npy", "block-calib.npy"],
    }
    block = block_model(os.path.join(out_dir, "block.onnx"))
    bc = block_calib()
    np.save(os.path.join(out_dir, "block-calib.npy"), bc)
    mc = mnist_calib()
    np.save(os.path.join(out_dir, "mnist-calib.npy"), mc)
    mnist = onnx.load(os.path.join(REPO_ROOT, "__test__", "fixtures", "mnist-cnn.onnx"))
    run_model("mnist-cnn", mnist, mc, "input", out_dir, manifest)
    run_model("block", block, bc, "x", out_dir, manifest)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"wrote {len(manifest['files'])} files to {out_dir}")


if __name__ == "__main__":
    main()
