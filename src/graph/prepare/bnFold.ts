// BatchNormalization folding, as AIMET's fold_all_batch_norms_to_weight does it (aimet-onnx 2.42
// batch_norm_fold.py), for inference-mode BNs whose parameters are initializers.
//
// With s = γ / √(var + ε) and t = β − s·mean per channel:
// - BN after a layer (Conv, ConvTranspose, Gemm, MatMul with a constant 2-D weight):
//   W' = s·W per output channel, b' = s·b + t. ConvTranspose's output channel is axis 1 of its
//   weight, group by group (layerParams.ts). MatMul becomes a Gemm (as AIMET does) when its input
//   is known to be 2-D, the only case where BN's channel axis 1 is MatMul's output axis.
// - BN before a Conv (forward fold): W' = W·s per input channel, b' = b + Σ W·t. Exact only when
//   the Conv pads nothing (padding would see t where the original saw zeros), so only then.
//   AIMET also refuses grouped Convs here; quantkit folds them (the algebra holds per group).
// Names as AIMET keeps them: the layer keeps its weight (and bias) initializer names with new
// values; a layer without bias gets `<node name>.bias`; readers of the BN output read the layer's
// output, and when the BN output is a graph output the layer's output takes that name instead.
// The layer's output must feed only the BN, and its weight and bias must be its own (a shared
// weight is left alone with a note rather than duplicated, to keep one name per parameter).
import { attrFloat, attrInt, attrInts, attrString } from '../attributes.js'
import { removeNode } from '../graphEdits.js'
import { graphIndex, type GraphIndex } from '../graphIndex.js'
import { opsetVersion, type Graph, type Node } from '../model.js'
import { uniqueName } from '../names.js'
import { isFloat32, layerBias, ownedParameter, weightLayout, writeLayerParams } from './layerParams.js'
import type { PassContext, PreparePass } from './pass.js'

const q = JSON.stringify
const isDefault = (n: Node) => n.domain === '' || n.domain === 'ai.onnx'

interface BnParams {
  gamma: Float32Array
  beta: Float32Array
  mean: Float32Array
  variance: Float32Array
  epsilon: number
  /** s and t above, in float64. */
  scale: Float64Array
  shift: Float64Array
}

/** The BN's parameters if it is an inference-mode BN over constants, else a reason. */
function bnParams(ctx: PassContext, index: GraphIndex, bn: Node): BnParams | string {
  const graph = ctx.model.graph
  if (attrInt(bn, 'training_mode', 0) !== 0) return 'training_mode = 1'
  if ((opsetVersion(ctx.model) ?? 9) < 9 && attrInt(bn, 'spatial', 1) !== 1) return 'spatial = 0 (per-element statistics)'
  for (const o of bn.outputs.slice(1)) {
    if (o !== '' && (index.consumers(o).length > 0 || index.isGraphOutput(o))) return `its training output ${q(o)} is used`
  }
  const ts = bn.inputs.slice(1, 5).map((name) => (index.isGraphInput(name) ? undefined : graph.initializers.get(name)))
  if (ts.length !== 4 || !ts.every(isFloat32)) return 'scale, B, mean and var are not all float32 initializers'
  const [gamma, beta, mean, variance] = ts.map((t) => t!.data as Float32Array) as [Float32Array, Float32Array, Float32Array, Float32Array]
  const c = gamma.length
  if (beta.length !== c || mean.length !== c || variance.length !== c) return 'scale, B, mean and var differ in length'
  const epsilon = attrFloat(bn, 'epsilon', 1e-5)
  const scale = new Float64Array(c)
  const shift = new Float64Array(c)
  for (let i = 0; i < c; i++) {
    scale[i] = gamma[i]! / Math.sqrt(variance[i]! + epsilon)
    shift[i] = beta[i]! - scale[i]! * mean[i]!
  }
  return { gamma, beta, mean, variance, epsilon, scale, shift }
}

/** The rank of a value when value_info or a graph input says it. */
function knownRank(graph: Graph, name: string): number | undefined {
  return (graph.valueInfo.find((v) => v.name === name) ?? graph.inputs.find((v) => v.name === name))?.shape?.length
}

/** Why MatMul(X, W) cannot become Gemm(X, W, b) as AIMET's _matmul_to_gemm does, or undefined. */
function matmulBlocker(graph: Graph, node: Node): string | undefined {
  const w = graph.initializers.get(node.inputs[1] ?? '')
  if (!w || w.dims.length !== 2) return 'MatMul weight is not a 2-D initializer'
  if (knownRank(graph, node.inputs[0]!) !== 2) return 'MatMul input is not known to be 2-D (BN normalizes axis 1, MatMul writes the last axis)'
  return undefined
}

