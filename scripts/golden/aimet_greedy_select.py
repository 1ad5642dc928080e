"""Golden cases for quantkit's greedy ratio selection (src/compression/greedySelection.ts), from
aimet-onnx 2.42's own GreedyCompRatioSelectAlgo (aimet_onnx/common/comp_ratio_select.py).

Run: /tmp/aimet-venv/bin/python scripts/golden/aimet_greedy_select.py
Writes __test__/fixtures/golden/aimet-greedy-select.json.

AIMET's algorithm is fed synthetic score tables through its `saved_eval_scores_dict` path (a
pickled eval-scores dict, so no model or pruner is involved), with a linear cost model
(layer i costs cost_i, and cost_i * ratio when compressed at `ratio`), rank rounding off
(multiplicity 1: CompRatioRounder returns the ratio unchanged) and no monotonic fit, AIMET's
defaults. Per case it records AIMET's chosen ratio per layer (None = not compressed) and the
model's cost ratio with them.
"""
import json
import os
import pickle
import random
import tempfile
from decimal import Decimal

from aimet_onnx.common import comp_ratio_select as crs
from aimet_onnx.common.cost_calculator import Cost
from aimet_onnx.common.defs import CostMetric

OUT = os.path.join(os.path.dirname(__file__), '..', '..', '__test__', 'fixtures', 'golden', 'aimet-greedy-select.json')


class Layer:
    def __init__(self, name, cost):
        self.name = name
        self.cost = cost


class LayerDb:
    def __init__(self, layers):
        self.layers = layers

    def __iter__(self):
        return iter(self.layers)

    def get_selected_layers(self):
        return self.layers

    def find_layer_by_name(self, name):
        return next(l for l in self.layers if l.name == name)


class LinearCost:
    @staticmethod
    def compute_model_cost(layer_db):
        total = sum(l.cost for l in layer_db)
        return Cost(total, total)

    @staticmethod
    def calculate_compressed_cost(_layer_db, layer_ratio_list, _metric):
        total = 0.0
        for pair in layer_ratio_list:
            total += pair.layer.cost * (float(pair.comp_ratio) if pair.comp_ratio is not None else 1.0)
        return Cost(total, total)


class NoRounding:
    @staticmethod
    def round(_layer, comp_ratio, _metric):
        return comp_ratio


def case(seed, n_layers, n_candidates, target, monotonic):
    rnd = random.Random(seed)
    candidates = [(Decimal(1) / Decimal(n_candidates)) * i for i in range(1, n_candidates)]
    layers = [Layer(f'layer{i}', float(rnd.randint(10, 1000))) for i in range(n_layers)]
    table = {}
    for l in layers:
        if monotonic:
            # Rises with the ratio: a random sensitivity and a little noise-free curvature.
            s = rnd.uniform(0.5, 8.0)
            top = rnd.uniform(0.9, 1.0)
            scores = [top * (1 - pow(1 - float(c), s)) for c in candidates]
        else:
            scores = [rnd.uniform(0.0, 1.0) for _ in candidates]
        table[l.name] = {c: sc for c, sc in zip(candidates, scores)}
    with tempfile.NamedTemporaryFile(suffix='.pkl', delete=False) as f:
        pickle.dump(table, f)
        path = f.name
    try:
        algo = crs.GreedyCompRatioSelectAlgo(
            LayerDb(layers), pruner=None, cost_calculator=LinearCost(), eval_func=None, eval_iterations=None,
            cost_metric=CostMetric.mac, target_comp_ratio=Decimal(str(target)), num_candidates=n_candidates,
            use_monotonic_fit=False, saved_eval_scores_dict=path, comp_ratio_rounding_algo=NoRounding(),
            use_cuda=False, bokeh_session=None)
        pairs, _stats = algo.select_per_layer_comp_ratios()
    finally:
        os.unlink(path)
    chosen = {p.layer.name: (float(p.comp_ratio) if p.comp_ratio is not None else None) for p in pairs}
    total = sum(l.cost for l in layers)
    achieved = sum(l.cost * (chosen[l.name] if chosen[l.name] is not None else 1.0) for l in layers) / total
    return {
        'seed': seed, 'target': target, 'candidates': n_candidates, 'monotonic': monotonic,
        'layers': [{'node': l.name, 'cost': l.cost, 'curve': [{'ratio': float(c), 'score': table[l.name][c]} for c in candidates]} for l in layers],
        'aimet': {'ratios': chosen, 'achievedRatio': achieved},
    }


def main():
    import aimet_onnx
    cases = []
    seed = 1
    for monotonic in (True, False):
        for n_layers in (2, 5, 12):
            for target in (0.3, 0.5, 0.75):
                cases.append(case(seed, n_layers, 10, target, monotonic))
                seed += 1
    cases.append(case(seed, 6, 5, 0.6, True))
    doc = {'generator': 'scripts/golden/aimet_greedy_select.py', 'aimetOnnx': aimet_onnx.__version__ if hasattr(aimet_onnx, '__version__') else '2.42', 'cases': cases}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(doc, f, indent=1)
    print(f'wrote {len(cases)} cases to {OUT}')


if __name__ == '__main__':
    main()
