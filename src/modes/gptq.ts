// GPTQ rounding for weight-only quantization (docs/weight-only.md, "Data-aware rounding: GPTQ").
// The TypeScript side only taps and routes: the model runs in onnxruntime-node on a worker
// (OrtRunner) with the input of every quantized MatMul/Gemm as a graph output, batch by batch, and
// each batch's inputs go straight into a Rust accumulator of Σ xᵀx per input tensor
// (crates/quantkit-core/src/gptq.rs), then are dropped: memory is one batch's layer inputs plus
// K² f64 per distinct input, whatever the number of samples. The solve itself is in Rust too.
//
// One pass over the float model: every layer's Hessian comes from FP32 activations (not from the
// outputs of already-quantized earlier layers, as the paper's sequential variant does).
import { availableParallelism } from 'node:os'
import { AbortError, CalibrationError } from '../errors.js'
import { addGraphOutput } from '../graph/graphEdits.js'
import { cloneModel, type Model } from '../graph/model.js'
import { callNative, callNativeAsync, native } from '../native.js'
import { DataType } from '../onnx/elementType.js'
import { modelToBytes } from '../onnx/saveModel.js'
import { batchSize, forEachBatch, type CalibrationData } from '../sim/calibrationData.js'
import { toPlainFeeds, type Feeds, type PlainTensor } from '../sim/feeds.js'
import { OrtRunner } from '../sim/ortRunner.js'
import type { NbitsOptions, NbitsWeights } from './nbitsWeights.js'

/** The napi class (one layer input's running Σ xᵀx). */
export type GptqHessian = InstanceType<typeof native.NativeGptqHessian>

export interface GptqOptions {
  /** λ = dampPercent · mean(diag H) added to diag H (the paper's `percdamp`). Default 0.01. */
  dampPercent?: number
  /** Also measure ‖X(W − Ŵ)‖²/n for GPTQ and for round-to-nearest per layer (≈ 2·K²·N extra flops). Default true. */
  measureError?: boolean
  /** ORT threads while tapping the layer inputs; default: the machine's parallelism. */
  intraOpNumThreads?: number
}

/** What the solve measured for one weight (report.layers[].gptq). */
export interface GptqLayerStats {
  /** Calibration rows (samples × positions) behind the Hessian. */
  rows: number
  /** ‖X(W − Ŵ)‖²/n over those rows, with GPTQ's Ŵ and with round-to-nearest's. */
  outputError?: number
  outputErrorRtn?: number
  /** Inputs that were zero in every row: their weights were set to 0 (as the paper's code does). */
  deadInputs: number
  damp: number
  /** Wall time of the Rust solve (Cholesky, inverse, blocked updates). */
  solveMs: number
}

export interface GptqWeights extends NbitsWeights {
  gptq: GptqLayerStats
}

/** One MatMul/Gemm to solve for: its weight key (weight + orientation), its input tensor, K. */
export interface GptqSite {
  key: string
  input: string
  k: number
  /** For messages. */
  node: string
}

const q = JSON.stringify

/** What the binding's quantizeAsync resolves to (its generated type says `unknown`). */
interface NativeGptqWeights {
  data: Uint8Array
  scales: Float32Array
  zeroPoints?: Uint8Array | null
  sqnrDb: number
  outputError?: number | null
  outputErrorRtn?: number | null
  deadInputs: number
  damp: number
  rows: number
  solveMs: number
}

function abortError(signal: AbortSignal): Error {
  return new AbortError('GPTQ calibration aborted', { cause: signal.reason })
}

/**
 * Runs `data` through `model` and returns one Hessian accumulator per site key. Sites reading the
 * same tensor share one accumulator (Q, K and V projections of one LayerNorm output); a weight read
 * by nodes with different inputs gets the sum of their accumulators.
 */
