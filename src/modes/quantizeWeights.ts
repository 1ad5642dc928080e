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
//
// The numbers, and the 'qdq' file itself, come from QuantSim (docs/modes-architecture.md): this
// file decides which layers its writers can express and hands their weights to a sim (modeSim.ts).
import { ExportError } from '../export/qdqModel.js'
import { pruneUnusedInitializers } from '../graph/graphEdits.js'
import { cloneModel, opsetVersion, type Model, type Node } from '../graph/model.js'
import { allValueNames, uniqueName } from '../graph/names.js'
import { upgradeOpset } from '../graph/opset/upgradeOpset.js'
import { DataType } from '../onnx/elementType.js'
import { resolveModelSource, type ModelSource } from '../onnx/modelSource.js'
import type { Tensor } from '../onnx/tensor.js'
import type { CalibrationData } from '../sim/calibrationData.js'
import { callNative, callNativeAsync, native } from '../native.js'
import { blockGeometry, encodingsFromGrids, gridsOf } from '../sim/blockwise.js'
import type { QuantSim } from '../sim/quantSim.js'
import { accumulateHessians, quantizeGptq, type GptqHessian, type GptqLayerStats, type GptqOptions, type GptqWeights } from './gptq.js'
import { privateWeights, weightQuantizer, weightSim } from './modeSim.js'
import { unpackMatMulNBits, type NbitsWeights, type WeightBits, type WeightFormat } from './nbitsWeights.js'
import { FORMAT_NEEDS, MATMUL_NBITS, type ProductSpec } from './weightOnlyFormats.js'
import { GATHER_BLOCK_QUANTIZED, gatherUnsupported, type GatherSpec } from './weightOnlyGather.js'
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
  if (!(format in FORMAT_NEEDS)) throw new RangeError(`quantizeWeights: format must be 'matmulnbits' or 'qdq', got ${q(format)}`)
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
  const writer = FORMAT_NEEDS[o.format]
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

/** Encodings of one weight coded by GPTQ, handed to the sim: its grids and Ŵ (see quantizeWeights). */
async function handGptqToSim(sim: QuantSim, p: Planned, tensor: string, o: Resolved, hessian: GptqHessian): Promise<GptqWeights> {
  const w = sim.model.graph.initializers.get(tensor)!
  const gq = await quantizeGptq(hessian, w.data as Float32Array, p.k, p.n, {
    bits: o.bits, blockSize: o.blockSize, symmetric: o.symmetric, format: 'matmulnbits', transposed: p.site.transposed, ...(o.signal ? { signal: o.signal } : {}), ...o.gptq,
  })
  const shape = { k: p.k, n: p.n, bits: o.bits, blockSize: o.blockSize }
  const grids = unpackMatMulNBits(gq.data, gq.scales, gq.zeroPoints, shape)
  const q = weightQuantizer(sim, tensor)
  const g = blockGeometry(w.dims, q.spec.axis!, q.spec.blockSize!)
  // GPTQ chose codes, not only grids: the sim gets the grids frozen and Ŵ as the weight, which
  // its quantizer codes back to exactly GPTQ's codes ((c − z)·s / s rounds to c − z).
  sim.freezeEncodings(tensor, encodingsFromGrids(g, grids.scales, grids.zeroPoints, o.bits, o.symmetric))
  const hat = callNative(() => native.nbitsDequantizeMatmul(gq.data, gq.scales, gq.zeroPoints ?? null, p.k, p.n, o.bits, o.blockSize, p.site.transposed))
  sim.setInitializer({ ...w, data: hat })
  return gq
}

/** One weight coded on its sim quantizer's grids, packed for `layout` (in Rust: nbits.rs `quantize_with_grids`). */
async function packFromSim(sim: QuantSim, p: Planned, tensor: string, o: Resolved, layout: 'matmulnbits' | 'qdq' | 'gather'): Promise<NbitsWeights> {
  const q = weightQuantizer(sim, tensor)
  const w = sim.model.graph.initializers.get(tensor)!
  const { scales, zeroPoints } = gridsOf(blockGeometry(w.dims, q.spec.axis!, q.spec.blockSize!), q.encodings!)
  const r = (await callNativeAsync(() => native.nbitsPackAsync(
    w.data as Float32Array, p.k, p.n, p.site.transposed, o.bits, o.blockSize, o.symmetric, scales, zeroPoints, layout, o.signal))) as {
    data: Uint8Array; scales: Float32Array; zeroPoints?: Uint8Array | null; sqnrDb: number
  }
  return { data: r.data, scales: r.scales, ...(r.zeroPoints ? { zeroPoints: r.zeroPoints } : {}), sqnrDb: r.sqnrDb }
}

