"""aimet-onnx 2.42's AdaRound on the data quantkit's AdaRound bench uses (dev-time only).

bench/adaround.bench.mjs writes, into one folder: the BN-folded model it quantizes (`model.onnx`,
quantkit's prepareModel; batch norms folded, weight names kept), the calibration images
(`calib.npy`, [n, 3, 48, 192] float32, already normalised) and the evaluation images (`eval.npy`),
and, after its own AdaRound run, the float model with quantkit's AdaRounded weights
(`quantkit-adaround.onnx`). This script then, on the same files:

1. plain W4A8: QuantizationSimModel(param_type=int4, activation_type=int8, min_max, default config
   = per-channel symmetric weights), compute_encodings on the calibration batches, scores;
2. AdaRound: a fresh sim, apply_adaround(sim, batches, num_iterations) (aimet's documented order:
   before compute_encodings), then compute_encodings, scores; wall time of apply_adaround alone;
3. per layer, for aimet's and quantkit's AdaRounded weights alike: codes that differ from
   round-to-nearest on aimet's (frozen) weight grid, and aimet's reconstruction loss
   (‖f(layer(X, W)) − f(Y)‖² over dim 1, mean over the rest; f = the Relu/Clip aimet pairs with the
   layer) on every calibration sample, for nearest weights and for the AdaRounded ones. X is the
   layer's input in the float model whose weights are that method's AdaRounded ones (the inputs
   each method saw while optimising that layer: only earlier layers shape them, and aimet samples
   them with activation quantizers in pass-through, see below), Y the float model's output.

Scores (against FP32 on eval.npy): top-1 agreement of the 2-class output and output SQNR in dB.

aimet-onnx 2.42 facts this relies on (aimet_onnx/adaround/*.py):
- `with utils.disable_quantizers(...) and tempfile.TemporaryDirectory()` enters only the temporary
  directory: activation quantizers are NOT disabled during AdaRound. Before compute_encodings they
  are in OpMode.updateStats (pass-through), so the cached inputs are those of a weights-only sim.
- one cached batch per iteration (iteration % num_batches), 32 random samples of it; Adam(lr=1e-3).

Usage (normally run by `node bench/adaround.bench.mjs`, which passes --dir and reads --out):
  /tmp/aimet-venv/bin/python scripts/peers/aimet_adaround.py --dir /tmp/qk-ada --iterations 500 \
      --batch 32 --threads 2 --out /tmp/qk-ada/aimet.json
Never run by tests or CI.
"""

import argparse
import copy
import json
import os
import platform
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def versions():
    import aimet_onnx
    import torch
    return {
        'aimet_onnx': aimet_onnx.__version__, 'onnxruntime': ort.__version__, 'torch': torch.__version__,
        'onnx': onnx.__version__, 'numpy': np.__version__, 'python': platform.python_version(),
    }


def scores(fp, q):
    agree = float(np.mean(np.argmax(fp, axis=1) == np.argmax(q, axis=1)))
    sqnr = 10 * np.log10(np.sum(fp.astype(np.float64) ** 2) / max(np.sum((fp.astype(np.float64) - q) ** 2), 1e-30))
    return {'top1Agreement': agree, 'sqnrDb': float(sqnr)}


def run_sim(sim, batches, inp):
    outs = [sim.session.run(None, {inp: b})[0] for b in batches]
    return np.concatenate(outs)


def session(model, threads, outputs=None):
    m = copy.deepcopy(model)
    if outputs:
        known = {o.name for o in m.graph.output}
        for name in outputs:
            if name not in known:
                m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), so, providers=['CPUExecutionProvider'])


def with_weights(model, weights):
    m = copy.deepcopy(model)
    for init in m.graph.initializer:
        if init.name in weights:
            init.CopyFrom(numpy_helper.from_array(weights[init.name].astype(np.float32), init.name))
    return m