export async function accumulateHessians(
  model: Model,
  sites: readonly GptqSite[],
  data: CalibrationData,
  opts: GptqOptions & { signal?: AbortSignal } = {},
): Promise<Map<string, GptqHessian>> {
  const { signal } = opts
  if (signal?.aborted) throw abortError(signal)
  const g = model.graph
  const perInput = new Map<string, GptqHessian>()
  for (const s of sites) {
    const h = perInput.get(s.input)
    if (h && h.k !== s.k) throw new CalibrationError(`GPTQ: tensor ${q(s.input)} feeds layers with K = ${h.k} and K = ${s.k} (node ${q(s.node)})`, s.input)
    if (!h) perInput.set(s.input, callNative(() => new native.NativeGptqHessian(s.k)))
  }
  const graphInputs = new Set(g.inputs.map((v) => v.name).filter((n) => !g.initializers.has(n)))
  const constants = [...perInput.keys()].filter((n) => g.initializers.has(n) && !graphInputs.has(n))
  const taps = [...perInput.keys()].filter((n) => !graphInputs.has(n) && !constants.includes(n))

  const update = async (name: string, t: Pick<PlainTensor, 'type' | 'data'>, batch: number) => {
    if (t.type !== 'float32') throw new CalibrationError(`GPTQ: tensor ${q(name)} is ${t.type}, not float32`, name)
    try {
      await callNativeAsync(() => perInput.get(name)!.updateAsync(t.data as Float32Array, signal))
    } catch (err) {
      if (signal?.aborted) throw abortError(signal)
      const m = err instanceof Error ? err.message : String(err)
      throw new CalibrationError(`GPTQ: tensor ${q(name)} in calibration batch ${batch}: ${m}`, name, { cause: err })
    }
  }

  let runner: OrtRunner | undefined
  if (taps.length > 0) {
    const tapped = cloneModel(model)
    // Only the taps as outputs: ORT computes what they need and nothing else.
    tapped.graph.outputs = []
    for (const name of taps) addGraphOutput(tapped.graph, name)
    runner = await OrtRunner.create(modelToBytes(tapped), {
      graphOptimizationLevel: 'disabled', // the float graph as written: optimisations may fuse tensors away
      intraOpNumThreads: opts.intraOpNumThreads ?? availableParallelism(),
      name: 'the model tapped for GPTQ',
    })
  }
  let batches = 0
  try {
    await forEachBatch(data, async (feeds: Feeds) => {
      if (signal?.aborted) throw abortError(signal)
      const plain = toPlainFeeds(feeds, `calibration batch ${batches}`)
      if (batchSize(feeds) === 0) return
      const outs = runner ? await runner.run(plain, { transferInputs: false }) : {}
      for (const name of perInput.keys()) {
        if (constants.includes(name)) continue
        const t = outs[name] ?? plain[name]
        if (!t) throw new CalibrationError(`GPTQ: calibration batch ${batches} has no input ${q(name)}`, name)
        await update(name, t, batches)
      }
      batches++
    })
  } finally {
    await runner?.close()
  }
  if (signal?.aborted) throw abortError(signal)
  if (batches === 0) throw new CalibrationError('GPTQ: calibration data is empty: give at least one batch of feeds')
  // A constant input (an initializer) is the same every batch: its rows once are the same Hessian.
  for (const name of constants) {
    const t = g.initializers.get(name)!
    if (t.dataType !== DataType.FLOAT) throw new CalibrationError(`GPTQ: initializer ${q(name)} feeds a quantized layer but is not float32`, name)
    await update(name, { type: 'float32', data: t.data as Float32Array }, 0)
  }

  const byKey = new Map<string, GptqHessian>()
  const inputsOf = new Map<string, Set<string>>()
  for (const s of sites) inputsOf.set(s.key, (inputsOf.get(s.key) ?? new Set()).add(s.input))
  for (const [key, inputs] of inputsOf) {
    const list = [...inputs].map((n) => perInput.get(n)!)
    if (list.length === 1) {
      byKey.set(key, list[0]!)
      continue
    }
    const sum = callNative(() => new native.NativeGptqHessian(list[0]!.k))
    for (const h of list) callNative(() => sum.merge(h))
    byKey.set(key, sum)
  }
  return byKey
}

/**
 * GPTQ of W [K, N] (row-major float32; [N, K] with `transposed`) with a layer's Hessian, packed as
 * `quantizeNbits` packs round-to-nearest. Borrows `w` until the promise settles.
 */
export async function quantizeGptq(
  hessian: GptqHessian,
  w: Float32Array,
  k: number,
  n: number,
  opts: NbitsOptions & GptqOptions,
): Promise<GptqWeights> {
  if (hessian.k !== k) throw new RangeError(`quantizeGptq: the Hessian is for K = ${hessian.k}, the weight has K = ${k}`)
  if (w.length !== k * n) throw new TypeError(`w: has ${w.length} elements, expected K·N = ${k}·${n}`)
  const damp = opts.dampPercent ?? 0.01
  if (!(damp > 0) || !Number.isFinite(damp)) throw new RangeError(`gptq.dampPercent: expected a finite number > 0, got ${String(opts.dampPercent)}`)
  const r = (await callNativeAsync(() =>
    hessian.quantizeAsync(w, n, opts.transposed ?? false, opts.bits, opts.blockSize, opts.symmetric, opts.format, damp, opts.measureError ?? true, opts.signal))) as NativeGptqWeights
  return {
    data: r.data,
    scales: r.scales,
    ...(r.zeroPoints ? { zeroPoints: r.zeroPoints } : {}),
    sqnrDb: r.sqnrDb,
    gptq: {
      rows: r.rows,
      ...(r.outputError != null ? { outputError: r.outputError } : {}),
      ...(r.outputErrorRtn != null ? { outputErrorRtn: r.outputErrorRtn } : {}),
      deadInputs: r.deadInputs,
      damp: r.damp,
      solveMs: r.solveMs,
    },
  }
}
