#!/usr/bin/env python3
"""Golden encodings from Qualcomm AIMET (aimet-onnx 2.42.0) for quantkit's tests.

Run (outside the repo venv-wise; see scripts/golden/README.md):
    python3 -m venv /tmp/aimet-venv && /tmp/aimet-venv/bin/pip install aimet-onnx==2.42.0
    /tmp/aimet-venv/bin/python scripts/golden/aimet_encodings.py [out.json]

Every number comes from aimet-onnx's public path: a tiny ONNX model built with onnx.helper,
QuantizationSimModel(...), compute_encodings(batches), export(..., encoding_version='1.0.0')
(scale/offset/bw/is_sym) and export(..., encoding_version='0.6.1') (min/max as AIMET stores them).
The only lower-level call is BlockTensorQuantizer.setPercentileValue (no public API sets the
percentile in aimet-onnx 2.42) and getStatsHistogram (to record the histogram grid AIMET used).
All data are float32 and deterministic (numpy PCG64 with fixed seeds); JSON numbers are the
float64 repr of each float32 value so Node can rebuild the exact Float32Array.
"""
import json
import math
import os
import sys
import tempfile
import warnings
import logging

import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import onnxruntime  # noqa: E402
import torch  # noqa: E402
import aimet_onnx  # noqa: E402
from aimet_onnx.quantsim import QuantizationSimModel  # noqa: E402
from aimet_onnx.common import libpymo  # noqa: E402

PINNED_AIMET = "2.42.0"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "__test__", "fixtures", "golden", "aimet-encodings.json")

QTYPE = {4: "int4", 8: "int8", 16: "int16"}


