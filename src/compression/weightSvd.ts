// Weight SVD: a layer's weight, as a matrix, becomes the product of two thinner ones, and the
// layer becomes two layers.
// - Conv k×k (in → out), weight [out, in·k…] = L [out × r] · R [r × in·k…]: Conv k×k (in → r,
//   the original's strides, pads, dilations, auto_pad) with weight R, then Conv 1×1 (r → out)
//   with weight L and the bias. (AIMET puts the k×k on the second conv; the issue asks for this
//   order, which keeps the original's padding on the first conv and the bias on the second.)
// - Gemm, Y = α·A'·B' + β·C with B' = K×N: A'·(α-Gemm with one factor) then a Gemm with the other
//   factor, β and C. transB is kept by factoring B as stored, so no transpose is ever copied.
// - MatMul X·W with a constant 2-D W = L·R: MatMul(X, L) then MatMul(·, R).
// Grouped convolutions are skipped: their weight is block-diagonal, and one factorisation across
// groups would connect channels the original keeps apart.
import { attrFloat, attrInt } from '../graph/attributes.js'
import { cloneNode, type Graph, type Model, type Node } from '../graph/model.js'
import { resolveModelSource, type ModelSource } from '../onnx/modelSource.js'
import type { Feeds } from '../sim/feeds.js'
import type { Cost, CostMetric } from './layerCompressor.js'
import { measureLayerShapes, type LayerCostEntry, type LayerShapes } from './layerCost.js'
import { SvdCompressor } from './svdCompressor.js'
import { findNode, floatTensor, floatWeight, intsAttr, planLayers, replaceNode, splitNames, type PlanOrSkip, type SvdPlan } from './svdPlan.js'

export interface SvdSchemeOptions {
  /** Ranks are rounded up to a multiple of this (capped at the full rank). Default 1 (AIMET's `multiplicity` default). */
  rankMultiple?: number
  /** The metric a ratio is measured in. Default 'mac'. */
  costMetric?: CostMetric
  /** Node names to leave alone. */
  ignore?: Iterable<string>
  /** Layer shapes already measured (measureLayerShapes); measured here otherwise. */
  shapes?: LayerShapes
  /** Feeds for the one shape-measuring run, when value_info lacks sizes (default zeros). */
  sample?: Feeds
  signal?: AbortSignal
}

const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1)
const linear = (memoryPerRank: number, macPerRank: number) => (r: number): Cost => ({ memory: memoryPerRank * r, mac: macPerRank * r })

function convPlan(node: Node, entry: LayerCostEntry, graph: Graph): PlanOrSkip {
  const group = attrInt(node, 'group', 1)
  if (group !== 1) return { skip: `grouped convolution (group ${group}): weight SVD would connect channels of different groups` }
  const w = floatWeight(graph, entry.weight)
  if (typeof w === 'string') return { skip: w }
  const [out, cin, ...k] = w.dims as [number, number, ...number[]]
  const kprod = product(k)
  const rows = out
  const cols = cin * kprod
  const outSpatial = product(entry.activationDims.slice(2))
  const perRank = cin * kprod + out
  return {
    layer: { node: node.name, opType: 'Conv', cost: entry.cost, full: Math.min(rows, cols) },
    maxRank: Math.min(rows, cols),
    weights: [entry.weight],
    costAt: linear(perRank, perRank * outSpatial),
    matrixShape: { rows, cols },
    matrix: () => ({ data: w.data, rows, cols }),
    rewrite(g, f, names) {
      const { node: orig, position } = findNode(g, node.name)
      const { hidden, weights: [wa, wb], nodes: [na, nb] } = splitNames(g, names, orig, entry.weight, ['a', 'b'])
      g.initializers.set(wa, floatTensor(wa, [f.rank, cin, ...k], f.right))
      g.initializers.set(wb, floatTensor(wb, [out, f.rank, ...k.map(() => 1)], f.left))
      const first = cloneNode(orig)
      first.name = na
      first.inputs = [orig.inputs[0]!, wa]
      first.outputs = [hidden]
      first.attributes.set('kernel_shape', intsAttr(k))
      const second: Node = {
        name: nb, opType: 'Conv', domain: orig.domain,
        inputs: [hidden, wb, ...(orig.inputs[2] ? [orig.inputs[2]] : [])], outputs: [...orig.outputs],
        attributes: new Map([['kernel_shape', intsAttr(k.map(() => 1))]]),
      }
      replaceNode(g, position, first, second)
      return [first.name, second.name]
    },
  } satisfies SvdPlan
}

