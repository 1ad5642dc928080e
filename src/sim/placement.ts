// Quantizer placement, the way aimet-onnx 2.42 places QcQuantizeOps (the config decides; the code
// rules of src/config/aimetRules.ts apply to every config): model inputs, op outputs, params of
// Conv/ConvTranspose/Gemm/MatMul and the norm ops, constant operands; none inside a supergroup or a
// fused pattern; integer and shape tensors never; tied quantizers share one encoding.
import {
  DATA_INPUT_ONLY_OP_TYPES, GRID_PRESERVING_OP_TYPES, NO_OUTPUT_QUANTIZER_OP_TYPES, PARAM_INPUTS, QUANTIZABLE_ELEMENT_TYPES,
  TIE_INPUTS_TO_OUTPUT_OP_TYPES, TIE_OUTPUT_TO_INPUT_OP_TYPES, dynamicMatMulRule, excludedFromSupergroups, normParamRule,
  perChannelAllowed, perChannelAxis,
} from '../config/aimetRules.js'
import type { QuantizerDtype } from '../config/quantizerDefaults.js'
import type { OpRule, ResolvedConfig } from '../config/resolve.js'
import { attrInt } from '../graph/attributes.js'
import { graphIndex } from '../graph/graphIndex.js'
import type { Model, Node } from '../graph/model.js'
import { topologicalOrder } from '../graph/topologicalOrder.js'
import { findFusions, type FusedOp } from './fusions.js'
import type { Quantizer, QuantizerSpec } from './quantizer.js'
import type { ValueType } from './valueTypes.js'

export interface PlacementOptions {
  config: ResolvedConfig
  param: QuantizerDtype
  activation: QuantizerDtype
  /** Element types of the graph's values (from ORT; see valueTypes.ts). */
  types: Map<string, ValueType>
  /** Embedding tables (input 0 of a Gather on axis 0, a constant 2-D float initializer) get a 'weight' param quantizer (QuantSimOptions.gatherTables). */
  gatherTables?: boolean
}

export interface Placement {
  quantizers: Quantizer[]
  fusions: { pass: string; nodes: string[] }[]
  /** How integer/shape chains, supergroups, ties and rules were treated. */
  notes: string[]
}

/** Ops whose constant (initializer) operands aimet-onnx quantizes as activations. */
const CONSTANT_OPERAND_OP_TYPES = new Set(['Add', 'Sub', 'Mul', 'Div', 'PRelu', 'Concat', 'MatMul', 'Max', 'Min', 'Where', 'Sum'])

