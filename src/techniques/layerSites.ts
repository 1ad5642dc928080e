// The layers SeqMSE and bias correction work on: Conv, Gemm and MatMul nodes with a constant
// float weight, with what the Rust layer kernels (src/layers.ts) need to run them alone, and the
// shape of their output seen as [outer, channels, inner] with `channels` the output channels.
// ConvTranspose sites come back only when asked (`{ convTranspose: true }`, AdaRound does): SeqMSE
// and bias correction do not handle them, and their helpers below take Conv/Gemm/MatMul sites only.
import { attrFloat, attrInt, attrInts, attrString } from '../graph/attributes.js'
import { topologicalOrder } from '../graph/topologicalOrder.js'
import type { Model, Node } from '../graph/model.js'
import type { Tensor } from '../onnx/tensor.js'
import { layers, type AutoPad, type ConvAttributes, type Float32Tensor } from '../layers.js'

export type LayerKind = 'Conv' | 'Gemm' | 'MatMul'

export interface LayerSite<K extends string = LayerKind> {
  node: Node
  kind: K
  /** The activation the layer reads. */
  input: string
  weight: Tensor
  /** Conv's B or Gemm's C (1-D, one value per output channel), when present. */
  bias?: Tensor
  /** The weight axis that holds the output channels (Conv 0, Gemm 0 or 1 by transB, MatMul 1, ConvTranspose 1 — per group). */
  channelAxis: number
}

const FLOAT = 1

type Found<K extends string> = { sites: LayerSite<K>[]; skipped: { node: string; reason: string }[] }

/** Layers of `model` in topological order; `names` (node names) restricts them. */
export function findLayerSites(model: Model, names?: readonly string[]): Found<LayerKind>
export function findLayerSites(model: Model, names: readonly string[] | undefined, opts: { convTranspose: true }): Found<LayerKind | 'ConvTranspose'>
export function findLayerSites(model: Model, names?: readonly string[], opts: { convTranspose?: boolean } = {}): Found<LayerKind | 'ConvTranspose'> {
  const inits = model.graph.initializers
  const want = names ? new Set(names) : undefined
  const sites: LayerSite<LayerKind | 'ConvTranspose'>[] = []
  const skipped: { node: string; reason: string }[] = []
  for (const node of topologicalOrder(model.graph)) {
    if (want && !want.has(node.name)) continue
    const transpose = opts.convTranspose === true && node.opType === 'ConvTranspose'
    if (node.opType !== 'Conv' && node.opType !== 'Gemm' && node.opType !== 'MatMul' && !transpose) {
      if (want) skipped.push({ node: node.name, reason: `${node.opType} is not a Conv, ${opts.convTranspose ? 'ConvTranspose, ' : ''}Gemm or MatMul` })
      continue
    }
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue
    const kind = node.opType as LayerKind | 'ConvTranspose'
    const weight = inits.get(node.inputs[1] ?? '')
    const skip = (reason: string) => skipped.push({ node: node.name, reason })
    if (!weight || weight.dataType !== FLOAT) { skip('weight is not a float32 initializer'); continue }
    if (inits.has(node.inputs[0]!)) { skip('input is a constant'); continue }
    let channelAxis = 0
    if (kind === 'Conv') {
      if (weight.dims.length < 3) { skip(`Conv weight rank ${weight.dims.length} < 3`); continue }
    } else if (kind === 'ConvTranspose') {
      if (weight.dims.length < 3) { skip(`ConvTranspose weight rank ${weight.dims.length} < 3`); continue }
      channelAxis = 1
    } else if (kind === 'Gemm') {
      if (attrInt(node, 'transA', 0) !== 0) { skip('Gemm with transA = 1'); continue }
      channelAxis = attrInt(node, 'transB', 0) !== 0 ? 0 : 1
    } else {
      if (weight.dims.length !== 2) { skip(`MatMul weight rank ${weight.dims.length} ≠ 2`); continue }
      channelAxis = 1
    }
    // ConvTranspose's weight [C, M/group, k…] holds the output channels of one group on axis 1.
    const m = weight.dims[channelAxis]! * (kind === 'ConvTranspose' ? attrInt(node, 'group', 1) : 1)
    const b = node.inputs[2] ? inits.get(node.inputs[2]) : undefined
    if (node.inputs[2] && (!b || b.dataType !== FLOAT || b.data.length !== m || (kind === 'Gemm' && b.dims.length !== 1))) {
      skip('bias is not a float32 initializer with one value per output channel'); continue
    }
    sites.push({ node, kind, input: node.inputs[0]!, weight, bias: b, channelAxis })
  }
  return { sites, skipped }
}

export function convAttributes(node: Node): ConvAttributes {
  return {
    strides: attrInts(node, 'strides'),
    pads: attrInts(node, 'pads'),
    dilations: attrInts(node, 'dilations'),
    group: attrInt(node, 'group'),
    autoPad: attrString(node, 'auto_pad') as AutoPad | undefined,
  }
}

/**
 * The layer on `x` with weight values `w` (the site's weight shape); no bias, no alpha/beta:
 * the output difference between two weights, which is what SeqMSE measures.
 */
export async function layerForward(site: LayerSite, x: Float32Tensor, w: Float32Array, signal?: AbortSignal): Promise<Float32Tensor> {
  const wt = { data: w, dims: site.weight.dims }
  if (site.kind === 'Conv') return layers.convAsync(x, wt, undefined, convAttributes(site.node), { signal })
  if (site.kind === 'Gemm') {
    const y = await layers.gemmAsync(x, wt, undefined, { transB: attrInt(site.node, 'transB', 0) !== 0 }, { signal })
    const alpha = attrFloat(site.node, 'alpha', 1)
    if (alpha !== 1) for (let i = 0; i < y.data.length; i++) y.data[i]! *= alpha
    return y
  }
  return layers.matmulAsync(x, wt, { signal })
}

/** The output seen as [outer, channels, inner]: Conv [N, M, spatial…], Gemm/MatMul [rows…, N]. */
export function outputGeometry(site: LayerSite, dims: readonly number[]): { outer: number; channels: number; inner: number } {
  const prod = (a: readonly number[]) => a.reduce((p, d) => p * d, 1)
  if (site.kind === 'Conv') return { outer: dims[0]!, channels: dims[1]!, inner: prod(dims.slice(2)) }
  return { outer: prod(dims.slice(0, -1)), channels: dims[dims.length - 1]!, inner: 1 }
}

/** The axes of the layer's output to average over for per-channel statistics (all but the channel axis). */
export function nonChannelAxes(site: LayerSite, rank: number): number[] {
  const c = site.kind === 'Conv' ? 1 : rank - 1
  return Array.from({ length: rank }, (_, i) => i).filter((i) => i !== c)
}
