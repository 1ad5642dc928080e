// Spatial SVD (AIMET's spatial_svd): a Conv kh×kw becomes Conv kh×1 (in → r) then Conv 1×kw
// (r → out). The weight W[out, in, kh, kw] read as the (in·kh) × (out·kw) matrix
// M[(c,i),(o,j)] = W[o,c,i,j] factors as L·R; the first conv's weight is V[k,c,i,0] = L[(c,i),k],
// the second's H[o,k,0,j] = R[k,(o,j)], so Σ_k H·V = W: at full rank (min(in·kh, out·kw)) the
// pair computes the original exactly.
//
// Stride, padding and dilation split by axis: the first conv strides, pads and dilates the height
// only (its output keeps the input's width), the second the width only. Zero padding commutes with
// the first conv (it has no bias, and a zero column maps to a zero column), so padding the width
// after it is the same as padding the input. The bias goes on the second conv.
// Skipped with a reason: 1×1 convs (nothing to split), grouped convs, non-2-D convs, and
// auto_pad SAME_UPPER/SAME_LOWER (their padding depends on the input size).
import { attrInt, attrInts, attrString } from '../graph/attributes.js'
import type { Graph, Model, Node } from '../graph/model.js'
import { resolveModelSource, type ModelSource } from '../onnx/modelSource.js'
import { permuteAxes } from '../permuteAxes.js'
import type { Cost } from './layerCompressor.js'
import { measureLayerShapes, type LayerCostEntry, type LayerShapes } from './layerCost.js'
import { SvdCompressor } from './svdCompressor.js'
import { findNode, floatTensor, floatWeight, intsAttr, planLayers, replaceNode, splitNames, type PlanOrSkip, type SvdPlan } from './svdPlan.js'
import type { SvdSchemeOptions } from './weightSvd.js'

const q = JSON.stringify

function spatialPlan(node: Node, entry: LayerCostEntry, graph: Graph, shapes: LayerShapes): PlanOrSkip {
  if (node.opType !== 'Conv') return undefined
  const group = attrInt(node, 'group', 1)
  if (group !== 1) return { skip: `grouped convolution (group ${group}): spatial SVD would connect channels of different groups` }
  const w = floatWeight(graph, entry.weight)
  if (typeof w === 'string') return { skip: w }
  if (w.dims.length !== 4) return { skip: `spatial SVD needs a 2-D convolution; weight ${q(entry.weight)} has rank ${w.dims.length}` }
  const [out, cin, kh, kw] = w.dims as [number, number, number, number]
  if (kh === 1 && kw === 1) return { skip: '1×1 convolution: no spatial dimensions to split' }
  const autoPad = attrString(node, 'auto_pad') ?? 'NOTSET'
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') return { skip: `auto_pad ${autoPad}: the padding depends on the input size; spatial SVD needs explicit pads` }
  const [sh, sw] = attrInts(node, 'strides') ?? [1, 1]
  const [dh, dw] = attrInts(node, 'dilations') ?? [1, 1]
  const [pt, pl, pb, pr] = autoPad === 'VALID' ? [0, 0, 0, 0] : attrInts(node, 'pads') ?? [0, 0, 0, 0]
  const inDims = shapes.get(node.inputs[0]!)
  if (!inDims || inDims.length !== 4) return { skip: `the input's shape of ${q(node.name)} is not known` }
  const [, , hOut, wOut] = entry.activationDims as [number, number, number, number]
  const wIn = inDims[3]!
  const rows = cin * kh
  const cols = out * kw
  return {
    layer: { node: node.name, opType: 'Conv', cost: entry.cost, full: Math.min(rows, cols) },
    maxRank: Math.min(rows, cols),
    weights: [entry.weight],
    // The first conv runs at the output's height and the input's width; the second at the output's size.
    costAt: (r: number): Cost => ({ memory: r * (cin * kh + out * kw), mac: r * (cin * kh * hOut * wIn + out * kw * hOut * wOut) }),
    matrixShape: { rows, cols },
    // W[o, c, i, j] → M[(c, i), (o, j)]: AIMET's (in·kh) × (out·kw) matrix.
    matrix: () => ({ data: permuteAxes(w.data, [out, cin, kh, kw], [1, 2, 0, 3]), rows, cols }),
    rewrite(g, f, names) {
      const { node: orig, position } = findNode(g, node.name)
      const r = f.rank
      // V[k, c, i] = L[(c,i), k]: the transpose of L.
      const v = permuteAxes(f.left, [rows, r], [1, 0])
      // H[o, k, j] = R[k, (o,j)].
      const h = permuteAxes(f.right, [r, out, kw], [1, 0, 2])
      const { hidden, weights: [wa, wb], nodes: [na, nb] } = splitNames(g, names, orig, entry.weight, ['v', 'h'])
      g.initializers.set(wa, floatTensor(wa, [r, cin, kh, 1], v))
      g.initializers.set(wb, floatTensor(wb, [out, r, 1, kw], h))
      const first: Node = {
        name: na, opType: 'Conv', domain: orig.domain,
        inputs: [orig.inputs[0]!, wa], outputs: [hidden],
        attributes: new Map([
          ['kernel_shape', intsAttr([kh, 1])], ['strides', intsAttr([sh!, 1])],
          ['pads', intsAttr([pt!, 0, pb!, 0])], ['dilations', intsAttr([dh!, 1])],
        ]),
      }
      const second: Node = {
        name: nb, opType: 'Conv', domain: orig.domain,
        inputs: [hidden, wb, ...(orig.inputs[2] ? [orig.inputs[2]] : [])], outputs: [...orig.outputs],
        attributes: new Map([
          ['kernel_shape', intsAttr([1, kw])], ['strides', intsAttr([1, sw!])],
          ['pads', intsAttr([0, pl!, 0, pr!])], ['dilations', intsAttr([1, dw!])],
        ]),
      }
      replaceNode(g, position, first, second)
      return [first.name, second.name]
    },
  } satisfies SvdPlan
}

/** Spatial SVD over a model's 2-D convolutions (see the top of this file). */
export async function createSpatialSvdCompressor(source: ModelSource, opts: SvdSchemeOptions = {}): Promise<SvdCompressor> {
  const model: Model = await resolveModelSource(source)
  const shapes = opts.shapes ?? await measureLayerShapes(model, { sample: opts.sample, signal: opts.signal })
  const { plans, skipped, fixedCost } = planLayers(model, shapes, new Set(opts.ignore ?? []), spatialPlan)
  return new SvdCompressor('spatial_svd', model, plans, skipped, fixedCost, opts)
}
