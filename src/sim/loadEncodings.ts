// Applies an AIMET encodings file (0.6.1, 1.0.0 or 2.0.0) to a sim's quantizers: the counterpart of
// aimet-onnx's `load_encodings_to_sim` / `set_and_freeze_param_encodings`. This is how a model
// fine-tuned with AIMET QAT (or calibrated by aimet-onnx) reaches quantkit with its encodings.
//
// Grids: AIMET's files give offsets on a grid starting at 0; quantkit's Encoding keeps the grid it
// quantizes on. A signed entry (`is_sym`, or an int<N> `output_dtype`) with offset −2^(b−1) is
// symmetric on [−2^(b−1), 2^(b−1) − 1] (offset 0 here), with −(2^(b−1) − 1) strict symmetric, with 0
// unsigned symmetric (aimet-onnx's `load_to` infers strict and unsigned the same way); every other
// entry is asymmetric on [0, 2^b − 1] with the file's offset. An uint8 activation with zero point
// 128 from a 2.0.0 file (AIMET's `force_activation_as="unsigned"`) is the same grid as a symmetric
// int8 one and simulates identically.
import { perChannelAxis } from '../config/aimetRules.js'
import type { Encoding } from '../encoding.js'
import { QuantkitError } from '../errors.js'
import { attrInt } from '../graph/attributes.js'
import type { Model } from '../graph/model.js'
import type { EncodingsFileContents, FileEncoding } from '../export/readEncodingsFile.js'
import type { Quantizer, QuantizerSpec } from './quantizer.js'
import { blockAxes, blockGeometry, fromChannelMajor, lpbqEncodings, type LpbqScales } from './blockwise.js'

/** An encodings file that does not fit the sim (strict mode): names the tensor and what differs. */
export class EncodingsMismatchError extends QuantkitError {
  override name = 'EncodingsMismatchError'
}

export interface LoadEncodingsOptions {
  /** Mismatches are errors (default); with false they are skipped and listed in `warnings`. */
  strict?: boolean
  /**
   * The file may cover only some quantizers (default false): the others keep their settings and
   * need computeEncodings. Without it, an enabled quantizer the file does not cover is an error
   * (strict) or is disabled with a warning.
   */
  partial?: boolean
  /** Loaded quantizers keep their encodings through computeEncodings (default true). */
  freeze?: boolean
}

export interface LoadEncodingsResult {
  version: string
  /** Tensors whose quantizers took an encoding from the file. */
  loaded: string[]
  /** Quantizers the file turned on (they were disabled by the config). */
  enabled: string[]
  /** Entries deliberately not applied, with the reason (2.0.0's int32 biases and copies through data-movement ops). */
  ignored: { tensor: string; reason: string }[]
  /** Enabled quantizers the file does not cover (partial: they need computeEncodings; otherwise disabled). */
  uncovered: string[]
  /** Mismatches skipped because `strict` is false. */
  warnings: string[]
}

const Q = JSON.stringify

interface Planned {
  quantizers: Quantizer[]
  spec: Partial<QuantizerSpec>
  encodings?: Encoding[]
  lpbqScales?: LpbqScales
}

function grid(fe: FileEncoding): { qmin: number; qmax: number; offsets: number[]; symmetric: boolean; strict: boolean; unsigned: boolean } {
  const bw = fe.bitwidth
  const half = 2 ** (bw - 1)
  const all = (v: number) => fe.offset.every((o) => o === v)
  if (fe.signed && all(-half)) return { qmin: -half, qmax: half - 1, offsets: fe.offset.map(() => 0), symmetric: true, strict: false, unsigned: false }
  if (fe.signed && all(-(half - 1))) return { qmin: -(half - 1), qmax: half - 1, offsets: fe.offset.map(() => 0), symmetric: true, strict: true, unsigned: false }
  if (fe.signed && all(0)) return { qmin: 0, qmax: 2 ** bw - 1, offsets: fe.offset.map(() => 0), symmetric: true, strict: false, unsigned: true }
  return { qmin: 0, qmax: 2 ** bw - 1, offsets: fe.offset.map((o) => Math.round(o)), symmetric: false, strict: false, unsigned: false }
}

