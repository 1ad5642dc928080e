// quantizeWeights: weight-only int4/int8 quantization of MatMul and Gemm weights with block scales
// along the reduction axis, written as ONNX Runtime's com.microsoft.MatMulNBits or as opset-21
// blocked DequantizeLinear → MatMul (docs/weight-only.md); and, when `ops` includes 'Gather', of
// embedding tables (Gather on axis 0) in blocks along the row, written as com.microsoft.
// GatherBlockQuantized or blocked DequantizeLinear (axis 1) → Gather (weightOnlyGather.ts).
//
// A node is rewritten when its op has a row in weightOnlyOps.ts and its weight is a constant 2-D
// float32 initializer that is not also a graph input (a graph input can be overridden at run time).
// Everything else stays float and is listed in report.skipped with the reason. The input model is
// not changed (cloneModel); a weight read by several nodes is quantized once and shared; float
// weights nobody reads any more are dropped. Only the main graph is rewritten (not If/Loop bodies).
import { ExportError } from '../export/qdqModel.js'
import { pruneUnusedInitializers } from '../graph/graphEdits.js'
import { cloneModel, opsetVersion, type Model, type Node } from '../graph/model.js'
import { allValueNames, uniqueName } from '../graph/names.js'
import { upgradeOpset } from '../graph/opset/upgradeOpset.js'
import { DataType } from '../onnx/elementType.js'
import { resolveModelSource, type ModelSource } from '../onnx/modelSource.js'
import type { Tensor } from '../onnx/tensor.js'
import type { CalibrationData } from '../sim/calibrationData.js'
import { accumulateHessians, quantizeGptq, type GptqHessian, type GptqLayerStats, type GptqOptions } from './gptq.js'
import { quantizeNbits, type WeightBits, type WeightFormat } from './nbitsWeights.js'
import { WEIGHT_FORMATS, type ProductSpec } from './weightOnlyFormats.js'
import { GATHER_FORMATS, gatherUnsupported, type GatherSpec } from './weightOnlyGather.js'
import { DEFAULT_WEIGHT_ONLY_OPS, WEIGHT_ONLY_OPS, WEIGHT_ONLY_OP_TYPES, gatherSite, type WeightOnlyOpType, type WeightSite } from './weightOnlyOps.js'
import type { WeightOnlyLayer, WeightOnlyReport, WeightOnlySkip } from './weightOnlyReport.js'

export interface QuantizeWeightsOptions {
  bits: WeightBits
  /** Weights per block along K (the reduction axis): a power of two from 16 to 256. Default 32. */
  blockSize?: number
  /** Symmetric (zero point at mid-grid, omitted from the file) or asymmetric with per-block zero points. Default true. */
  symmetric?: boolean
  /** Default 'matmulnbits'. */
  format?: WeightFormat
  /** Op types to rewrite: some of 'MatMul', 'Gemm', 'Gather' (embedding tables); default ['MatMul', 'Gemm']. */
  ops?: readonly WeightOnlyOpType[]
  /** Node names to leave in float. */
  exclude?: readonly string[]
  /** MatMulNBits' accuracy_level (0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 compute); 'matmulnbits' only. Default unset. */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4
  /**
   * Rounding: 'rtn' rounds each weight to the nearest point of its block's grid (default); 'gptq'
   * solves for the codes that minimise each layer's output error on `data` (GPTQ, in Rust).
   */
  algorithm?: WeightAlgorithm
  /** Calibration batches (feeds of the model's inputs); required for 'gptq'. */
  data?: CalibrationData
  /** GPTQ settings (dampPercent, measureError, intraOpNumThreads). */
  gptq?: GptqOptions
  signal?: AbortSignal
}

export type WeightAlgorithm = 'rtn' | 'gptq'

export interface QuantizeWeightsResult {
  model: Model
  report: WeightOnlyReport
}

const q = JSON.stringify

interface Resolved {
  bits: WeightBits
  blockSize: number
  symmetric: boolean
  format: WeightFormat
  ops: Set<string>
  exclude: Set<string>
  accuracyLevel?: number
  algorithm: WeightAlgorithm
  data?: CalibrationData
  gptq: GptqOptions
  signal?: AbortSignal
}