/**
 * Quantizes the weights of MatMul/Gemm nodes to `bits` with one scale (and, asymmetric, one zero
 * point) per `blockSize` weights along K, per output column. Returns a new model and a report.
 *
 * The numbers come from QuantSim (docs/modes-architecture.md): the weights this mode can write get
 * QuantSim's blocked parameter quantizers (`setBlockwise` with ONNX Runtime's block rule, partial
 * last blocks allowed), GPTQ hands its result to the sim (`freezeEncodings` + `setInitializer`),
 * and then format 'qdq' is the sim's own QDQ export, while 'matmulnbits' packs the sim's
 * quantizers as MatMulNBits / GatherBlockQuantized.
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

  // QuantSim: placement, blocked parameter quantizers and their encodings (modeSim.ts).
  const keys = planned.map(keyOf)
  let sim: QuantSim | undefined
  let tensorOf = new Map<string, string>()
  if (planned.length > 0) {
    const priv = privateWeights(model, planned.map((p, i) => ({ key: keys[i]!, node: p.node, slot: p.gather ? 0 : 1 })))
    tensorOf = priv.tensorOf
    if (priv.sharedWithFloat.length > 0) notes.push(`float weights still read by other nodes are kept: ${priv.sharedWithFloat.map((w) => q(w)).join(', ')}`)
    const made = await weightSim(model, tensorOf.values(), { gatherTables: planned.some((p) => p.gather) })
    sim = made.sim
    const keep: number[] = []
    planned.forEach((p, i) => {
      const t = tensorOf.get(keys[i]!)!
      if (made.unplaced.has(t)) skipped.push({ node: p.label, opType: p.node.opType, reason: `QuantSim placed no parameter quantizer on weight ${q(p.site.weight)}` })
      else keep.push(i)
    })
    planned = keep.map((i) => planned[i]!)
    const kept = keep.map((i) => keys[i]!)
    keys.length = 0
    keys.push(...kept)
  }
  const gptqOf = new Map<string, GptqWeights>()
  try {
    if (sim && planned.length > 0) {
      const blocked = sim.setBlockwise({
        opTypes: ['MatMul', 'Gemm', 'Gather'], tensors: [...new Set(keys.map((k) => tensorOf.get(k)!))],
        bitwidth: o.bits, blockSize: o.blockSize, symmetric: o.symmetric, rule: 'onnxruntime', partialBlocks: true, strict: true,
      })
      if (blocked.tensors.length !== new Set(keys).size) throw new Error(`internal: setBlockwise blocked ${blocked.tensors.length} weights, expected ${new Set(keys).size}`)
      for (const [i, p] of planned.entries()) {
        const h = hessians?.get(keys[i]!)
        if (h && !p.gather && !weightQuantizer(sim, tensorOf.get(keys[i]!)!).frozen) gptqOf.set(keys[i]!, await handGptqToSim(sim, p, tensorOf.get(keys[i]!)!, o, h))
      }
      await sim.computeEncodings([])
    }
    return await write({ model, sim, planned, keys, tensorOf, gptqOf, skipped, notes, o, opsetBefore })
  } finally {
    await sim?.close()
  }
}

interface WriteInput {
  model: Model
  sim: QuantSim | undefined
  planned: Planned[]
  keys: string[]
  tensorOf: Map<string, string>
  gptqOf: Map<string, GptqWeights>
  skipped: WeightOnlySkip[]
  notes: string[]
  o: Resolved
  opsetBefore: number
}

/** The writers: QuantSim's QDQ export (format 'qdq'), or MatMulNBits / GatherBlockQuantized packed from the sim's quantizers. */
async function write(c: WriteInput): Promise<QuantizeWeightsResult> {
  const { sim, planned, keys, tensorOf, gptqOf, skipped, notes, o } = c
  let model = c.model
  const g = model.graph
  const names = allValueNames(g)
  const fresh = (base: string) => {
    const name = uniqueName(g, base, names)
    names.add(name)
    return name
  }
  // One quantized copy per (weight, orientation), shared by every node that reads it.
  const made = new Map<string, { tensors: Tensor[]; bytes: number; sqnrDb: number; gptq?: GptqLayerStats }>()
  const layers: WeightOnlyLayer[] = []
  const replaced = new Map<Node, Node[]>()
  let bytesBefore = 0
  let bytesAfter = 0

  for (const [i, p] of planned.entries()) {
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
    const key = keys[i]!
    let entry = made.get(key)
    const shared = entry !== undefined
    if (!entry) {
      const tensor = tensorOf.get(key)!
      const gq = gptqOf.get(key)
      // 'qdq': the file is QuantSim's export (below); this pack only measures the layer (SQNR, bytes).
      const layout = o.format === 'qdq' ? 'qdq' : p.gather ? 'gather' : 'matmulnbits'
      const qw = await packFromSim(sim!, p, tensor, o, layout)
      const tensors = o.format === 'qdq' ? []
        : p.gather ? GATHER_BLOCK_QUANTIZED.tensors(qw, p.gather, fresh, p.site.weight) : MATMUL_NBITS.tensors(qw, spec, fresh, p.site.weight)
      for (const t of tensors) g.initializers.set(t.name, t)
      // GPTQ's SQNR is against the float weight (the sim now holds Ŵ).
      entry = { tensors, bytes: qw.data.byteLength + qw.scales.byteLength + (qw.zeroPoints?.byteLength ?? 0), sqnrDb: gq?.sqnrDb ?? qw.sqnrDb, ...(gq ? { gptq: gq.gptq } : {}) }
      made.set(key, entry)
    }
    const before = p.k * p.n * 4
    const after = entry.bytes
    if (!shared) {
      bytesBefore += before
      bytesAfter += after
    }

    if (o.format === 'matmulnbits') {
      const nodes: Node[] = []
      if (p.gather) {
        nodes.push(...GATHER_BLOCK_QUANTIZED.nodes(entry.tensors, p.gather, p.node, p.label))
      } else if (p.site.bias) {
        // Gemm: Y = A·Ŵ + beta·C, the product under a fresh name and an Add writing Y.
        let cName = p.site.bias.name
        if (p.scaledBias) {
          cName = fresh(`${p.site.bias.name}_beta`)
          g.initializers.set(cName, { ...p.scaledBias, name: cName })
        }
        const product = fresh(`${spec.output}_matmul`)
        nodes.push(...MATMUL_NBITS.nodes(entry.tensors, { ...spec, output: product }, fresh))
        nodes.push({ name: `${p.label}_bias`, opType: 'Add', domain: '', inputs: [product, cName], outputs: [spec.output], attributes: new Map() })
      } else {
        nodes.push(...MATMUL_NBITS.nodes(entry.tensors, spec, fresh))
      }
      replaced.set(p.node, nodes)
    }
    const padded = p.gather || o.format === 'qdq' ? 0 : Math.ceil(p.k / o.blockSize) * o.blockSize - p.k
    const bias = !p.site.bias ? undefined
      : o.format === 'qdq' ? 'Gemm kept: its B is the DequantizeLinear output, C and beta as they were'
        : p.scaledBias ? `beta=${p.site.bias.beta} folded into the added C` : 'C added after the product'
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
      ...(bias ? { bias } : {}),
    })
  }

  if (o.format === 'qdq' && sim && planned.length > 0) {
    // QuantSim's export: a blocked DequantizeLinear on each quantized weight, read by the original
    // MatMul / Gemm / Gather; float weights no node reads any more are dropped.
    model = sim.qdqModel('export', FORMAT_NEEDS.qdq.minOpset, { omitZeroPoints: true }).model
  } else if (replaced.size > 0) {
    g.nodes = g.nodes.flatMap((n) => replaced.get(n) ?? [n])
    pruneUnusedInitializers(g, planned.flatMap((p, i) => [tensorOf.get(keys[i]!)!, ...(p.scaledBias ? [p.site.bias!.name] : [])]))
    if (layers.some((l) => l.paddedRows > 0)) {
      notes.push('K not a multiple of the block size: the last block of each column is padded with zeros (their code is the zero point), as ONNX Runtime\'s quantizer does')
    }
  }

  const report: WeightOnlyReport = {
    format: o.format,
    algorithm: o.algorithm,
    bits: o.bits,
    blockSize: o.blockSize,
    symmetric: o.symmetric,
    opsetBefore: c.opsetBefore,
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