export function applyEncodings(model: Model, quantizers: readonly Quantizer[], file: EncodingsFileContents, opts: LoadEncodingsOptions = {}): LoadEncodingsResult {
  const strict = opts.strict ?? true
  const graph = model.graph
  const result: LoadEncodingsResult = { version: file.version, loaded: [], enabled: [], ignored: [], uncovered: [], warnings: [] }
  const mismatch = (msg: string) => {
    if (strict) throw new EncodingsMismatchError(msg)
    result.warnings.push(msg)
  }
  const byTensor = new Map<string, Quantizer[]>()
  for (const q of quantizers) byTensor.set(q.tensor, [...(byTensor.get(q.tensor) ?? []), q])
  const nodeByName = new Map(graph.nodes.map((n) => [n.name, n]))
  const producer = new Map<string, string>()
  for (const n of graph.nodes) for (const o of n.outputs) if (o) producer.set(o, n.opType)
  const exists = (t: string) => graph.initializers.has(t) || graph.inputs.some((i) => i.name === t) || producer.has(t)

  const plans: Planned[] = []
  const seen = new Set<string>()
  for (const fe of file.encodings) {
    const where = `encoding for ${Q(fe.name)}`
    if (seen.has(fe.name)) continue
    seen.add(fe.name)
    const qs = byTensor.get(fe.name)
    const is200 = file.version === '2.0.0'
    if (!qs) {
      if (!exists(fe.name)) mismatch(`${where}: the model has no tensor of that name`)
      else if (is200) result.ignored.push({ tensor: fe.name, reason: fe.bitwidth === 32 ? 'int32 bias (the sim keeps biases float, as aimet-onnx\'s does)' : 'encoding copied through a data-movement op; the sim has no quantizer there' })
      else mismatch(`${where}: the tensor has no quantizer in this sim (${producer.has(fe.name) ? `an output of ${producer.get(fe.name)}` : 'not quantizable'}); sim.quantizers lists them`)
      continue
    }
    const q0 = qs[0]!
    if (is200 && !qs.some((q) => q.enabled)) {
      if (q0.kind === 'param' && fe.bitwidth === 32) {
        result.ignored.push({ tensor: fe.name, reason: 'int32 bias (the sim keeps biases float, as aimet-onnx\'s does)' })
        continue
      }
      if (q0.kind !== 'param' && q0.note === 'grid-preserving op') {
        result.ignored.push({ tensor: fe.name, reason: `copied through a grid-preserving op (${q0.opType}); its input's quantizer already sets the grid` })
        continue
      }
    }
    if (fe.section === 'param' && q0.kind !== 'param') { mismatch(`${where}: listed as a param, but ${Q(fe.name)} is an activation in this sim`); continue }
    if (fe.section === 'activation' && q0.kind === 'param') { mismatch(`${where}: listed as an activation, but ${Q(fe.name)} is a param in this sim`); continue }

    if (fe.dtype === 'float') {
      if (fe.bitwidth !== 16) { mismatch(`${where}: float${fe.bitwidth} is not supported (float16 only)`); continue }
      plans.push({ quantizers: qs, spec: { dtype: 'float', bitwidth: 16, axis: undefined, blockSize: undefined, lpbq: undefined } })
      continue
    }
    const isBias = q0.kind === 'param' && q0.paramName === 'bias'
    const maxBits = isBias ? 32 : 16
    if (!Number.isInteger(fe.bitwidth) || fe.bitwidth < 2 || fe.bitwidth > maxBits) {
      mismatch(`${where}: bitwidth ${fe.bitwidth} is not supported for ${q0.kind === 'param' ? `param ${q0.paramName ?? ''}`.trim() : 'an activation'} (2 to ${maxBits})`)
      continue
    }
    if (fe.scale.some((s) => !(s > 0))) { mismatch(`${where}: scales must be positive`); continue }

    // Per-channel / per-block layout against the tensor.
    let axis: number | undefined
    let blockSize: number | undefined
    let order: number[] | undefined // file index → quantkit index
    let lpbqScales: LpbqScales | undefined
    let geometry: ReturnType<typeof blockGeometry> | undefined
    if (fe.granularity !== 'tensor') {
      const w = graph.initializers.get(fe.name)
      if (q0.kind !== 'param' || !w) { mismatch(`${where}: ${fe.granularity === 'block' ? 'per-block' : 'per-channel'} encodings are only for params; ${Q(fe.name)} is an activation`); continue }
      const node = nodeByName.get(q0.node)
      const rank = w.dims.length
      let ch = fe.granularity === 'channel' && fe.axis !== undefined ? fe.axis : perChannelAxis(q0.opType, { transB: node ? attrInt(node, 'transB', 0) === 1 : false })
      if (ch === undefined) { mismatch(`${where}: ${q0.opType} weights cannot be per-channel`); continue }
      if (ch < 0) ch += rank
      if (fe.granularity === 'channel') {
        if (fe.scale.length !== w.dims[ch]) { mismatch(`${where}: ${fe.scale.length} channels in the file, but the tensor has ${w.dims[ch]} on axis ${ch} (shape [${w.dims.join(', ')}])`); continue }
        axis = ch
      } else {
        const bs = fe.blockSize!
        const axes = blockAxes(q0.opType, rank, { transB: node ? attrInt(node, 'transB', 0) === 1 : false })
        if (!axes && fe.axis === undefined) { mismatch(`${where}: per-block encodings are not supported for a rank-${rank} ${q0.opType} weight`); continue }
        const b = fe.axis !== undefined ? (fe.axis + rank) % rank : axes!.blockAxis
        if (b > 1) { mismatch(`${where}: block axis ${b} is not supported (the block and channel axes must be 0 and 1; shape [${w.dims.join(', ')}])`); continue }
        if (!(bs > 0) || w.dims[b]! % bs !== 0) { mismatch(`${where}: block size ${bs} does not divide ${w.dims[b]} (axis ${b})`); continue }
        const g = blockGeometry(w.dims, b, bs)
        if (fe.scale.length !== g.channels * g.blocks) { mismatch(`${where}: ${fe.scale.length} block scales in the file, expected ${g.channels * g.blocks} (${g.channels} channels × ${g.blocks} blocks)`); continue }
        if (fe.lpbq && fe.lpbq.channelScales.length !== g.channels) { mismatch(`${where}: ${fe.lpbq.channelScales.length} LPBQ channel scales in the file, expected ${g.channels}`); continue }
        axis = b
        blockSize = bs
        geometry = g
        // 1.0.0 lists blocks channel by channel; quantkit (like 2.0.0) in AIMET's encoding shape.
        const index = fe.scale.map((_, i) => i)
        if (file.version !== '2.0.0') order = fromChannelMajor(g, index).reduce<number[]>((o, fileIdx, ours) => { o[fileIdx] = ours; return o }, [])
        if (fe.lpbq) {
          const ints = new Array<number>(fe.lpbq.intScales.length)
          fe.lpbq.intScales.forEach((n, i) => { ints[order ? order[i]! : i] = n })
          lpbqScales = { channelScales: fe.lpbq.channelScales.map((x) => Math.fround(x)), intScales: ints }
        }
      }
    }
    const g = grid(fe)
    const encodings = new Array<Encoding>(fe.scale.length)
    fe.scale.forEach((s, i) => {
      const scale = Math.fround(s)
      const offset = g.offsets[i]!
      encodings[order ? order[i]! : i] = {
        bitwidth: fe.bitwidth, scale, offset, qmin: g.qmin, qmax: g.qmax,
        min: (g.qmin + offset) * scale, max: (g.qmax + offset) * scale,
        symmetric: g.symmetric, strictSymmetric: g.strict, unsignedSymmetric: g.unsigned,
      }
    })
    plans.push({
      quantizers: qs,
      spec: {
        dtype: 'int', bitwidth: fe.bitwidth, symmetric: g.symmetric, strictSymmetric: g.strict, unsignedSymmetric: g.unsigned, axis, blockSize,
        lpbq: fe.lpbq && lpbqScales ? { decompressedBitwidth: fe.lpbq.decompressedBitwidth } : undefined,
      },
      // LPBQ: the block scales are recomputed from the two factors, in float32 as the runtime's
      // DequantizeLinear of the integer scales would.
      encodings: lpbqScales && geometry ? lpbqEncodings(geometry, lpbqScales, fe.bitwidth) : encodings,
      lpbqScales,
    })
  }

  const covered = new Set(plans.flatMap((p) => p.quantizers))
  const uncovered = quantizers.filter((q) => q.enabled && !covered.has(q))
  result.uncovered = [...new Set(uncovered.map((q) => q.tensor))]
  if (!opts.partial && uncovered.length > 0) {
    const list = result.uncovered.slice(0, 5).map((t) => Q(t)).join(', ') + (result.uncovered.length > 5 ? `, … (${result.uncovered.length} in all)` : '')
    mismatch(`the encodings file has no entry for ${list}; pass { partial: true } to calibrate those with computeEncodings`)
  }

  // Everything checked: now the quantizers change.
  for (const p of plans) {
    for (const q of p.quantizers) {
      if (!q.enabled) {
        q.enabled = true
        q.note = 'enabled by the encodings file'
        if (!result.enabled.includes(q.tensor)) result.enabled.push(q.tensor)
      }
      Object.assign(q.spec, p.spec)
      if (p.spec.axis === undefined) delete q.spec.axis
      if (p.spec.blockSize === undefined) delete q.spec.blockSize
      if (p.spec.lpbq === undefined) delete q.spec.lpbq
      q.encodings = p.encodings
      q.lpbqScales = p.lpbqScales
      q.frozen = opts.freeze ?? true
    }
    result.loaded.push(p.quantizers[0]!.tensor)
  }
  if (!opts.partial) {
    for (const q of uncovered) {
      q.enabled = false
      q.note = 'not in the encodings file'
    }
  }
  return result
}