function resolveOptions(opts: QuantizeWeightsOptions): Resolved {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('quantizeWeights: options { bits: 4 | 8, … } are required')
  if (opts.bits !== 4 && opts.bits !== 8) throw new RangeError(`quantizeWeights: bits must be 4 or 8, got ${String(opts.bits)}`)
  const blockSize = opts.blockSize ?? 32
  if (!Number.isInteger(blockSize) || blockSize < 16 || blockSize > 256 || (blockSize & (blockSize - 1)) !== 0) {
    throw new RangeError(`quantizeWeights: blockSize must be a power of two from 16 to 256 (MatMulNBits needs a power of two ≥ 16), got ${String(blockSize)}`)
  }
  const format = opts.format ?? 'matmulnbits'
  if (!(format in WEIGHT_FORMATS)) throw new RangeError(`quantizeWeights: format must be 'matmulnbits' or 'qdq', got ${q(format)}`)
  const ops = opts.ops ?? DEFAULT_WEIGHT_ONLY_OPS
  for (const op of ops) {
    if (!WEIGHT_ONLY_OP_TYPES.includes(op)) throw new RangeError(`quantizeWeights: ops: ${q(op)} is not supported; expected some of ${WEIGHT_ONLY_OP_TYPES.join(', ')}`)
  }
  const acc = opts.accuracyLevel
  if (acc !== undefined && !(Number.isInteger(acc) && acc >= 0 && acc <= 4)) {
    throw new RangeError(`quantizeWeights: accuracyLevel must be 0–4, got ${String(acc)}`)
  }
  if (acc && format !== 'matmulnbits') throw new RangeError(`quantizeWeights: accuracyLevel is a MatMulNBits attribute; format ${q(format)} has none`)
  const algorithm = opts.algorithm ?? 'rtn'
  if (algorithm !== 'rtn' && algorithm !== 'gptq') throw new RangeError(`quantizeWeights: algorithm must be 'rtn' or 'gptq', got ${q(algorithm)}`)
  if (algorithm === 'gptq' && opts.data == null) {
    throw new TypeError("quantizeWeights: algorithm 'gptq' needs calibration data: pass `data` (an array or iterable of feeds, or a function)")
  }
  const damp = opts.gptq?.dampPercent
  if (damp !== undefined && !(damp > 0 && Number.isFinite(damp))) throw new RangeError(`quantizeWeights: gptq.dampPercent must be a finite number > 0, got ${String(damp)}`)
  return {
    bits: opts.bits,
    blockSize,
    symmetric: opts.symmetric ?? true,
    format,
    ops: new Set(ops),
    exclude: new Set(opts.exclude ?? []),
    ...(acc ? { accuracyLevel: acc } : {}),
    algorithm,
    ...(opts.data != null ? { data: opts.data } : {}),
    gptq: { ...opts.gptq },
    ...(opts.signal ? { signal: opts.signal } : {}),
  }
}

interface Planned {
  node: Node
  label: string
  site: WeightSite
  weight: Tensor
  k: number
  n: number
  /** beta·C when beta ≠ 1 (C a float32 initializer). */
  scaledBias?: Tensor
  /** An embedding Gather: the table [V, D] = [n, k], blocks along D. */
  gather?: GatherSpec
}