function foldAfter(ctx: PassContext, layer: Node, bn: Node, p: BnParams): string | undefined {
  const graph = ctx.model.graph
  const index = graphIndex(graph)
  const out = layer.outputs[0]!
  if (index.consumers(out).length !== 1 || index.isGraphOutput(out)) return `${q(out)} has other readers than the BN`
  const wName = layer.inputs[1] ?? ''
  const w = ownedParameter(graph, index, layer, wName)
  if (typeof w === 'string') return `weight ${w}`
  const isMatMul = layer.opType === 'MatMul'
  if (isMatMul) {
    const why = matmulBlocker(graph, layer)
    if (why) return why
  }
  const layout = weightLayout(isMatMul ? { ...layer, opType: 'Gemm' } : layer, w)
  if (typeof layout === 'string') return layout
  if (layout.outChannels !== p.scale.length) return `${layout.outChannels} output channels but the BN has ${p.scale.length}`
  const bias = layerBias(graph, index, layer, layout.outChannels)
  if (typeof bias === 'string') return bias
  const weight = new Float32Array(w.data.length)
  for (let i = 0; i < weight.length; i++) weight[i] = w.data[i]! * p.scale[layout.channelOf(i)]!
  for (let o = 0; o < bias.values.length; o++) bias.values[o] = bias.values[o]! * p.scale[o]! + p.shift[o]!
  if (isMatMul) {
    layer.opType = 'Gemm'
    if (layer.name.includes('MatMul')) layer.name = layer.name.replace('MatMul', 'Gemm')
    bias.name = uniqueName(graph, `${layer.name || 'Gemm'}.bias`)
  }
  writeLayerParams(graph, layer, wName, weight, w.dims, bias)
  removeNode(graph, bn)
  ctx.release(...bn.inputs.slice(1))
  recordFold(ctx, bn, layer, 'after', wName, bias.name, p)
  return undefined
}

function foldBefore(ctx: PassContext, bn: Node, conv: Node, p: BnParams): string | undefined {
  const graph = ctx.model.graph
  const index = graphIndex(graph)
  const y = bn.outputs[0]!
  const uses = index.consumers(y)
  if (uses.length !== 1 || uses[0]!.inputIndex !== 0 || index.isGraphOutput(y)) return `${q(y)} has other readers than the Conv`
  const pads = attrInts(conv, 'pads') ?? []
  const autoPad = attrString(conv, 'auto_pad') ?? 'NOTSET'
  if (pads.some((x) => x !== 0) || (autoPad !== 'NOTSET' && autoPad !== 'VALID')) return 'the Conv pads its input (folding a BN before it is exact only without padding)'
  const wName = conv.inputs[1] ?? ''
  const w = ownedParameter(graph, index, conv, wName)
  if (typeof w === 'string') return `weight ${w}`
  const group = attrInt(conv, 'group', 1)
  const [m, cg] = [w.dims[0]!, w.dims[1]!]
  if (w.dims.length < 3 || m % group !== 0) return `weight dims ${q(w.dims)} do not fit group ${group}`
  if (cg * group !== p.scale.length) return `${cg * group} input channels but the BN has ${p.scale.length}`
  const bias = layerBias(graph, index, conv, m)
  if (typeof bias === 'string') return bias
  const k = w.data.length / (m * cg)
  const perGroupOut = m / group
  const weight = new Float32Array(w.data.length)
  for (let o = 0; o < m; o++) {
    const g = Math.floor(o / perGroupOut)
    let extra = 0
    for (let i = 0; i < cg; i++) {
      const c = g * cg + i
      const base = (o * cg + i) * k
      for (let j = 0; j < k; j++) {
        const v = w.data[base + j]!
        weight[base + j] = v * p.scale[c]!
        extra += v * p.shift[c]!
      }
    }
    bias.values[o] = bias.values[o]! + extra
  }
  writeLayerParams(graph, conv, wName, weight, w.dims, bias)
  removeNode(graph, bn)
  ctx.release(...bn.inputs.slice(1))
  recordFold(ctx, bn, conv, 'before', wName, bias.name, p)
  return undefined
}

function recordFold(ctx: PassContext, bn: Node, layer: Node, position: 'after' | 'before', weight: string, bias: string, p: BnParams): void {
  ctx.report.foldedBatchNorms.push({
    bn: bn.name,
    into: layer.name,
    position,
    weight,
    bias,
    gamma: p.gamma,
    beta: p.beta,
    mean: p.mean,
    variance: p.variance,
    epsilon: p.epsilon,
  })
}

const AFTER_LAYERS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])

export const foldBatchNorms: PreparePass = {
  name: 'foldBatchNorms',
  run(ctx: PassContext): number {
    const graph = ctx.model.graph
    let folded = 0
    const refused = new Map<Node, string>()
    // AIMET folds every BN into the layer before it first, then the remaining ones forward.
    for (const position of ['after', 'before'] as const) {
      for (const bn of graph.nodes.filter((n) => n.opType === 'BatchNormalization' && isDefault(n))) {
        if (!graph.nodes.includes(bn)) continue
        const index = graphIndex(graph)
        const p = bnParams(ctx, index, bn)
        if (typeof p === 'string') {
          refused.set(bn, p)
          continue
        }
        let why: string | undefined
        if (position === 'after') {
          const layer = index.producer(bn.inputs[0]!)?.node
          if (!layer || !isDefault(layer) || !AFTER_LAYERS.has(layer.opType)) continue
          why = foldAfter(ctx, layer, bn, p)
        } else {
          const uses = index.consumers(bn.outputs[0]!)
          const conv = uses.length === 1 ? uses[0]!.node : undefined
          if (!conv || conv.opType !== 'Conv' || !isDefault(conv)) continue
          why = foldBefore(ctx, bn, conv, p)
        }
        if (why) refused.set(bn, `${position === 'after' ? 'into the layer before it' : 'into the Conv after it'}: ${why}`)
        else {
          refused.delete(bn)
          folded++
        }
      }
    }
    for (const bn of graph.nodes) {
      if (bn.opType !== 'BatchNormalization' || !isDefault(bn)) continue
      const why = refused.get(bn) ?? 'no Conv, ConvTranspose, Gemm or MatMul writes its input alone, and no unpadded Conv reads its output alone'
      ctx.note(`BatchNormalization ${q(bn.name)} not folded: ${refused.has(bn) ? why : `standalone (${why})`}`)
    }
    return folded
  },
}
