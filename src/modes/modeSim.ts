// The QuantSim behind a precision mode (docs/modes-architecture.md). A mode decides which layers it
// can write (its op table and writer constraints); QuantSim's placement decides which tensors of
// those layers are parameters, and its parameter quantizers hold the weight encodings the mode's
// writer reads. Activation quantizers are off: weight-only and dynamic modes quantize no
// activation ahead of time (dynamic ones are quantized at run time by the writer's ops).
//
// One sim quantizer exists per tensor, so a weight a mode quantizes is first made private to the
// layers that quantize it the same way (`privateWeights`): a weight also read by a layer left in
// float, or read in another orientation, gets a second initializer name sharing the same data.
import type { Model, Node } from '../graph/model.js'
import { allValueNames, uniqueName } from '../graph/names.js'
import { QuantSim } from '../sim/quantSim.js'
import type { Quantizer } from '../sim/quantizer.js'

export interface WeightUse {
  /** Layers quantizing the weight the same way share a key (weight, orientation, layout). */
  key: string
  node: Node
  /** Input slot of `node` holding the weight. */
  slot: number
}

/**
 * Gives each key its own initializer when its weight is read by anything else: readers outside
 * `uses`, or uses under another key. The new initializer shares the tensor's data (no copy); the
 * original name stays with the other readers. Returns key → the tensor name the key's layers read,
 * and the weights that stay read in float by layers the mode does not rewrite.
 */
export function privateWeights(model: Model, uses: readonly WeightUse[]): { tensorOf: Map<string, string>; sharedWithFloat: string[] } {
  const g = model.graph
  const readers = new Map<string, number>()
  for (const n of g.nodes) for (const i of n.inputs) if (i) readers.set(i, (readers.get(i) ?? 0) + 1)
  for (const o of g.outputs) readers.set(o.name, (readers.get(o.name) ?? 0) + 1)
  const byWeight = new Map<string, WeightUse[]>()
  for (const u of uses) {
    const w = u.node.inputs[u.slot]!
    byWeight.set(w, [...(byWeight.get(w) ?? []), u])
  }
  const names = allValueNames(g)
  const tensorOf = new Map<string, string>()
  const sharedWithFloat: string[] = []
  for (const [w, list] of byWeight) {
    const keys = [...new Set(list.map((u) => u.key))]
    const floatReaders = (readers.get(w) ?? 0) > list.length
    if (floatReaders) sharedWithFloat.push(w)
    if (keys.length === 1 && !floatReaders) {
      tensorOf.set(keys[0]!, w)
      continue
    }
    const t = g.initializers.get(w)!
    for (const key of keys) {
      const name = uniqueName(g, `${w}_${keys.length > 1 ? `${keys.indexOf(key)}_` : ''}weight`, names)
      names.add(name)
      g.initializers.set(name, { ...t, name })
      for (const u of list) if (u.key === key) u.node.inputs[u.slot] = name
      tensorOf.set(key, name)
    }
  }
  return { tensorOf, sharedWithFloat }
}

/**
 * A QuantSim over `model` (not prepared: the mode rewrites the graph as given) with every
 * quantizer disabled but the parameter quantizers of `weights`. Weights QuantSim's placement gives
 * no parameter quantizer are returned in `unplaced` (the mode leaves those layers in float).
 */
export async function weightSim(model: Model, weights: Iterable<string>, opts: { gatherTables?: boolean } = {}): Promise<{ sim: QuantSim; unplaced: Set<string> }> {
  // Activation quantizers are all turned off below, so the sim needs no ORT type discovery (and
  // the mode works on models ORT cannot load, as it did before it used a sim).
  const sim = await QuantSim.create(model, { prepare: false, valueTypes: 'declared', gatherTables: opts.gatherTables ?? false })
  const wanted = new Set(weights)
  const placed = new Set<string>()
  for (const q of sim.quantizers) {
    if (isWeight(q) && wanted.has(q.tensor)) placed.add(q.tensor)
  }
  // Tensors with a wanted weight quantizer carry no other quantizer (privateWeights), so
  // setQuantizer by tensor touches only what it should.
  const off = new Set(sim.quantizers.filter((q) => q.enabled && !placed.has(q.tensor)).map((q) => q.tensor))
  for (const t of off) sim.setQuantizer(t, { enabled: false })
  for (const t of placed) sim.setQuantizer(t, { enabled: true })
  return { sim, unplaced: new Set([...wanted].filter((w) => !placed.has(w))) }
}

function isWeight(q: Quantizer): boolean {
  return q.kind === 'param' && q.paramName === 'weight'
}

/** The weight quantizer of `tensor` (after weightSim, with its encodings once computed). */
export function weightQuantizer(sim: QuantSim, tensor: string): Quantizer {
  const q = sim.quantizers.find((x) => x.tensor === tensor && isWeight(x))
  if (!q) throw new Error(`internal: QuantSim has no weight quantizer on ${JSON.stringify(tensor)}`)
  return q
}