function gemmPlan(node: Node, entry: LayerCostEntry, graph: Graph): PlanOrSkip {
  const w = floatWeight(graph, entry.weight)
  if (typeof w === 'string') return { skip: w }
  const transB = attrInt(node, 'transB', 0) !== 0
  // The factors of B as stored: rows × cols = B's dims.
  const [rows, cols] = w.dims as [number, number]
  const perRank = rows + cols
  return {
    layer: { node: node.name, opType: 'Gemm', cost: entry.cost, full: Math.min(rows, cols) },
    maxRank: Math.min(rows, cols),
    weights: [entry.weight],
    costAt: linear(perRank, perRank),
    matrixShape: { rows, cols },
    matrix: () => ({ data: w.data, rows, cols }),
    rewrite(g, f, names) {
      const { node: orig, position } = findNode(g, node.name)
      const { hidden, weights: [wa, wb], nodes: [na, nb] } = splitNames(g, names, orig, entry.weight, ['a', 'b'])
      // B = L·R. transB = 0: A'·B = (A'·L)·R. transB = 1: A'·Bᵀ = (A'·Rᵀ)·Lᵀ.
      const [firstW, secondW] = transB
        ? [floatTensor(wa, [f.rank, cols], f.right), floatTensor(wb, [rows, f.rank], f.left)]
        : [floatTensor(wa, [rows, f.rank], f.left), floatTensor(wb, [f.rank, cols], f.right)]
      g.initializers.set(wa, firstW)
      g.initializers.set(wb, secondW)
      const alpha = attrFloat(orig, 'alpha', 1)
      const beta = attrFloat(orig, 'beta', 1)
      const first: Node = {
        name: na, opType: 'Gemm', domain: orig.domain,
        inputs: [orig.inputs[0]!, wa], outputs: [hidden],
        attributes: new Map([
          ['alpha', { type: 'float', value: alpha }],
          ['transA', { type: 'int', value: attrInt(orig, 'transA', 0) }],
          ['transB', { type: 'int', value: transB ? 1 : 0 }],
        ]),
      }
      const second: Node = {
        name: nb, opType: 'Gemm', domain: orig.domain,
        inputs: [hidden, wb, ...(orig.inputs[2] ? [orig.inputs[2]] : [])], outputs: [...orig.outputs],
        attributes: new Map([
          ['beta', { type: 'float', value: beta }],
          ['transB', { type: 'int', value: transB ? 1 : 0 }],
        ]),
      }
      replaceNode(g, position, first, second)
      return [first.name, second.name]
    },
  } satisfies SvdPlan
}

function matMulPlan(node: Node, entry: LayerCostEntry, graph: Graph): PlanOrSkip {
  const w = floatWeight(graph, entry.weight)
  if (typeof w === 'string') return { skip: w }
  const [rows, cols] = w.dims as [number, number]
  const d = entry.activationDims
  const rowsPerSample = d.length >= 3 ? product(d.slice(1, -1)) : 1
  const perRank = rows + cols
  return {
    layer: { node: node.name, opType: 'MatMul', cost: entry.cost, full: Math.min(rows, cols) },
    maxRank: Math.min(rows, cols),
    weights: [entry.weight],
    costAt: linear(perRank, perRank * rowsPerSample),
    matrixShape: { rows, cols },
    matrix: () => ({ data: w.data, rows, cols }),
    rewrite(g, f, names) {
      const { node: orig, position } = findNode(g, node.name)
      const { hidden, weights: [wa, wb], nodes: [na, nb] } = splitNames(g, names, orig, entry.weight, ['a', 'b'])
      g.initializers.set(wa, floatTensor(wa, [rows, f.rank], f.left))
      g.initializers.set(wb, floatTensor(wb, [f.rank, cols], f.right))
      const first: Node = { name: na, opType: 'MatMul', domain: orig.domain, inputs: [orig.inputs[0]!, wa], outputs: [hidden], attributes: new Map() }
      const second: Node = { name: nb, opType: 'MatMul', domain: orig.domain, inputs: [hidden, wb], outputs: [...orig.outputs], attributes: new Map() }
      replaceNode(g, position, first, second)
      return [first.name, second.name]
    },
  } satisfies SvdPlan
}

function weightSvdPlan(node: Node, entry: LayerCostEntry, graph: Graph): PlanOrSkip {
  switch (node.opType) {
    case 'Conv': return convPlan(node, entry, graph)
    case 'Gemm': return gemmPlan(node, entry, graph)
    case 'MatMul': return matMulPlan(node, entry, graph)
    default: return undefined
  }
}

/** Weight SVD over a model's Conv, Gemm and MatMul layers (see the top of this file). */
export async function createWeightSvdCompressor(source: ModelSource, opts: SvdSchemeOptions = {}): Promise<SvdCompressor> {
  const model: Model = await resolveModelSource(source)
  const shapes = opts.shapes ?? await measureLayerShapes(model, { sample: opts.sample, signal: opts.signal })
  const { plans, skipped, fixedCost } = planLayers(model, shapes, new Set(opts.ignore ?? []), weightSvdPlan)
  return new SvdCompressor('weight_svd', model, plans, skipped, fixedCost, opts)
}