def layer_out(torch, F, node, inits, x, w):
    """The layer's output with weight w (torch), as aimet's _compute_output_with_adarounded_weights."""
    b = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    bt = torch.from_numpy(b) if b is not None else None
    if node.op_type == 'Conv':
        a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
        p = a.get('pads', [0, 0, 0, 0])
        x = F.pad(x, [p[1], p[3], p[0], p[2]])
        return F.conv2d(x, w, bt, stride=a.get('strides', 1), dilation=a.get('dilations', 1), groups=a.get('group', 1))
    if node.op_type == 'Gemm':
        a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
        return F.linear(x, w if a.get('transB', 0) else w.t(), bt)
    if node.op_type == 'MatMul':
        return torch.matmul(x, w)
    raise ValueError(node.op_type)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dir', required=True)
    ap.add_argument('--iterations', type=int, default=500)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--out', required=True)
    ap.add_argument('--skip-plain', action='store_true')
    args = ap.parse_args()

    import torch
    from torch.nn import functional as F
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    from aimet_onnx.quantsim import QuantizationSimModel
    from aimet_onnx.adaround.adaround_weight import apply_adaround
    from aimet_onnx.meta.utils import get_module_act_func_pair
    from aimet_onnx.common.defs import QuantScheme

    model = onnx.load(os.path.join(args.dir, 'model.onnx'))
    calib = np.load(os.path.join(args.dir, 'calib.npy')).astype(np.float32)
    evals = np.load(os.path.join(args.dir, 'eval.npy')).astype(np.float32)
    batches = [calib[i:i + args.batch] for i in range(0, len(calib), args.batch)]
    inp = model.graph.input[0].name
    feeds = [{inp: b} for b in batches]
    eval_batches = [evals[i:i + args.batch] for i in range(0, len(evals), args.batch)]
    fp_sess = session(model, args.threads)
    fp_out = np.concatenate([fp_sess.run(None, {inp: b})[0] for b in eval_batches])

    def make_sim():
        return QuantizationSimModel(copy.deepcopy(model), param_type='int4', activation_type='int8',
                                    quant_scheme=QuantScheme.min_max,
                                    providers=['CPUExecutionProvider'],
                                    session_options_kwargs={'intra_op_num_threads': args.threads, 'inter_op_num_threads': 1})

    result = {'versions': versions(), 'script': 'scripts/peers/aimet_adaround.py', 'threads': args.threads,
              'iterations': args.iterations, 'calibrationImages': int(len(calib)), 'evalImages': int(len(evals)),
              'batches': len(batches)}
    if not args.skip_plain:
        sim = make_sim()
        sim.compute_encodings(feeds)
        result['plain'] = scores(fp_out, run_sim(sim, eval_batches, inp))
        del sim

    sim = make_sim()
    t0 = time.perf_counter()
    apply_adaround(sim, feeds, num_iterations=args.iterations)
    result['adaroundSeconds'] = time.perf_counter() - t0
    sim.compute_encodings(feeds)
    result['adaround'] = scores(fp_out, run_sim(sim, eval_batches, inp))

    # Per layer: flips and reconstruction losses, for aimet's and quantkit's AdaRounded weights.
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    sim_inits = {i.name: numpy_helper.to_array(i) for i in sim.model.model.graph.initializer}
    acts = get_module_act_func_pair(sim.connected_graph)
    act_fn = {'Relu': torch.relu, 'Clip': lambda t: torch.clamp(t, 0, 6)}
    layers = [n for n in model.graph.node if n.op_type in ('Conv', 'Gemm', 'MatMul') and len(n.input) > 1 and n.input[1] in inits]
    grids = {}
    for n in layers:
        q = sim.qc_quantize_op_dict.get(n.input[1])
        if q is None or not q.enabled or not q.encodings:
            continue
        enc = q.encodings
        delta = np.array([e.delta for e in enc], np.float32)
        offset = np.array([e.offset for e in enc], np.float32)
        w = inits[n.input[1]]
        axis = q.quant_info.channelAxis if q.quant_info.usePerChannelMode else None
        shape = [1] * w.ndim
        if axis is not None and delta.size > 1:
            shape[axis] = delta.size
        grids[n.input[1]] = (delta.reshape(shape), offset.reshape(shape), q.bitwidth)
    # aimet writes the soft-rounded weights ((⌊W/s⌋ + h(α))·s, adaround_weights(..., True)) into
    # the sim; its frozen weight quantizer rounds them at run time. Use them as the sim does.
    def on_grid(name, w):
        delta, offset, bw = grids[name]
        return (np.clip(np.round(w / delta) - offset, 0, 2 ** bw - 1) + offset) * delta
    aimet_w = {name: on_grid(name, sim_inits[name]) for name in grids}
    np.savez(os.path.join(args.dir, 'aimet-weights.npz'), **aimet_w)
    methods = {'aimet': aimet_w}
    qk_path = os.path.join(args.dir, 'quantkit-adaround.onnx')
    if os.path.exists(qk_path):
        qk = onnx.load(qk_path)
        methods['quantkit'] = {i.name: numpy_helper.to_array(i) for i in qk.graph.initializer if i.name in grids}
    ins = sorted({n.input[0] for n in layers} - {inp})
    outs = sorted({n.output[0] for n in layers})
    targets = session(model, args.threads, outs)
    out_names = [o.name for o in targets.get_outputs()]
    ys = {name: [] for name in outs}
    for b in batches:
        for name, v in zip(out_names, targets.run(None, {inp: b})):
            if name in ys:
                ys[name].append(v)
    ys = {k: np.concatenate(v) for k, v in ys.items()}
    per_layer = {}
    for method, weights in methods.items():
        sess = session(with_weights(model, weights), args.threads, ins)
        names = [o.name for o in sess.get_outputs()]
        xs = {name: [] for name in ins}
        for b in batches:
            for name, v in zip(names, sess.run(None, {inp: b})):
                if name in xs:
                    xs[name].append(v)
        xs = {k: np.concatenate(v) for k, v in xs.items() if k != inp}
        xs[inp] = calib
        for n in layers:
            if n.input[1] not in grids or n.input[1] not in weights:
                continue
            delta, offset, bw = grids[n.input[1]]
            w = inits[n.input[1]]
            near = (np.clip(np.round(w / delta) - offset, 0, 2 ** bw - 1) + offset) * delta
            ada = weights[n.input[1]]
            codes_near = np.round(near / delta) - offset
            codes_ada = np.round(ada / delta) - offset
            off_grid = float(np.max(np.abs(ada / delta - np.round(ada / delta))))  # 0 for both after on_grid / quantkit's export
            f = act_fn.get(acts.get(n.name), lambda t: t)
            x = torch.from_numpy(xs[n.input[0]])
            y = f(torch.from_numpy(ys[n.output[0]]))
            with torch.no_grad():
                def loss(wt):
                    d = f(layer_out(torch, F, n, inits, x, torch.from_numpy(wt.astype(np.float32)))) - y
                    return float((torch.norm(d, p='fro', dim=1) ** 2).mean())
                per_layer.setdefault(n.name, {'op': n.op_type, 'weights': int(w.size), 'activation': acts.get(n.name)})[method] = {
                    'flips': int(np.sum(codes_near != codes_ada)), 'lossNearest': loss(near), 'lossAdaround': loss(ada),
                    'maxOffGrid': off_grid,
                }
    result['layers'] = per_layer
    tmp = args.out + '.tmp'
    with open(tmp, 'w') as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != 'layers'}))


if __name__ == '__main__':
    sys.exit(main())