def f32list(a):
    """float32 array -> list of Python floats (exact float32 values, float64 repr)."""
    return [float(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def num(v):
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    return v


# ----------------------------------------------------------------------------------------------
# Models and configs
# ----------------------------------------------------------------------------------------------

def add_zero_model(names, length):
    """One input per name, each `y_<name> = Add(x_<name>, 0)`: model-input quantizer on x_<name>
    and an output quantizer on y_<name>, both seeing exactly the data."""
    inputs, outputs, nodes, inits = [], [], [], []
    for n in names:
        inputs.append(helper.make_tensor_value_info(f"x_{n}", TensorProto.FLOAT, [1, length]))
        outputs.append(helper.make_tensor_value_info(f"y_{n}", TensorProto.FLOAT, [1, length]))
        inits.append(numpy_helper.from_array(np.zeros([1], np.float32), f"zero_{n}"))
        nodes.append(helper.make_node("Add", [f"x_{n}", f"zero_{n}"], [f"y_{n}"], name=f"add_{n}"))
    g = helper.make_graph(nodes, "add_zero", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def conv_model(weight):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weight.shape[1], 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, weight.shape[0], 4, 4])
    w = numpy_helper.from_array(weight, "conv_w")
    node = helper.make_node("Conv", ["x", "conv_w"], ["y"], name="conv", kernel_shape=list(weight.shape[2:]))
    g = helper.make_graph([node], "conv", [x], [y], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def tf(b):
    return "True" if b else "False"


def config(act_sym=False, param_sym=True, strict=False, unsigned=False, per_channel=False):
    return {
        "defaults": {
            "ops": {"is_output_quantized": "True", "is_symmetric": tf(act_sym)},
            "params": {"is_quantized": "True", "is_symmetric": tf(param_sym)},
            "strict_symmetric": tf(strict),
            "unsigned_symmetric": tf(unsigned),
            "per_channel_quantization": tf(per_channel),
        },
        "params": {"bias": {"is_quantized": "False"}},
        "op_type": {},
        "supergroups": [],
        "model_input": {"is_input_quantized": "True"},
        "model_output": {},
    }


def run_sim(model, cfg, batches, param_type="int8", activation_type="int8", scheme="min_max",
            percentile=None, hist_tensors=()):
    """Build a sim, calibrate on `batches` (list of input dicts), export 1.0.0 and 0.6.1.
    Returns ({tensor: entry100}, {tensor: entry061}, {tensor: histogram info})."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = os.path.join(tmp, "config.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        sim = QuantizationSimModel(model, param_type=param_type, activation_type=activation_type,
                                   quant_scheme=scheme, config_file=cfg_path,
                                   providers=["CPUExecutionProvider"])
        if percentile is not None:
            for q in sim.qc_quantize_op_dict.values():
                # aimet-onnx 2.42 has no public setter; libpymo BlockTensorQuantizer has one.
                q._tensor_quantizer.setPercentileValue(float(percentile))  # pylint: disable=protected-access
        sim.compute_encodings(batches)
        qenc = {}
        for t, q in sim.qc_quantize_op_dict.items():
            encs = q.get_encodings() if q.enabled else None
            if encs:
                qenc[t] = [{"min": e.min, "max": e.max, "delta": e.delta, "offset": e.offset} for e in encs]
        hists = {}
        for t in hist_tensors:
            q = sim.qc_quantize_op_dict[t]
            if scheme in ("tf_enhanced", "percentile"):
                h = q._tensor_quantizer.getStatsHistogram()[0]  # pylint: disable=protected-access
                xl = [e[0] for e in h]
                hists[t] = {"bins": len(h), "firstLeftEdge": num(xl[0]), "binWidth": num(xl[1] - xl[0]),
                            "lastLeftEdge": num(xl[-1]), "totalMass": num(sum(e[1] for e in h))}
        out = {}
        for ver in ("1.0.0", "0.6.1"):
            d = os.path.join(tmp, ver)
            os.makedirs(d)
            sim.export(d, "m", encoding_version=ver)
            with open(os.path.join(d, "m.encodings")) as f:
                out[ver] = json.load(f)
        del sim
    e100 = {}
    for sec in ("activation_encodings", "param_encodings"):
        for e in out["1.0.0"][sec]:
            e100[e["name"]] = e
    e061 = {}
    for sec in ("activation_encodings", "param_encodings"):
        for k, v in out["0.6.1"][sec].items():
            e061[k] = v
    for k, v in qenc.items():
        if k in e100:
            e100[k] = dict(e100[k], _quantizer=v)
    return e100, e061, hists


def expected_from(e100, e061):
    """Merge a 1.0.0 entry (scale, offset, bw, is_sym, enc_type) with 0.6.1 min/max."""
    scale = [num(s) for s in e100["scale"]]
    offset = [int(round(o)) for o in e100["offset"]]
    mins = [num(c["min"]) for c in e061]
    maxs = [num(c["max"]) for c in e061]
    per_tensor = e100["enc_type"] == "PER_TENSOR"
    pick = (lambda l: l[0]) if per_tensor else (lambda l: l)
    return {
        "encType": e100["enc_type"],
        "dtype": e100["dtype"],
        "bitwidth": int(e100["bw"]),
        "isSym": bool(e100["is_sym"]),
        "scale": pick(scale),
        "offset": pick(offset),
        "min": pick(mins),
        "max": pick(maxs),
        # The in-memory libpymo TfEncoding (QcQuantizeOp.get_encodings()): differs from the file's
        # min/max only for strict symmetric (file max = (offset + 2^bw - 1) * scale, one step more).
        "quantizerMin": pick([num(q["min"]) for q in e100["_quantizer"]]),
        "quantizerMax": pick([num(q["max"]) for q in e100["_quantizer"]]),
    }


# ----------------------------------------------------------------------------------------------
# 1. Range cases (min_max)
# ----------------------------------------------------------------------------------------------

RANGE_LEN = 257


def range_datasets():
    rng = np.random.default_rng(1)
    d = {}
    d["sym_m1_1"] = np.linspace(-1, 1, RANGE_LEN, dtype=np.float32)
    d["asym_m0p5_1p5"] = np.linspace(-0.5, 1.5, RANGE_LEN, dtype=np.float32)
    d["pos_0p1_3"] = np.linspace(0.1, 3.0, RANGE_LEN, dtype=np.float32)
    d["neg_m2p5_m0p2"] = np.linspace(-2.5, -0.2, RANGE_LEN, dtype=np.float32)
    d["tiny_1e-9"] = np.full(RANGE_LEN, 1e-9, dtype=np.float32)
    d["zeros"] = np.zeros(RANGE_LEN, dtype=np.float32)
    o = (rng.standard_normal(RANGE_LEN) * 0.1).astype(np.float32)
    o[RANGE_LEN // 2] = 25.0
    d["outlier_25"] = o
    d["nearly_pos_m1e-3_1"] = np.linspace(-1e-3, 1.0, RANGE_LEN, dtype=np.float32)
    d["tiny_range_1_plus_1e-6"] = np.linspace(1.0, 1.0 + 1e-6, RANGE_LEN, dtype=np.float32)
    return d


MODES = [  # name, symmetric, strict, unsigned
    ("asymmetric", False, False, False),
    ("symmetric", True, False, False),
    ("strict_symmetric", True, True, False),
    ("unsigned_symmetric", True, False, True),
]


def range_cases():
    data = range_datasets()
    names = list(data)
    model = add_zero_model(names, RANGE_LEN)
    batch = {f"x_{n}": data[n].reshape(1, -1) for n in names}
    cases = []
    for bw in (4, 8, 16):
        for mode, sym, strict, unsigned in MODES:
            cfg = config(act_sym=sym, strict=strict, unsigned=unsigned)
            e100, e061, _ = run_sim(model, cfg, [batch], activation_type=QTYPE[bw], scheme="min_max")
            for n in names:
                exp = expected_from(e100[f"x_{n}"], e061[f"x_{n}"])
                exp_out = expected_from(e100[f"y_{n}"], e061[f"y_{n}"])
                assert exp == exp_out, (n, exp, exp_out)  # input and Add-output quantizers agree
                cases.append({
                    "name": f"{n}/{mode}/{bw}bit",
                    "dataset": n,
                    "scheme": "min_max",
                    "bitwidth": bw,
                    "symmetric": sym,
                    "strictSymmetric": strict,
                    "unsignedSymmetric": unsigned,
                    "observedMin": num(data[n].min()),
                    "observedMax": num(data[n].max()),
                    "data": f32list(data[n]),
                    "expected": exp,
                })
    return cases


# ----------------------------------------------------------------------------------------------
# 2. Param cases (Conv weight [4,3,3,3])
# ----------------------------------------------------------------------------------------------

def conv_weight():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    w[0] *= 0.05                       # small channel
    w[1] = np.abs(w[1]) * 0.3 + 0.01   # all-positive channel
    w[2] *= 0.5
    w[2, 1, 1, 1] = 4.0                # channel with an outlier
    w[3] = -np.abs(w[3]) * 0.2         # all-negative channel
    return w.astype(np.float32)


def param_cases():
    w = conv_weight()
    model = conv_model(w)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    cases = []
    variants = [  # bw, sym, strict, per_channel, scheme
        (8, True, False, False, "min_max"), (8, True, False, True, "min_max"),
        (4, True, False, False, "min_max"), (4, True, False, True, "min_max"),
        (8, False, False, False, "min_max"), (8, False, False, True, "min_max"),
        (4, False, False, True, "min_max"),
        (8, True, True, True, "min_max"), (4, True, True, True, "min_max"),
        (16, True, False, True, "min_max"),
        (8, True, False, False, "tf_enhanced"), (8, True, False, True, "tf_enhanced"),
        (4, True, False, True, "tf_enhanced"), (8, False, False, True, "tf_enhanced"),
    ]
    for bw, sym, strict, pc, scheme in variants:
        cfg = config(act_sym=False, param_sym=sym, strict=strict, per_channel=pc)
        e100, e061, _ = run_sim(model, cfg, [{"x": x}], param_type=QTYPE[bw], scheme=scheme)
        exp = expected_from(e100["conv_w"], e061["conv_w"])
        cases.append({
            "name": f"conv_w/{'per_channel' if pc else 'per_tensor'}/{'strict_symmetric' if strict else ('symmetric' if sym else 'asymmetric')}/int{bw}/{scheme}",
            "scheme": scheme,
            "bitwidth": bw,
            "symmetric": sym,
            "strictSymmetric": strict,
            "unsignedSymmetric": False,
            "perChannel": pc,
            "axis": 0,
            "shape": list(w.shape),
            "weight": f32list(w),
            "expected": exp,
        })
    return cases


# ----------------------------------------------------------------------------------------------
# 3. Scheme cases (activations, several batches)
# ----------------------------------------------------------------------------------------------

BATCH = 512
NBATCH = 4


def scheme_datasets():
    """Each dataset: NBATCH batches of BATCH float32 values; later batches exceed the first."""
    growth = [1.0, 1.5, 2.0, 4.0]  # the last batch exceeds 3x the first batch's range
    d = {}
    rng = np.random.default_rng(4)
    d["uniform"] = [rng.uniform(-1.0, 2.0, BATCH) * g for g in growth]
    rng = np.random.default_rng(5)
    d["gaussian"] = [rng.standard_normal(BATCH) * g for g in growth]
    rng = np.random.default_rng(6)
    bs = []
    for i, g in enumerate(growth):
        b = rng.standard_normal(BATCH) * 0.5 * g
        b[7] = 12.0 + 3 * i
        b[100] = -9.0 - 2 * i
        b[300] = 20.0 * g
        bs.append(b)
    d["gaussian_outliers"] = bs
    rng = np.random.default_rng(7)
    d["laplace"] = [rng.laplace(0.2, 0.6, BATCH) * g for g in growth]
    rng = np.random.default_rng(8)
    d["relu_like"] = [np.maximum(rng.standard_normal(BATCH) * g + 0.3, 0.0) for g in growth]
    # steady: same spread every batch (histogram range covers everything)
    rng = np.random.default_rng(9)
    d["gaussian_steady"] = [rng.standard_normal(BATCH) * 0.7 + 0.1 for _ in growth]
    return {k: [np.asarray(b, dtype=np.float32) for b in v] for k, v in d.items()}


def scheme_cases():
    data = scheme_datasets()
    names = list(data)
    model = add_zero_model(names, BATCH)
    batches = [{f"x_{n}": data[n][i].reshape(1, -1) for n in names} for i in range(NBATCH)]
    schemes = [("min_max", None), ("tf_enhanced", None), ("percentile", None), ("percentile", 99.9),
               ("percentile", 99.0)]
    modes = [("asymmetric", False, False, False), ("symmetric", True, False, False)]
    cases = []
    for scheme, pct in schemes:
        for bw in (8, 16):
            for mode, sym, strict, unsigned in modes + [("strict_symmetric", True, True, False),
                                                         ("unsigned_symmetric", True, False, True)]:
                if mode in ("strict_symmetric", "unsigned_symmetric") and bw != 8:
                    continue
                cfg = config(act_sym=sym, strict=strict, unsigned=unsigned)
                e100, e061, hists = run_sim(model, cfg, batches, activation_type=QTYPE[bw], scheme=scheme,
                                            percentile=pct, hist_tensors=[f"x_{n}" for n in names])
                for n in names:
                    exp = expected_from(e100[f"x_{n}"], e061[f"x_{n}"])
                    c = {
                        "name": f"{n}/{scheme}{'' if pct is None else pct}/{mode}/{bw}bit",
                        "dataset": n,
                        "scheme": scheme,
                        "percentile": 100.0 if (scheme == "percentile" and pct is None) else pct,
                        "bitwidth": bw,
                        "symmetric": sym,
                        "strictSymmetric": strict,
                        "unsignedSymmetric": unsigned,
                        "expected": exp,
                    }
                    if f"x_{n}" in hists:
                        c["aimetHistogram"] = hists[f"x_{n}"]
                    cases.append(c)
    datasets = {n: {"batches": [f32list(b) for b in data[n]],
                    "batchMin": [num(b.min()) for b in data[n]],
                    "batchMax": [num(b.max()) for b in data[n]]} for n in names}
    return datasets, cases


def main():
    from importlib.metadata import version
    v_aimet = version("aimet-onnx")
    if v_aimet != PINNED_AIMET:
        sys.exit(f"aimet-onnx {PINNED_AIMET} required, found {v_aimet}")
    out_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    rc = range_cases()
    pc = param_cases()
    sd, sc = scheme_cases()
    doc = {
        "generator": {
            "script": "scripts/golden/aimet_encodings.py",
            "aimetOnnx": v_aimet,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
            "encodingVersions": ["1.0.0", "0.6.1"],
            "notes": "scale/offset/bw/isSym from export(encoding_version='1.0.0'); min/max from the same "
                     "sim exported as 0.6.1. Data arrays are float32 values written as float64 numbers. "
                     "offset is AIMET's (x = (q + offset) * scale), i.e. ONNX zero_point = -offset. "
                     "See __test__/fixtures/golden/README.md.",
        },
        "rangeCases": rc,
        "paramCases": pc,
        "schemeDatasets": sd,
        "schemeCases": sc,
    }
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out_path}: {len(rc)} range, {len(pc)} param, {len(sc)} scheme cases, "
          f"{os.path.getsize(out_path)} bytes")


if __name__ == "__main__":
    main()
