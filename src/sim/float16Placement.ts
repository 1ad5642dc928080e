// Float16 placement: which tensors of a model carry a float16 quantizer (dtype 'float', 16 bits:
// a Cast to float16 and back in the QDQ model) when the model is converted to float16 compute
// (src/modes/convertFloat16.ts, docs/modes-architecture.md). Unlike AIMET's placement
// (placement.ts: op outputs outside supergroups, params of a few op types) every float32 value a
// float16 region holds is rounded: a region computes in float16, so each of its tensors is a
// float16 tensor.
//
// The rules come from the caller (the mode's op tables and block list): which nodes stay float32
// and why, the precision each input slot of a float16 node needs, and the outputs that stay
// float32. From them:
// - a node output gets an 'output' quantizer, enabled when its producer runs in float16 (every
//   reader then sees the float16 value, as after the real conversion, where a float32 reader reads
//   a Cast of it); disabled, with the reason as its note, when the producer stays float32;
// - a value a float32 producer writes (or a graph input) gets one 'input' quantizer per reader
//   that runs in float16 (the Cast at the region's edge);
// - a float32 initializer all of whose readers run in float16 gets a 'param' quantizer (it becomes
//   a float16 initializer); one also read in float32 gets 'input' quantizers for its float16
//   readers (the float16 copy) and a disabled 'param' quantizer naming why it stays float32.
// Per-reader quantizers are found by node name (src/export/qdqModel.ts), so node names must be
// unique and non-empty: the caller names unnamed nodes in the sim's copy of the model.
import type { Model, Node } from '../graph/model.js'
import { implicitInputs } from '../graph/scope.js'
import type { Placement } from './placement.js'
import type { Quantizer, QuantizerSpec } from './quantizer.js'

export interface Float16PlacementRules {
  /** Whether a value of the main graph is float32 (graph inputs, initializers, node outputs). */
  isFloat: (value: string) => boolean
  /** Nodes kept in float32, by position in `model.graph.nodes`, with why (the quantizers' note). */
  blocked: ReadonlyMap<number, string>
  /** Precision input `slot` of `node` needs when the node runs in float16 ('any': either, no Cast). */
  inputNeed: (node: Node, slot: number) => 16 | 32 | 'any'
  /** Output slots that stay float32 when their node runs in float16 (LayerNormalization's Mean, InvStdDev). */
  float32Outputs: (node: Node) => readonly number[]
  /** Graph inputs and outputs keep float32 (Casts at the edges). */
  keepIoTypes: boolean
}

export const FLOAT16_SPEC: Readonly<QuantizerSpec> = Object.freeze({ dtype: 'float', bitwidth: 16, symmetric: false, strictSymmetric: false, unsignedSymmetric: false })