/** Decides, node by node, what is rewritten and what is skipped (and why). */
function plan(model: Model, o: Resolved): { planned: Planned[]; skipped: WeightOnlySkip[] } {
  const g = model.graph
  const graphInputs = new Set(g.inputs.map((v) => v.name))
  const planned: Planned[] = []
  const skipped: WeightOnlySkip[] = []
  g.nodes.forEach((node, i) => {
    const rule = node.opType === 'Gather'
      ? (n: Node) => gatherSite(n, g.initializers.get(n.inputs[0] ?? '')?.dims.length ?? 2)
      : (WEIGHT_ONLY_OPS as Record<string, (n: Node) => ReturnType<(typeof WEIGHT_ONLY_OPS)['MatMul']>>)[node.opType]
    if (!rule || (node.domain !== '' && node.domain !== 'ai.onnx') || !o.ops.has(node.opType)) return
    const label = node.name || `${node.opType}_${i}`
    const skip = (reason: string) => skipped.push({ node: label, opType: node.opType, reason })
    if (o.exclude.has(node.name)) return skip('excluded by options.exclude')
    const site = rule(node)
    if ('skip' in site) return skip(site.skip)
    const w = g.initializers.get(site.weight)
    if (!w) return skip(`weight ${q(site.weight)} is not an initializer (computed at run time)`)
    if (graphInputs.has(site.weight)) return skip(`weight ${q(site.weight)} is also a graph input, so it can be overridden at run time`)
    if (w.dataType !== DataType.FLOAT) return skip(`weight ${q(site.weight)} is not float32 (data type ${w.dataType})`)
    if (w.dims.length !== 2) return skip(`weight ${q(site.weight)} has shape [${w.dims.join(', ')}], not 2-D`)
    const [k, n] = site.transposed ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!]
    if (k === 0 || n === 0) return skip(`weight ${q(site.weight)} is empty`)
    if (node.opType === 'Gather') {
      const gather: GatherSpec = { v: n, d: k, bits: o.bits, blockSize: o.blockSize, symmetric: o.symmetric }
      const why = gatherUnsupported(o.format, gather)
      if (why) return skip(why)
      planned.push({ node, label, site, weight: w, k, n, gather })
      return
    }
    let scaledBias: Tensor | undefined
    if (site.bias && site.bias.beta !== 1) {
      const c = g.initializers.get(site.bias.name)
      if (!c || c.dataType !== DataType.FLOAT || graphInputs.has(site.bias.name)) {
        return skip(`Gemm with beta=${site.bias.beta} and a C that is not a constant float32 initializer`)
      }
      const beta = site.bias.beta
      const data = Float32Array.from(c.data as Float32Array, (v) => Math.fround(beta * v))
      scaledBias = { name: site.bias.name, dataType: DataType.FLOAT, dims: [...c.dims], data }
    }
    planned.push({ node, label, site, weight: w, k, n, ...(scaledBias ? { scaledBias } : {}) })
  })
  return { planned, skipped }
}

function ensureOpsets(model: Model, o: Resolved, notes: string[]): Model {
  const writer = WEIGHT_FORMATS[o.format]
  const current = opsetVersion(model) ?? 0
  let out = model
  if (writer.minOpset > current) {
    const up = upgradeOpset(model, writer.minOpset)
    if (!up.report.upgradable) {
      const blockers = up.report.blockers.map((b) => `${b.node || '(unnamed)'} (${b.opType}): ${b.reason}`).join('; ')
      throw new ExportError(
        `quantizeWeights: format 'qdq' needs opset ${writer.minOpset} (blocked DequantizeLinear${o.bits === 4 ? ', int4' : ''}), ` +
          `and the model (opset ${current}) cannot be upgraded: ${blockers}. Use format 'matmulnbits' (ONNX Runtime) instead.`,
      )
    }
    out = up.model
    notes.push(`opset upgraded from ${current} to ${writer.minOpset} for blocked DequantizeLinear (${up.report.conversions.length} conversion steps)`)
  }
  if (writer.domain && !out.opsetImports.some((x) => x.domain === writer.domain)) {
    out.opsetImports.push({ domain: writer.domain, version: 1 })
  }
  return out
}

/**
 * Quantizes the weights of MatMul/Gemm nodes to `bits` with one scale (and, asymmetric, one zero
 * point) per `blockSize` weights along K, per output column. Returns a new model and a report.
 */
