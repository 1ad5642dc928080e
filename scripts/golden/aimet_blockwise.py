#!/usr/bin/env python3
"""Blockwise and LPBQ goldens: aimet-onnx 2.42.0's set_blockwise_quantization_for_weights and
set_grouped_blockwise_quantization_for_weights on the two parity models.

Run (venv as in scripts/golden/README.md):
    /tmp/aimet-venv/bin/python scripts/golden/aimet_blockwise.py [out_dir]

Writes under __test__/fixtures/golden/blockwise/ (or out_dir):
  - <model>.<kind>.encodings: AIMET's 1.0.0 export, kind in (blockwise, lpbq), exactly as written.
  - block.<kind>.v200.encodings: the same block sims exported as 2.0.0.
  - <model>.<kind>.aimet-output.npy: AIMET's simulated outputs (sim.session) on the first batch.
  - manifest.json: versions and the calls made.

Models and calibration data are the parity fixtures (../parity): mnist-cnn (BN folded with
fold_all_batch_norms_to_weight) and block.onnx; default config, int8 activations and params,
min_max, one batch of 32. Blockwise: bitwidth 4, symmetric; MNIST Gemm weights in blocks of 32
(fc1 [64, 1568]: 49 blocks, fc2 [10, 64]: 2), Conv weights in blocks of 8 (conv2 [32, 16, 3, 3]: 2
blocks; conv1 and the depthwise conv3 have 1 input channel, which 8 does not divide, so AIMET
leaves them per-channel, strict=False); block MatMul weights in blocks of 16 (op_types MatMul and Gemm: the
connected graph sees a MatMul followed by a bias Add as a Gemm). LPBQ: the same with
bitwidth 4, decompressed_bw 8.
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
import aimet_onnx  # noqa: E402
from aimet_onnx.quantsim import (  # noqa: E402
    QuantizationSimModel,
    set_blockwise_quantization_for_weights,
    set_grouped_blockwise_quantization_for_weights,
)
from aimet_onnx.batch_norm_fold import fold_all_batch_norms_to_weight  # noqa: E402

PINNED_AIMET = "2.42.0"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PARITY = os.path.join(REPO_ROOT, "__test__", "fixtures", "golden", "parity")
DEFAULT_OUT = os.path.join(REPO_ROOT, "__test__", "fixtures", "golden", "blockwise")
BATCH = 32

# model → (path, input, calibration, [(op_types, block_size)])
MODELS = {
    "mnist-cnn": (os.path.join(REPO_ROOT, "__test__", "fixtures", "mnist-cnn.onnx"), "input",
                  "mnist-calib.npy", [(("Gemm",), 32), (("Conv",), 8)]),
    "block": (os.path.join(PARITY, "block.onnx"), "x", "block-calib.npy", [(("MatMul", "Gemm"), 16)]),
}


def make_sim(path, kind, groups):
    model = onnx.load(path)
    fold_all_batch_norms_to_weight(model)
    sim = QuantizationSimModel(model, param_type="int8", activation_type="int8", quant_scheme="min_max",
                               config_file="default", providers=["CPUExecutionProvider"])
    for op_types, block_size in groups:
        if kind == "blockwise":
            set_blockwise_quantization_for_weights(sim, op_types, bitwidth=4, symmetric=True,
                                                   block_size=block_size)
        else:
            set_grouped_blockwise_quantization_for_weights(sim, op_types, bitwidth=4, decompressed_bw=8,
                                                           block_size=block_size)
    return sim


def export(sim, version):
    with tempfile.TemporaryDirectory() as tmp:
        sim.export(tmp, "m", export_model=False, encoding_version=version)
        with open(os.path.join(tmp, "m.encodings")) as f:
            return f.read()


def main():
    from importlib.metadata import version
    v_aimet = version("aimet-onnx")
    if v_aimet != PINNED_AIMET:
        sys.exit(f"aimet-onnx {PINNED_AIMET} required, found {v_aimet}")
    out_dir = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    os.makedirs(out_dir, exist_ok=True)
    manifest = {
        "generator": {
            "script": "scripts/golden/aimet_blockwise.py",
            "aimetOnnx": v_aimet,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
        "quantSim": {"param_type": "int8", "activation_type": "int8", "quant_scheme": "min_max",
                     "config_file": "default", "batchSize": BATCH, "batches": 1},
        "calls": {
            "blockwise": "set_blockwise_quantization_for_weights(sim, op_types, bitwidth=4, symmetric=True, block_size=B)",
            "lpbq": "set_grouped_blockwise_quantization_for_weights(sim, op_types, bitwidth=4, decompressed_bw=8, block_size=B)",
        },
        "models": {k: {"input": v[1], "calibration": f"../parity/{v[2]}",
                       "groups": [{"opTypes": list(o), "blockSize": b} for o, b in v[3]]} for k, v in MODELS.items()},
        "files": [],
    }
    for name, (path, input_name, calib_file, groups) in MODELS.items():
        batch = {input_name: np.load(os.path.join(PARITY, calib_file))[:BATCH]}
        for kind in ("blockwise", "lpbq"):
            sim = make_sim(path, kind, groups)
            sim.compute_encodings([batch])
            base = f"{name}.{kind}"
            with open(os.path.join(out_dir, f"{base}.encodings"), "w") as f:
                f.write(export(sim, "1.0.0"))
            manifest["files"].append(f"{base}.encodings")
            if name == "block":
                with open(os.path.join(out_dir, f"{base}.v200.encodings"), "w") as f:
                    f.write(export(sim, "2.0.0"))
                manifest["files"].append(f"{base}.v200.encodings")
            out = sim.session.run(None, batch)[0].astype(np.float32)
            np.save(os.path.join(out_dir, f"{base}.aimet-output.npy"), out)
            manifest["files"].append(f"{base}.aimet-output.npy")
            del sim
            print(f"{base}: done", flush=True)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"wrote {len(manifest['files'])} files to {out_dir}")


if __name__ == "__main__":
    main()
