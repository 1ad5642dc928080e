#!/usr/bin/env python3
"""SeqMSE goldens: aimet-onnx 2.42.0's apply_seq_mse on the MNIST CNN.

Run (see scripts/golden/README.md for the venv):
    /tmp/aimet-venv/bin/python scripts/golden/aimet_seq_mse.py [out.json]

Model: __test__/fixtures/mnist-cnn.onnx (Conv+BN, Relu, MaxPool, a depthwise Conv, Gemm), BN-folded
with aimet_onnx.batch_norm_fold.fold_all_batch_norms_to_weight (as quantkit's QuantSim.create
prepares it). Data: __test__/fixtures/golden/parity/mnist-calib.npy (64 digits, committed by
aimet_parity.py), as 2 batches of 32.

Cases: weights int4 and int8 (activations int8, min_max, i.e. QuantScheme.post_training_tf, which
SeqMSE requires), configs default (per-channel weights) and per_tensor (default_config.json),
num_candidates 20. For each case and layer the JSON holds:
  - initialMin/initialMax: the weight quantizer's encoding min/max before SeqMSE (what
    _get_min_and_max_for_candidate_selection reads: AIMET's min-max encodings, grid-adjusted),
  - chosen: the candidate index per channel that SeqMSE picked (0 … N-1; fraction (i+1)/N),
  - candidateLoss: the per-channel loss per candidate (Σ over both batches of mse_loss, reduction
    'none', summed over all but the channel axis, as _compute_recon_loss returns it),
  - encodings: the frozen encodings after SeqMSE (scale, offset, min, max per channel).
The losses are recorded by wrapping SequentialMse._compute_recon_loss (apply_seq_mse returns
nothing); nothing in AIMET's algorithm changes.
"""
import json
import logging
import os
import sys
import warnings

import numpy as np
import onnx

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import onnxruntime  # noqa: E402
import torch  # noqa: E402
import aimet_onnx  # noqa: E402
from aimet_onnx import apply_seq_mse  # noqa: E402
from aimet_onnx.quantsim import QuantizationSimModel  # noqa: E402
from aimet_onnx.batch_norm_fold import fold_all_batch_norms_to_weight  # noqa: E402
from aimet_onnx.sequential_mse.seq_mse import SequentialMse  # noqa: E402

PINNED_AIMET = "2.42.0"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "__test__", "fixtures", "golden", "aimet-seq-mse.json")
MODEL = os.path.join(REPO_ROOT, "__test__", "fixtures", "mnist-cnn.onnx")
CALIB = os.path.join(REPO_ROOT, "__test__", "fixtures", "golden", "parity", "mnist-calib.npy")
CONFIG_DIR = os.path.join(os.path.dirname(aimet_onnx.__file__), "common", "quantsim_config")
CONFIGS = {"default": "default", "per_tensor": os.path.join(CONFIG_DIR, "default_config.json")}
PARAM_TYPES = ("int4", "int8")
NUM_CANDIDATES = 20
BATCH = 32
NBATCH = 2


def rounded(a):
    return [float(f"{float(v):.8g}") for v in np.asarray(a, dtype=np.float64).ravel()]


class Recorder:
    """Wraps SequentialMse._compute_recon_loss to keep the per-channel loss of every candidate and
    batch (called in the order candidate → batch → layer); the algorithm itself is untouched."""

    def __init__(self):
        self.losses = {}
        self._recon = SequentialMse._compute_recon_loss
        rec = self

        def recon(this, fp, sim, dep_node):
            loss = rec._recon(this, fp, sim, dep_node)
            rec.losses.setdefault(dep_node.cg_op.name, []).append(loss.detach().cpu().double().numpy())
            return loss

        SequentialMse._compute_recon_loss = recon

    def restore(self):
        SequentialMse._compute_recon_loss = self._recon