/** Precision of each float value after placement: 16 when its own quantizer is enabled. */
export function placeFloat16Quantizers(model: Model, rules: Float16PlacementRules): Placement {
  const g = model.graph
  const seen = new Set<string>()
  for (const n of g.nodes) {
    if (n.name === '' || seen.has(n.name)) throw new Error(`internal: float16 placement needs unique node names (${JSON.stringify(n.name)} is empty or repeated)`)
    seen.add(n.name)
  }
  const { isFloat, blocked } = rules
  const fl = (v: string) => v !== '' && isFloat(v)
  const index = new Map(g.nodes.map((n, i) => [n, i]))
  const touches = (n: Node) => n.inputs.some(fl) || n.outputs.some(fl) || [...implicitInputs(n)].some(fl)
  const half = (n: Node) => touches(n) && !blocked.has(index.get(n)!)
  const need = (n: Node, slot: number): 16 | 32 | 'any' => {
    const r = slot >= 0 ? rules.inputNeed(n, slot) : 32
    if (r === 'any') return 'any'
    return slot < 0 || !half(n) ? 32 : r
  }
  const readers = new Map<string, { node: Node; slot: number }[]>()
  const add = (v: string, node: Node, slot: number) => { if (v !== '') (readers.get(v) ?? readers.set(v, []).get(v)!).push({ node, slot }) }
  for (const n of g.nodes) {
    n.inputs.forEach((v, slot) => add(v, n, slot))
    for (const v of implicitInputs(n)) add(v, n, -1)
  }
  const graphInputs = new Set(g.inputs.map((v) => v.name))
  const graphOutputs = new Set(g.outputs.map((v) => v.name))
  const quantizers: Quantizer[] = []
  const notes: string[] = []
  const spec = () => ({ ...FLOAT16_SPEC })
  /** Whether every reader that cares reads float16 (and at least one does). */
  const allHalf = (v: string) => {
    if (graphOutputs.has(v) && rules.keepIoTypes) return false
    const needs = (readers.get(v) ?? []).map((r) => need(r.node, r.slot))
    return needs.includes(16) && !needs.includes(32)
  }
  /** One quantizer per float16 reader of a value that is float32 itself (the Cast at the region edge). */
  const perReader = (v: string) => {
    const done = new Set<Node>()
    for (const r of readers.get(v) ?? []) {
      if (done.has(r.node) || need(r.node, r.slot) !== 16) continue
      done.add(r.node)
      quantizers.push({ tensor: v, kind: 'input', node: r.node.name, opType: r.node.opType, enabled: true, spec: spec() })
    }
  }
  for (const v of g.inputs) {
    if (g.initializers.has(v.name) || !fl(v.name)) continue
    const on = !rules.keepIoTypes && allHalf(v.name)
    quantizers.push({
      tensor: v.name, kind: 'input', node: '', opType: '', enabled: on, spec: spec(),
      ...(on ? {} : { note: rules.keepIoTypes ? 'graph input kept float32 (keepIoTypes); float16 readers get a quantizer each' : 'graph input read in float32' }),
    })
    if (!on) perReader(v.name)
  }
  for (const [k, t] of g.initializers) {
    if (t.dataType !== 1 || !fl(k)) continue
    const first = (readers.get(k) ?? []).find((r) => need(r.node, r.slot) === 16)
    if (!graphInputs.has(k) && allHalf(k)) {
      quantizers.push({ tensor: k, kind: 'param', node: first!.node.name, opType: first!.node.opType, paramName: `input${first!.slot}`, enabled: true, spec: spec() })
      continue
    }
    const r0 = first ?? (readers.get(k) ?? [])[0]
    quantizers.push({
      tensor: k, kind: 'param', node: r0?.node.name ?? '', opType: r0?.node.opType ?? '', paramName: r0 ? `input${r0.slot}` : undefined, enabled: false, spec: spec(),
      note: graphInputs.has(k) ? 'initializer that is also a graph input: stays float32' : first ? 'also read in float32: stays float32, float16 readers get a quantizer each (a float16 copy)' : 'read in float32 only',
    })
    if (first) perReader(k)
  }
  for (const n of g.nodes) {
    const keep32 = rules.float32Outputs(n)
    n.outputs.forEach((o, slot) => {
      if (!fl(o)) return
      const on = half(n) && !keep32.includes(slot)
      const why = blocked.get(index.get(n)!) ?? (keep32.includes(slot) ? `output ${slot} of ${n.opType} is float32 by its type constraints` : 'its producer stays float32')
      quantizers.push({ tensor: o, kind: 'output', node: n.name, opType: n.opType, enabled: on, spec: spec(), ...(on ? {} : { note: why }) })
      if (!on) perReader(o)
    })
  }
  const off = quantizers.filter((q) => !q.enabled && q.kind === 'output').length
  notes.push(`float16 placement: ${quantizers.filter((q) => q.enabled).length} float16 quantizers; ${blocked.size} nodes kept float32 (${off} outputs)`)
  return { quantizers, fusions: [], notes }
}
