#!/usr/bin/env python3
"""CLE goldens: aimet-onnx 2.42.0's equalize_model on the MNIST CNN and PP-OCR mobile v2 cls.

Run (see scripts/golden/README.md for the venv):
    /tmp/aimet-venv/bin/python scripts/golden/aimet_cle.py [out.json]

Writes __test__/fixtures/golden/aimet-cle.json (or out.json): for each model, every CLS set AIMET
scaled (layer node names, the scale factors it returned, whether a ReLU-like activation sat between
the layers) and the biases of those layers after the high-bias fold.

This repeats aimet_onnx.cross_layer_equalization.equalize_model step by step (BN fold,
replace_relu6_with_relu, CrossLayerScaling.scale_model, HighBiasFold.bias_fold) because
equalize_model returns nothing and the scale factors are only visible in scale_model's result.
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

import aimet_onnx  # noqa: E402
from onnxruntime.quantization.onnx_quantizer import ONNXModel  # noqa: E402
from aimet_onnx.batch_norm_fold import fold_all_batch_norms_to_weight  # noqa: E402
from aimet_onnx.cross_layer_equalization import CrossLayerScaling, HighBiasFold, _get_weight_bias  # noqa: E402
from aimet_onnx.utils import replace_relu6_with_relu  # noqa: E402
from aimet_onnx.common.onnx._utils import to_array  # noqa: E402

PINNED_AIMET = "2.42.0"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "__test__", "fixtures", "golden", "aimet-cle.json")
OCR_ASSETS = os.path.join(REPO_ROOT, "node_modules", "@gutenye", "ocr-models", "assets")
MODELS = {
    "mnist-cnn": os.path.join(REPO_ROOT, "__test__", "fixtures", "mnist-cnn.onnx"),
    "ppocr-cls": os.path.join(OCR_ASSETS, "ch_ppocr_mobile_v2.0_cls_infer.onnx"),
}


def rounded(a):
    # 8 significant digits: float32 has ~7, so nothing AIMET computed is lost.
    return [float(f"{float(v):.8g}") for v in np.asarray(a).ravel()]


def equalize(path):
    model = ONNXModel(onnx.load(path))
    conv_bn_pairs, bn_conv_pairs = fold_all_batch_norms_to_weight(model)
    replace_relu6_with_relu(model)
    bn_dict = {conv.name: bn for conv, bn in conv_bn_pairs + bn_conv_pairs}
    infos = CrossLayerScaling(model).scale_model()
    HighBiasFold(model).bias_fold(infos, bn_dict)
    sets = []
    layers = {}
    for info in infos:
        pairs = info.cls_pair_info_list
        names = [pairs[0].layer1.name] + [p.layer2.name for p in pairs]
        sets.append({
            "layers": names,
            "scaleFactors": [rounded(p.scale_factor) for p in pairs],
            "relu": [bool(p.relu_activation_between_layers) for p in pairs],
        })
        for p in pairs:
            for op in (p.layer1, p.layer2):
                _, bias = _get_weight_bias(model.model, op)
                if bias is not None:
                    layers[op.name] = rounded(to_array(bias))
    return {
        # Layers a BN was folded into (BN after the layer; aimet-onnx's BNLayer carries no name).
        "foldedInto": [conv.name for conv, _ in conv_bn_pairs],
        "sets": sets,
        "biasesAfterHighBiasFold": layers,
    }


def main():
    if aimet_onnx.__version__ != PINNED_AIMET:
        sys.exit(f"aimet-onnx {PINNED_AIMET} required, found {aimet_onnx.__version__}")
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    result = {
        "generator": "scripts/golden/aimet_cle.py",
        "versions": {"aimet_onnx": aimet_onnx.__version__, "onnx": onnx.__version__, "numpy": np.__version__},
        "models": {name: equalize(path) for name, path in MODELS.items()},
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {out}: " + ", ".join(f"{k}: {len(v['sets'])} sets" for k, v in result["models"].items()))


if __name__ == "__main__":
    main()