export async function quantizeWeights(source: ModelSource, opts: QuantizeWeightsOptions): Promise<QuantizeWeightsResult> {
  const o = resolveOptions(opts)
  const input = await resolveModelSource(source)
  const notes: string[] = []
  const opsetBefore = opsetVersion(input) ?? 0
  let model = cloneModel(input)
  let { planned, skipped } = plan(model, o)
  // A Gather's table gets its own layout, never shared with a MatMul/Gemm reading the same weight.
  const keyOf = (p: Planned) => `${p.site.weight}\u0000${p.site.transposed}${p.gather ? '\u0000gather' : ''}`
  // GPTQ: the layer inputs are tapped on the float model as given (before any opset upgrade).
  let hessians: Map<string, GptqHessian> | undefined
  const matmuls = planned.filter((p) => !p.gather)
  if (o.algorithm === 'gptq' && matmuls.length > 0) {
    hessians = await accumulateHessians(
      model,
      matmuls.map((p) => ({ key: keyOf(p), input: p.node.inputs[0]!, k: p.k, node: p.label })),
      o.data!,
      { ...o.gptq, ...(o.signal ? { signal: o.signal } : {}) },
    )
    const rows = [...hessians.values()].map((h) => h.rows)
    const [lo, hi] = [Math.min(...rows), Math.max(...rows)]
    notes.push(`GPTQ: one Hessian per layer input from ${lo === hi ? lo : `${lo}–${hi}`} calibration rows (one pass over the float model); ` +
      `dampening ${o.gptq.dampPercent ?? 0.01}·mean(diag H); each block's grid set when the solver enters it`)
  }
  if (planned.length > 0) {
    model = ensureOpsets(model, o, notes)
    // The upgrade (qdq) makes new node objects; MatMul and Gemm come through it unchanged.
    if (model !== input && planned[0] && !model.graph.nodes.includes(planned[0].node)) ({ planned, skipped } = plan(model, o))
    if (o.algorithm === 'gptq' && planned.some((p) => p.gather)) {
      notes.push('GPTQ applies to MatMul/Gemm only (a lookup has no layer input to weigh); Gather tables are rounded to nearest')
    }
  } else {
    notes.push(`no ${[...o.ops].join('/')} with a constant 2-D float32 weight was found; the model is returned unchanged`)
  }

  const g = model.graph
  const writer = WEIGHT_FORMATS[o.format]
  const names = allValueNames(g)
  const fresh = (base: string) => {
    const name = uniqueName(g, base, names)
    names.add(name)
    return name
  }
  // One quantized copy per (weight, orientation), shared by every node that reads it.
  const made = new Map<string, { tensors: Tensor[]; sqnrDb: number; gptq?: GptqLayerStats }>()
  const layers: WeightOnlyLayer[] = []
  const replaced = new Map<Node, Node[]>()
  let bytesBefore = 0
  let bytesAfter = 0

  for (const p of planned) {
    o.signal?.throwIfAborted()
    const spec: ProductSpec = {
      input: p.node.inputs[0]!,
      output: p.node.outputs[0]!,
      nodeName: p.label,
      k: p.k,
      n: p.n,
      bits: o.bits,
      blockSize: o.blockSize,
      symmetric: o.symmetric,
      ...(o.accuracyLevel ? { accuracyLevel: o.accuracyLevel } : {}),
    }
    const key = keyOf(p)
    let entry = made.get(key)
    const shared = entry !== undefined
    if (!entry) {
      const nbitsOpts = {
        bits: o.bits, blockSize: o.blockSize, symmetric: o.symmetric, format: o.format, transposed: p.site.transposed, ...(o.signal ? { signal: o.signal } : {}),
      }
      const w = p.weight.data as Float32Array
      if (p.gather) {
        // The table [V, D] is W [K = D, N = V] stored transposed; always the MatMulNBits layout, rearranged per row.
        const qw = await quantizeNbits(w, p.k, p.n, { ...nbitsOpts, format: 'matmulnbits' })
        entry = { tensors: GATHER_FORMATS[o.format].tensors(qw, p.gather, fresh, p.site.weight), sqnrDb: qw.sqnrDb }
        for (const t of entry.tensors) g.initializers.set(t.name, t)
        made.set(key, entry)
      }
    }
    if (!entry) {
      const w = p.weight.data as Float32Array
      const nbitsOpts = {
        bits: o.bits, blockSize: o.blockSize, symmetric: o.symmetric, format: o.format, transposed: p.site.transposed, ...(o.signal ? { signal: o.signal } : {}),
      }
      const gq = hessians ? await quantizeGptq(hessians.get(key)!, w, p.k, p.n, { ...nbitsOpts, ...o.gptq }) : undefined
      const qw = gq ?? await quantizeNbits(w, p.k, p.n, nbitsOpts)
      entry = { tensors: writer.tensors(qw, spec, fresh, p.site.weight), sqnrDb: qw.sqnrDb, ...(gq ? { gptq: gq.gptq } : {}) }
      for (const t of entry.tensors) g.initializers.set(t.name, t)
      made.set(key, entry)
    }
    const before = p.k * p.n * 4
    const after = entry.tensors.reduce((s, t) => s + t.data.byteLength, 0)
    if (!shared) {
      bytesBefore += before
      bytesAfter += after
    }

    const nodes: Node[] = []
    if (p.gather) {
      nodes.push(...GATHER_FORMATS[o.format].nodes(entry.tensors, p.gather, p.node, p.label, fresh))
    } else if (p.site.bias) {
      // Gemm: Y = A·Ŵ + beta·C, the product under a fresh name and an Add writing Y.
      let c = p.site.bias.name
      if (p.scaledBias) {
        c = fresh(`${p.site.bias.name}_beta`)
        g.initializers.set(c, { ...p.scaledBias, name: c })
      }
      const product = fresh(`${spec.output}_matmul`)
      nodes.push(...writer.nodes(entry.tensors, { ...spec, output: product }, fresh))
      nodes.push({ name: `${p.label}_bias`, opType: 'Add', domain: '', inputs: [product, c], outputs: [spec.output], attributes: new Map() })
    } else {
      nodes.push(...writer.nodes(entry.tensors, spec, fresh))
    }
    replaced.set(p.node, nodes)
    const padded = p.gather ? 0 : Math.ceil(p.k / o.blockSize) * o.blockSize - p.k
    layers.push({
      node: p.label,
      opType: p.node.opType as WeightOnlyOpType,
      weight: p.site.weight,
      shape: [p.k, p.n],
      transposed: p.site.transposed,
      bits: o.bits,
      blockSize: o.blockSize,
      symmetric: o.symmetric,
      paddedRows: padded,
      bytesBefore: shared ? 0 : before,
      bytesAfter: shared ? 0 : after,
      sqnrDb: entry.sqnrDb,
      ...(entry.gptq && !shared ? { gptq: entry.gptq } : {}),
      ...(shared ? { sharedWeight: true } : {}),
      ...(p.site.bias ? { bias: p.scaledBias ? `beta=${p.site.bias.beta} folded into the added C` : 'C added after the product' } : {}),
    })
  }

  if (replaced.size > 0) {
    g.nodes = g.nodes.flatMap((n) => replaced.get(n) ?? [n])
    const dropped = pruneUnusedInitializers(g, planned.flatMap((p) => (p.scaledBias ? [p.site.weight, p.site.bias!.name] : [p.site.weight])))
    const kept = [...new Set(planned.map((p) => p.site.weight))].filter((w) => !dropped.includes(w) && g.initializers.has(w))
    if (kept.length > 0) notes.push(`float weights still read by other nodes are kept: ${kept.map((w) => q(w)).join(', ')}`)
    if (layers.some((l) => l.paddedRows > 0) && o.format === 'matmulnbits') {
      notes.push('K not a multiple of the block size: the last block of each column is padded with zeros (their code is the zero point), as ONNX Runtime\'s quantizer does')
    }
  }

  const report: WeightOnlyReport = {
    format: o.format,
    algorithm: o.algorithm,
    bits: o.bits,
    blockSize: o.blockSize,
    symmetric: o.symmetric,
    opsetBefore,
    opsetAfter: opsetVersion(model) ?? 0,
    layers,
    skipped,
    totals: {
      layers: layers.length,
      skipped: skipped.length,
      weightBytesBefore: bytesBefore,
      weightBytesAfter: bytesAfter,
      compression: bytesAfter > 0 ? bytesBefore / bytesAfter : 1,
      minSqnrDb: layers.length > 0 ? Math.min(...layers.map((l) => l.sqnrDb)) : Infinity,
    },
    notes,
  }
  return { model, report }
}