export function placeQuantizers(model: Model, opts: PlacementOptions): Placement {
  const { config, types } = opts
  const graph = model.graph
  const index = graphIndex(graph)
  const notes: string[] = []
  const nodes = topologicalOrder(graph)
  const fusions = findFusions(graph, index, config.fusionPasses)
  const fusedOf = new Map<Node, FusedOp>()
  const internal = new Set<string>()
  for (const f of fusions) {
    for (const n of f.nodes) fusedOf.set(n, f)
    for (const v of f.internal) internal.add(v)
  }

  const isFloat = (name: string): boolean => {
    const init = graph.initializers.get(name)
    if (init) return init.dataType === 1 || init.dataType === 10 || init.dataType === 16
    const t = types.get(name)?.type
    return t !== undefined && QUANTIZABLE_ELEMENT_TYPES.has(t)
  }
  const activationSpec = (rule: OpRule | undefined): QuantizerSpec => ({
    dtype: opts.activation.dtype,
    bitwidth: opts.activation.bitwidth,
    symmetric: rule?.isSymmetric ?? false,
    strictSymmetric: config.strictSymmetric,
    unsignedSymmetric: config.unsignedSymmetric,
  })

  const outputs = new Map<string, Quantizer>() // op outputs and model inputs, by tensor
  const params = new Map<string, Quantizer>()
  const inputs: Quantizer[] = [] // per-consumer input quantizers
  let integerOutputs = 0

  for (const input of graph.inputs) {
    if (graph.initializers.has(input.name)) continue
    if (!isFloat(input.name)) continue
    outputs.set(input.name, {
      tensor: input.name, kind: 'input', node: '', opType: '', enabled: config.modelInput.isInputQuantized,
      spec: activationSpec(undefined),
      note: config.modelInput.isInputQuantized ? undefined : 'model_input.is_input_quantized is False',
    })
  }

  const addParam = (tensor: string, node: Node, opType: string, paramName: string, rule: OpRule) => {
    if (params.has(tensor)) return
    const prule = rule.params[paramName] ?? config.param(opType, paramName)
    const spec: QuantizerSpec = {
      dtype: opts.param.dtype,
      bitwidth: opts.param.bitwidth,
      symmetric: prule.isSymmetric,
      strictSymmetric: config.strictSymmetric,
      unsignedSymmetric: config.unsignedSymmetric,
    }
    const w = graph.initializers.get(tensor)!
    if (paramName === 'weight' && rule.perChannel && perChannelAllowed(opType, { group: attrInt(node, 'group', 1) })) {
      const axis = perChannelAxis(opType, { transB: attrInt(node, 'transB', 0) === 1 })
      if (axis !== undefined && w.dims.length > 0) spec.axis = axis < 0 ? axis + w.dims.length : axis
    }
    params.set(tensor, {
      tensor, kind: 'param', node: node.name, opType, paramName, enabled: prule.isQuantized, spec,
      note: prule.isQuantized ? undefined : `params.${paramName}.is_quantized is False`,
    })
  }

  for (const node of nodes) {
    const fused = fusedOf.get(node)
    const opType = fused?.opType ?? node.opType
    const rule = config.op(opType)
    // Params.
    if (fused) {
      if (fused.nodes[0] === node) for (const [tensor, name] of fused.params) addParam(tensor, node, opType, name, rule)
    } else {
      for (const [i, name] of Object.entries(PARAM_INPUTS[node.opType] ?? {})) {
        const t = node.inputs[Number(i)]
        if (t && graph.initializers.has(t) && isFloat(t)) addParam(t, node, node.opType, name, rule)
      }
    }
    // Embedding tables, on request (not an aimet-onnx placement).
    if (opts.gatherTables && !fused && node.opType === 'Gather' && (node.domain === '' || node.domain === 'ai.onnx')) {
      const t = node.inputs[0]
      const table = t ? graph.initializers.get(t) : undefined
      let axis = attrInt(node, 'axis', 0)
      if (table && axis < 0) axis += table.dims.length
      if (t && table && table.dims.length === 2 && axis === 0 && isFloat(t)) addParam(t, node, 'Gather', 'weight', rule)
    }
    // Constant operands that are not params: quantized like model inputs.
    if (!fused && CONSTANT_OPERAND_OP_TYPES.has(node.opType)) {
      node.inputs.forEach((t, i) => {
        if (!t || !graph.initializers.has(t) || !isFloat(t) || PARAM_INPUTS[node.opType]?.[i] !== undefined) return
        inputs.push({
          tensor: t, kind: 'input', node: node.name, opType: node.opType, enabled: config.modelInput.isInputQuantized,
          spec: activationSpec(undefined), note: 'constant operand (quantized as a model input, as aimet-onnx does)',
        })
      })
    }
    // Input quantizers the config asks for.
    if (rule.isInputQuantized) {
      node.inputs.forEach((t, i) => {
        if (!t || graph.initializers.has(t) || !isFloat(t) || internal.has(t)) return
        if (i > 0 && DATA_INPUT_ONLY_OP_TYPES.has(node.opType)) return
        inputs.push({ tensor: t, kind: 'input', node: node.name, opType: node.opType, enabled: true, spec: activationSpec(rule) })
      })
    }
    // Outputs.
    for (const out of node.outputs) {
      if (!out || internal.has(out)) continue
      if (!isFloat(out)) {
        integerOutputs++
        continue
      }
      if (!rule.hasOutputQuantizer) continue
      const q: Quantizer = {
        tensor: out, kind: 'output', node: node.name, opType, enabled: rule.isOutputQuantized, spec: activationSpec(rule),
        note: rule.isOutputQuantized ? undefined : (GRID_PRESERVING_OP_TYPES.has(opType) ? 'grid-preserving op' : `${opType} outputs are not quantized by the config`),
      }
      if (rule.encodingConstraints) q.fixedRange = { min: rule.encodingConstraints.min, max: rule.encodingConstraints.max ?? Number.NaN }
      outputs.set(out, q)
    }
  }
  if (integerOutputs > 0) notes.push(`${integerOutputs} integer or non-float values (shapes, indices, masks) are never quantized`)
  if (fusions.length > 0) notes.push(`fusion passes matched ${fusions.map((f) => `${f.pass} (${f.nodes.map((n) => n.name).join(', ')})`).join('; ')}`)

  // Supergroups: no output quantizer between the ops of a matched sequence. A fused pattern takes
  // part as one op (aimet-onnx matches a fused MatMul+Add as a Gemm, so Gemm+Relu applies to it).
  interface Unit { opType: string; entry: Node; nodes: Node[]; output: string }
  const unitOf = new Map<Node, Unit>()
  for (const n of nodes) {
    const f = fusedOf.get(n)
    if (!f) unitOf.set(n, { opType: n.opType, entry: n, nodes: [n], output: n.outputs[0] ?? '' })
    else if (!unitOf.has(f.nodes[0]!)) {
      const u = { opType: f.pass === 'MatmulAdd' ? 'Gemm' : f.opType, entry: f.nodes[0]!, nodes: f.nodes, output: f.output }
      for (const m of f.nodes) unitOf.set(m, u)
    }
  }
  const units = [...new Set(unitOf.values())]
  const inGroup = new Set<Unit>()
  let groups = 0
  for (const pattern of config.supergroups) {
    for (const start of units) {
      if (start.opType !== pattern[0] || inGroup.has(start)) continue
      const chain = [start]
      let ok = true
      for (let k = 1; k < pattern.length && ok; k++) {
        const prev = chain[k - 1]!
        const c = index.consumerNodes(prev.output)
        const next = c.length === 1 && !index.isGraphOutput(prev.output) ? unitOf.get(c[0]!) : undefined
        if (!next || next.entry !== c[0] || next.opType !== pattern[k] || inGroup.has(next)) ok = false
        else chain.push(next)
      }
      if (!ok || chain.length !== pattern.length) continue
      if (chain.some((u) => excludedFromSupergroups({
        opType: u.entry.opType, group: attrInt(u.entry, 'group', 1), weightShape: graph.initializers.get(u.entry.inputs[1] ?? '')?.dims,
      }))) continue
      for (const u of chain) inGroup.add(u)
      for (const u of chain.slice(0, -1)) {
        const q = outputs.get(u.output)
        if (q) {
          q.enabled = false
          q.note = `inside supergroup ${pattern.join('+')}`
        }
      }
      groups++
    }
  }
  if (groups > 0) notes.push(`${groups} supergroups fused (no quantizer between their ops)`)

  // model_output.is_output_quantized forces the graph outputs' quantizers on.
  if (config.modelOutput.isOutputQuantized) {
    for (const o of graph.outputs) {
      const q = outputs.get(o.name)
      if (q) {
        q.enabled = true
        q.note = undefined
      }
    }
  }

  // The quantizer that actually quantizes a value: its own, or one upstream through grid-preserving ops.
  const effective = (t: string, seen = new Set<string>()): Quantizer | undefined => {
    if (seen.has(t)) return undefined
    seen.add(t)
    const q = outputs.get(t)
    if (q?.enabled) return q
    const p = index.producer(t)
    if (p && (GRID_PRESERVING_OP_TYPES.has(p.node.opType) || NO_OUTPUT_QUANTIZER_OP_TYPES.has(p.node.opType)) && p.node.inputs[0]) {
      return effective(p.node.inputs[0], seen)
    }
    return undefined
  }

  // Param symmetry of a dynamic weight (MatMul of two activations), then the hardware rules.
  for (const node of nodes) {
    const rule = config.op(node.opType)
    if (rule.dynamicWeightIsSymmetric !== undefined && node.inputs[1] && !graph.initializers.has(node.inputs[1])) {
      const q1 = effective(node.inputs[1])
      if (q1) q1.spec.symmetric = rule.dynamicWeightIsSymmetric
      const m = dynamicMatMulRule(config.hwVersion, state(effective(node.inputs[0]!)), state(q1))
      if (node.opType === 'MatMul' && m && q1) {
        q1.spec.bitwidth = m.input1.bitwidth
        q1.spec.symmetric = m.input1.symmetric
        const q0 = effective(node.inputs[0]!)
        if (q0) q0.spec.bitwidth = m.input0.bitwidth
      }
    }
  }
  for (const q of params.values()) {
    const out = outputs.get(graph.nodes.find((n) => n.name === q.node)?.outputs[0] ?? '')
    const r = normParamRule(q.opType, config.hwVersion, state(q)!, state(out))
    if (r) {
      q.spec.bitwidth = r.bitwidth
      q.spec.symmetric = r.symmetric
    }
  }

  // Ties: the output takes the input's encoding (Relu, AveragePool, Resize…), or the inputs take
  // the output's (Concat…) when they feed nothing else.
  let ties = 0
  for (const node of nodes) {
    const out = outputs.get(node.outputs[0] ?? '')
    if (!out?.enabled || out.fixedRange) continue
    if (TIE_OUTPUT_TO_INPUT_OP_TYPES.has(node.opType)) {
      const src = effective(node.inputs[0] ?? '')
      if (src && src !== out) {
        out.tiedTo = src.tensor
        ties++
      }
    } else if (TIE_INPUTS_TO_OUTPUT_OP_TYPES.has(node.opType)) {
      for (const i of node.inputs) {
        if (!i || index.consumerNodes(i).length !== 1) continue
        const src = effective(i)
        if (src && src !== out && !src.fixedRange && !src.tiedTo) {
          src.tiedTo = out.tensor
          ties++
        }
      }
    }
  }
  if (ties > 0) notes.push(`${ties} quantizers tied to a neighbour's encoding (Concat inputs, Relu/pool/Resize outputs)`)

  return {
    quantizers: [...outputs.values(), ...inputs, ...params.values()],
    fusions: fusions.map((f) => ({ pass: f.pass, nodes: f.nodes.map((n) => n.name) })),
    notes,
  }
}

function state(q: Quantizer | undefined): { enabled: boolean; dtype: 'int' | 'float'; bitwidth: number; symmetric: boolean } | undefined {
  return q && { enabled: q.enabled, dtype: q.spec.dtype, bitwidth: q.spec.bitwidth, symmetric: q.spec.symmetric }
}