def run_case(param_type, config, batches):
    """apply_seq_mse on a fresh sim of the BN-folded model."""
    model = onnx.load(MODEL)
    fold_all_batch_norms_to_weight(model)
    sim = QuantizationSimModel(model, param_type=param_type, activation_type="int8", quant_scheme="min_max",
                               config_file=CONFIGS[config], providers=["CPUExecutionProvider"])
    # The initial (min-max) weight encodings SeqMSE starts from, computed the same way it does.
    sim._compute_param_encodings(overwrite=False)  # pylint: disable=protected-access
    layers = []
    for op in sim.connected_graph.ordered_ops:
        if op.type not in ("Conv", "Gemm", "MatMul"):
            continue
        wname = next((name for name, (_, kind) in op.parameters.items() if kind == "weight"), None)
        q = sim.qc_quantize_op_dict.get(wname)
        if q is None or not q.enabled:
            continue
        encs = q.get_encodings()
        layers.append({"node": op.name, "opType": op.type, "weight": wname,
                       "initialMin": rounded([e.min for e in encs]), "initialMax": rounded([e.max for e in encs])})
    rec = Recorder()
    try:
        apply_seq_mse(sim, batches, num_candidates=NUM_CANDIDATES)
    finally:
        rec.restore()
    for layer in layers:
        q = sim.qc_quantize_op_dict[layer["weight"]]
        encs = q.get_encodings()
        layer["encodings"] = {
            "scale": rounded([e.delta for e in encs]), "offset": [int(e.offset) for e in encs],
            "min": rounded([e.min for e in encs]), "max": rounded([e.max for e in encs]), "bw": int(encs[0].bw),
            "symmetric": bool(q.use_symmetric_encodings),
        }
        calls = rec.losses[layer["node"]]
        assert len(calls) == NUM_CANDIDATES * NBATCH, (layer["node"], len(calls))
        per_cand = [calls[i * NBATCH:(i + 1) * NBATCH] for i in range(NUM_CANDIDATES)]
        layer["candidateLoss"] = [rounded(sum(c)) for c in per_cand]
        # What _run_seq_mse's postprocessing picks: torch.min over the candidate axis of the
        # float32 losses as it accumulated them (one entry per output channel, also for a
        # per-tensor quantizer; see docs/aimet-differences.md).
        stacked = torch.stack([sum(torch.as_tensor(b, dtype=torch.float32) for b in c) for c in per_cand])
        layer["chosen"] = [int(v) for v in stacked.min(0)[1].reshape(-1)]
    return layers


def main():
    if aimet_onnx.__version__ != PINNED_AIMET:
        sys.exit(f"aimet-onnx {PINNED_AIMET} required, found {aimet_onnx.__version__}")
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    calib = np.load(CALIB)
    batches = [{"input": calib[i * BATCH:(i + 1) * BATCH]} for i in range(NBATCH)]
    result = {
        "generator": "scripts/golden/aimet_seq_mse.py",
        "versions": {"aimet_onnx": aimet_onnx.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": sys.version.split()[0]},
        "model": "mnist-cnn.onnx",
        "calibration": "golden/parity/mnist-calib.npy",
        "batches": NBATCH, "batchSize": BATCH, "numCandidates": NUM_CANDIDATES,
        "quantSim": {"activation_type": "int8", "quant_scheme": "min_max",
                     "configs": {k: (v if not os.path.isabs(v) else os.path.basename(v)) for k, v in CONFIGS.items()}},
        "cases": {},
    }
    for pt in PARAM_TYPES:
        for config in CONFIGS:
            result["cases"][f"{pt}.{config}"] = {"paramType": pt, "config": config, "layers": run_case(pt, config, batches)}
            print(f"{pt}.{config}: done", flush=True)
    with open(out, "w") as f:
        # One line per layer: the per-channel loss tables make an indented file needlessly long.
        head = {k: v for k, v in result.items() if k != "cases"}
        f.write(json.dumps(head, indent=1)[:-2] + ',\n "cases": {\n')
        for n, (key, case) in enumerate(result["cases"].items()):
            meta = {k: v for k, v in case.items() if k != "layers"}
            f.write(f'  {json.dumps(key)}: {json.dumps(meta)[:-1]}, "layers": [\n')
            f.write(",\n".join("   " + json.dumps(layer) for layer in case["layers"]))
            f.write("\n  ]}" + ("," if n < len(result["cases"]) - 1 else "") + "\n")
        f.write(" }\n}\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
