// Folds an elementwise Mul, Add, Sub or Div by a per-channel constant into the Conv,
// ConvTranspose or Gemm before it: y = L(x) ⊙ c is L with W·c and b·c, y = L(x) + c is L with b + c
// (Sub: L(x) − c; Div: L(x) / c, both with the constant on the right). PP-OCRv4's learnable
// affine blocks (Conv → Mul by a scalar → Add a scalar) are this pattern.
// Exact cases only: the constant must broadcast along the layer's output channels and nowhere
// else (shape [], [1], [C,1,1], [1,C,1,1], … for Conv; [], [N], [1,N] for Gemm) and must not raise
// the output's rank; the layer's output must feed nothing but this node; weight and bias must be
// the layer's own. The opposite direction (a constant applied before a Conv) is not folded: with
// padding it is not exact, and preparation keeps to the exact folds.
import { removeNode } from '../graphEdits.js'
import { graphIndex, type GraphIndex } from '../graphIndex.js'
import type { Graph, Node } from '../model.js'
import { isFloat32, layerBias, ownedParameter, weightLayout, writeLayerParams, type FloatTensor } from './layerParams.js'
import type { PassContext, PreparePass } from './pass.js'

const q = JSON.stringify
const isDefault = (n: Node) => n.domain === '' || n.domain === 'ai.onnx'

const LAYERS = new Set(['Conv', 'ConvTranspose', 'Gemm'])
/** Op → which operand positions may hold the constant. */
const FOLDABLE: Readonly<Record<string, readonly number[]>> = { Mul: [0, 1], Add: [0, 1], Sub: [1], Div: [1] }

/** Per-output-channel values of `c` if it broadcasts over channel axis 1 only of a rank-`rank` output. */
function perChannel(c: FloatTensor, rank: number, channels: number): Float64Array | string {
  const d = c.dims
  if (d.length > rank) return `constant dims ${q(d)} would raise the output rank ${rank}`
  let span = 1
  for (let j = 0; j < d.length; j++) {
    const axis = rank - d.length + j
    if (axis === 1 && d[j] === channels) span = channels
    else if (d[j] !== 1) return `constant dims ${q(d)} vary along output axis ${axis}, not only the channel axis 1`
  }
  const out = new Float64Array(channels)
  for (let o = 0; o < channels; o++) out[o] = c.data[span === 1 ? 0 : o]!
  return out
}

function outputRank(graph: Graph, layer: Node, w: FloatTensor): number {
  return layer.opType === 'Gemm' ? 2 : w.dims.length
}

function tryFold(ctx: PassContext, index: GraphIndex, layer: Node, op: Node): string | undefined {
  const graph = ctx.model.graph
  const out = layer.outputs[0]!
  const slot = op.inputs.indexOf(out)
  const constName = op.inputs[1 - slot] ?? ''
  if (op.inputs.length !== 2 || op.inputs.lastIndexOf(out) !== slot) return 'it reads the layer output twice'
  if (!FOLDABLE[op.opType]!.includes(1 - slot)) return `the constant is the left operand of ${op.opType}`
  const c = graph.initializers.get(constName)
  if (!c || index.isGraphInput(constName)) return `${q(constName)} is not a constant`
  if (!isFloat32(c)) return `${q(constName)} is not float32`
  if (index.consumers(out).length !== 1 || index.isGraphOutput(out)) return `${q(out)} has other readers`
  const wName = layer.inputs[1] ?? ''
  const w = ownedParameter(graph, index, layer, wName)
  if (typeof w === 'string') return `weight ${w}`
  const layout = weightLayout(layer, w)
  if (typeof layout === 'string') return layout
  const values = perChannel(c, outputRank(graph, layer, w), layout.outChannels)
  if (typeof values === 'string') return values
  const bias = layerBias(graph, index, layer, layout.outChannels)
  if (typeof bias === 'string') return bias

  let weight = w.data
  const scaleBy = (f: (x: number, o: number) => number) => {
    weight = new Float32Array(w.data.length)
    for (let i = 0; i < weight.length; i++) weight[i] = f(w.data[i]!, layout.channelOf(i))
    for (let o = 0; o < bias.values.length; o++) bias.values[o] = f(bias.values[o]!, o)
  }
  switch (op.opType) {
    case 'Mul':
      scaleBy((x, o) => x * values[o]!)
      break
    case 'Div':
      scaleBy((x, o) => x / values[o]!)
      break
    case 'Add':
      for (let o = 0; o < bias.values.length; o++) bias.values[o] = bias.values[o]! + values[o]!
      break
    case 'Sub':
      for (let o = 0; o < bias.values.length; o++) bias.values[o] = bias.values[o]! - values[o]!
      break
  }
  // A layer without bias under a Mul or Div keeps having none.
  if (bias.exists || op.opType === 'Add' || op.opType === 'Sub') writeLayerParams(graph, layer, wName, weight, w.dims, bias)
  else graph.initializers.set(wName, { ...w, data: weight })
  removeNode(graph, op, { keepInput: slot })
  ctx.release(constName)
  return undefined
}

export const foldMulAdd: PreparePass = {
  name: 'foldMulAdd',
  run(ctx: PassContext): number {
    const graph = ctx.model.graph
    let folded = 0
    for (const layer of [...graph.nodes]) {
      if (!isDefault(layer) || !LAYERS.has(layer.opType) || !graph.nodes.includes(layer)) continue
      const index = graphIndex(graph)
      const uses = index.consumers(layer.outputs[0] ?? '')
      const op = uses[0]?.node
      if (uses.length !== 1 || !op || !isDefault(op) || !(op.opType in FOLDABLE)) continue
      const otherName = op.inputs.find((i) => i !== layer.outputs[0])
      if (otherName === undefined || !graph.initializers.has(otherName)) continue // x ⊙ y of two activations
      const why = tryFold(ctx, index, layer, op)
      if (why) ctx.note(`${op.opType} ${q(op.name)} after ${layer.opType} ${q(layer.name)} not folded: ${why}`)
      else folded++
    }
    ctx.report.foldedMulAdd += folded
    return folded
  },
}
