// applyAdaround: AdaRound (Nagel et al. 2020) as aimet-onnx 2.42's apply_adaround does it
// (aimet_onnx/adaround/adaround_weight.py, adaround_optimizer.py). Layer by layer in topological
// order, each Conv/ConvTranspose/Gemm/MatMul weight's rounding (up or down on its quantizer's grid) is learned so
// that the layer's output matches the float model's:
// - inputs: the layer's input in the sim with weight quantizers on (the layers before it already
//   AdaRounded) and activation quantizers as aimet-onnx 2.42 leaves them (calibrated ones on, others
//   off: its disable_quantizers context is never entered);
// - target: the layer's output in a copy of the float model taken when the call starts (sim.model's
//   weights change layer by layer); both pass through the activation that follows the layer (Relu,
//   Clip, Sigmoid or Tanh read by it alone; aimet's module_act_func_pair, see docs/adaround.md);
// - the optimisation itself (rectified sigmoid, annealed regulariser, Adam) runs in Rust
//   (crates/quantkit-core/src/adaround.rs) on the libuv pool.
// The result goes into the sim as weights that sit on the grid plus frozen weight encodings, so
// export writes exactly the learned integers. See docs/adaround.md.
import type { Encoding } from '../encoding.js'
import { AbortError, QuantkitError } from '../errors.js'
import { attrFloat, attrInt, attrInts } from '../graph/attributes.js'
import { cloneModel, type Model } from '../graph/model.js'
import { buildQdqModel } from '../export/qdqModel.js'
import { callNativeAsync, native } from '../native.js'
import type { Tensor } from '../onnx/tensor.js'
import { forEachBatch, type CalibrationData } from '../sim/calibrationData.js'
import type { Feeds } from '../sim/feeds.js'
import type { QuantSim } from '../sim/quantSim.js'
import type { Quantizer } from '../sim/quantizer.js'
import type { Float32Tensor } from '../layers.js'
import { collectTensors } from './layerActivations.js'
import { convAttributes, findLayerSites, type LayerSite } from './layerSites.js'

export class AdaroundError extends QuantkitError {
  override name = 'AdaroundError'
}

export interface AdaroundProgress {
  /** The node being optimised, its index among the layers, and how many there are. */
  layer: string
  index: number
  layers: number
  iteration: number
  iterations: number
}

export interface AdaroundOptions {
  /** Batches of `data` to cache and optimise on (default: all of them). */
  numBatches?: number
  /** Adam steps per layer; default 10,000 (aimet's). */
  numIterations?: number
  /** λ of the rounding regulariser; default 0.01. */
  regParam?: number
  /** β annealed from the first to the second value (cosine); default [20, 2]. */
  betaRange?: [number, number]
  /** Fraction of the iterations without the regulariser; default 0.2. */
  warmStart?: number
  /** Samples per iteration; default 32. */
  batchSize?: number
  /** Node names to optimise (default: every Conv, ConvTranspose, Gemm and MatMul with an enabled int weight quantizer). */
  layers?: string[]
  /** Apply the activation (Relu, Clip, Sigmoid, Tanh) that alone reads a layer's output to both outputs before the loss (aimet does); default true. */
  applyActivation?: boolean
  /** Bytes of cached inputs and targets per layer before an error (default 1 GiB). */
  maxCacheBytes?: number
  /**
   * Activation quantizers for the cached inputs: 'asCalibrated' (default, as aimet-onnx 2.42 ends up
   * doing) keeps those that had encodings when the call started; 'off' disables them all (inputs of
   * a weights-only sim, what aimet's code intends).
   */
  inputActivations?: 'asCalibrated' | 'off'
  /** Seed of the mini-batch sampling (default 0: runs are reproducible). */
  seed?: number
  onProgress?: (p: AdaroundProgress) => void
  signal?: AbortSignal
}

export interface AdaroundLayer {
  node: string
  opType: string
  weight: string
  samples: number
  /** The reconstruction loss (aimet's: ‖Δ‖² over dimension 1, mean over the rest) on every cached sample. */
  lossNearest: number
  lossAdaround: number
  /** Weights whose code differs from round-to-nearest's, and how many weights there are. */
  flips: number
  weights: number
  activation: AdaroundActivation
  /** Wall time of the layer; of it, caching its inputs and targets (ORT), and the Rust loop. */
  ms: number
  tapMs: number
  optimiseMs: number
  /** The loop's split: the layer's forward and loss, its weight gradient, the rest (Adam, …). */
  forwardMs: number
  backwardMs: number
  updateMs: number
}

export interface AdaroundReport {
  layers: AdaroundLayer[]
  skipped: { node: string; reason: string }[]
  warnings: string[]
  ms: number
}

const OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])

/** The function applied to both outputs before the loss (Clip with the node's own bounds). */
export type AdaroundActivation = 'none' | 'relu' | 'clip' | 'sigmoid' | 'tanh'

type Site = LayerSite<'Conv' | 'ConvTranspose' | 'Gemm' | 'MatMul'>

function checkOptions(o: AdaroundOptions): Required<Pick<AdaroundOptions, 'numIterations' | 'regParam' | 'betaRange' | 'warmStart' | 'batchSize'>> {
  const numIterations = o.numIterations ?? 10_000
  const regParam = o.regParam ?? 0.01
  const betaRange = o.betaRange ?? [20, 2]
  const warmStart = o.warmStart ?? 0.2
  const batchSize = o.batchSize ?? 32
  if (!Number.isInteger(numIterations) || numIterations < 1) throw new RangeError(`numIterations: expected a positive integer, got ${String(numIterations)}`)
  if (!(regParam >= 0 && Number.isFinite(regParam))) throw new RangeError(`regParam: expected a finite number ≥ 0, got ${String(regParam)}`)
  if (!Array.isArray(betaRange) || betaRange.length !== 2 || !betaRange.every((b) => Number.isFinite(b) && b > 0)) throw new RangeError(`betaRange: expected two positive numbers, got ${JSON.stringify(betaRange)}`)
  if (!(warmStart >= 0 && warmStart < 1)) throw new RangeError(`warmStart: expected a number in [0, 1), got ${String(warmStart)}`)
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize: expected a positive integer, got ${String(batchSize)}`)
  if (o.numBatches !== undefined && !(Number.isInteger(o.numBatches) && o.numBatches >= 1)) throw new RangeError(`numBatches: expected a positive integer, got ${String(o.numBatches)}`)
  return { numIterations, regParam, betaRange, warmStart, batchSize }
}

function abortError(signal: AbortSignal): AbortError {
  return new AbortError('AdaRound aborted', { cause: signal.reason })
}

/** The first `numBatches` batches, kept: every layer runs the model over the same data. */
async function cacheBatches(data: CalibrationData, numBatches: number | undefined): Promise<Feeds[]> {
  const batches: Feeds[] = []
  const STOP = Symbol('enough')
  try {
    await forEachBatch(data, async (feeds) => {
      if (numBatches !== undefined && batches.length >= numBatches) throw STOP
      batches.push(feeds)
    })
  } catch (e) {
    if (e !== STOP) throw e
  }
  if (batches.length === 0) throw new AdaroundError('AdaRound: the data is empty; give at least one batch of feeds')
  return batches
}

/** Batches of one tensor as one [n, …] tensor. */
function concat(parts: Float32Tensor[], name: string): Float32Tensor {
  const rest = parts[0]!.dims.slice(1)
  const n = parts.reduce((s, p) => s + p.dims[0]!, 0)
  for (const p of parts) {
    if (p.dims.length !== rest.length + 1 || p.dims.slice(1).some((d, i) => d !== rest[i])) {
      throw new AdaroundError(`AdaRound: tensor ${JSON.stringify(name)} changes shape between batches (${JSON.stringify(parts[0]!.dims)} vs ${JSON.stringify(p.dims)})`)
    }
  }
  if (parts.length === 1) return parts[0]!
  const data = new Float32Array(parts.reduce((s, p) => s + p.data.length, 0))
  let at = 0
  for (const p of parts) { data.set(p.data, at); at += p.data.length }
  return { data, dims: [n, ...rest] }
}

function nativeConv(site: Site) {
  const a = convAttributes(site.node)
  const list = (v: readonly number[] | undefined) => (v ? [...v] : undefined)
  const conv = { strides: list(a.strides), pads: list(a.pads), dilations: list(a.dilations), group: a.group, autoPad: a.autoPad, kernelShape: list(attrInts(site.node, 'kernel_shape')) }
  if (site.kind !== 'ConvTranspose') return conv
  // output_shape may be the full [N, M, …] shape; the kernel takes the spatial sizes (N varies here).
  const spatial = site.weight.dims.length - 2
  const outputShape = attrInts(site.node, 'output_shape')
  return { ...conv, outputPadding: list(attrInts(site.node, 'output_padding')), outputShape: outputShape ? [...outputShape.slice(-spatial)] : undefined }
}

interface FollowingActivation { activation: AdaroundActivation; clipMin?: number; clipMax?: number }

/** Clip's bounds: inputs 1 and 2 (constants) from opset 11, attributes min/max before; undefined when not constant. */
function clipBounds(model: Model, node: Model['graph']['nodes'][number]): { min: number; max: number } | undefined {
  if (node.inputs.length <= 1) return { min: attrFloat(node, 'min', -Infinity), max: attrFloat(node, 'max', Infinity) }
  const bound = (name: string | undefined, dflt: number): number | undefined => {
    if (!name) return dflt
    const t = model.graph.initializers.get(name)
    return t && t.dataType === 1 && t.data.length === 1 ? Number(t.data[0]) : undefined
  }
  const min = bound(node.inputs[1], -Infinity)
  const max = bound(node.inputs[2], Infinity)
  return min === undefined || max === undefined ? undefined : { min, max }
}

/**
 * The activation that alone reads the layer's output, if it is one aimet applies (Relu, Clip,
 * Sigmoid, Tanh; aimet also lists PRelu and Softmax, see docs/adaround.md).
 */
function followingActivation(model: Model, site: Site): FollowingActivation {
  const out = site.node.outputs[0]!
  const readers = model.graph.nodes.filter((n) => n.inputs.includes(out))
  const isOutput = model.graph.outputs.some((o) => o.name === out)
  const none: FollowingActivation = { activation: 'none' }
  if (isOutput || readers.length !== 1) return none
  const r = readers[0]!
  if (r.domain !== '' && r.domain !== 'ai.onnx') return none
  switch (r.opType) {
    case 'Relu': return { activation: 'relu' }
    case 'Sigmoid': return { activation: 'sigmoid' }
    case 'Tanh': return { activation: 'tanh' }
    case 'Clip': {
      const b = clipBounds(model, r)
      return b ? { activation: 'clip', clipMin: b.min, clipMax: b.max } : none
    }
    default: return none
  }
}

/**
 * AdaRound on the sim's Conv, Gemm and MatMul weights (see the file comment and docs/adaround.md).
 * Calibrates the sim first when its weight quantizers have no encodings. An abort or error leaves
 * the sim's weights and encodings as they were before the call.
 */
export async function applyAdaround(sim: QuantSim, data: CalibrationData, opts: AdaroundOptions = {}): Promise<AdaroundReport> {
  const start = performance.now()
  const o = checkOptions(opts)
  const { signal } = opts
  if (signal?.aborted) throw abortError(signal)
  const report: AdaroundReport = { layers: [], skipped: [], warnings: [], ms: 0 }
  const { sites, skipped } = findLayerSites(sim.model, opts.layers, { convTranspose: true })
  report.skipped.push(...skipped)
  if (opts.layers) {
    const found = new Set([...sites.map((s) => s.node.name), ...skipped.map((s) => s.node)])
    const missing = opts.layers.filter((n) => !found.has(n))
    if (missing.length) throw new AdaroundError(`AdaRound: no node named ${missing.map((n) => JSON.stringify(n)).join(', ')} in the model`)
  }
  const weightQuantizer = (site: Site): Quantizer | undefined =>
    sim.quantizers.find((q) => q.kind === 'param' && q.node === site.node.name && q.tensor === site.weight.name)
  const readers = new Map<string, number>()
  for (const n of sim.model.graph.nodes) for (const i of new Set(n.inputs)) readers.set(i, (readers.get(i) ?? 0) + 1)
  const targets: { site: Site; q: Quantizer }[] = []
  for (const site of sites) {
    if (!OPS.has(site.node.opType)) continue
    const q = weightQuantizer(site)
    const skip = (reason: string) => {
      if (opts.layers) throw new AdaroundError(`AdaRound: weight ${JSON.stringify(site.weight.name)} of ${JSON.stringify(site.node.name)}: ${reason}`)
      report.skipped.push({ node: site.node.name, reason })
    }
    if (!q) { skip('has no quantizer'); continue }
    if (!q.enabled) { skip('its quantizer is disabled'); continue }
    if (q.spec.dtype !== 'int') { skip(`its quantizer is ${q.spec.dtype}, not int`); continue }
    if (q.spec.blockSize !== undefined) { skip('blockwise weights are not supported yet'); continue }
    if ((readers.get(site.weight.name) ?? 0) > 1) { skip('the weight is shared by several nodes (aimet skips these too)'); continue }
    if (site.kind === 'Gemm' && attrFloat(site.node, 'beta', 1) !== 1 && site.bias) { skip('Gemm with beta ≠ 1 and a bias'); continue }
    targets.push({ site, q })
  }
  if (targets.length === 0) {
    report.warnings.push('AdaRound: the model has no Conv, ConvTranspose, Gemm or MatMul weight to optimise')
    report.ms = performance.now() - start
    return report
  }

  const batches = await cacheBatches(data, opts.numBatches)
  // Activation quantizers that are calibrated now stay on for the cached inputs (aimet-onnx 2.42's
  // `disable_quantizers(...) and TemporaryDirectory()` never disables them); uncalibrated ones are
  // pass-through there (OpMode.updateStats), so off here, even after the computeEncodings below.
  const calibratedActivations = new Set(sim.quantizers.filter((x) => x.kind !== 'param' && x.enabled && x.encodings?.length))
  const inputActivations = opts.inputActivations ?? 'asCalibrated'
  if (targets.some(({ q }) => !q.encodings?.length)) await sim.computeEncodings(batches, { signal })
  for (const { q } of targets) {
    if (!q.encodings?.length) throw new AdaroundError(`AdaRound: weight ${JSON.stringify(q.tensor)} has no encoding after computeEncodings`)
  }

  // Targets come from the float model as it is now: sim.model's weights are replaced layer by layer
  // below, and a target computed from AdaRounded upstream weights would ask each layer to copy the
  // upstream error instead of compensating it (aimet's fp32_model is a copy taken here too).
  const fp32Model = cloneModel(sim.model)
  // What to restore when the call does not complete.
  const saved = targets.map(({ site, q }) => ({ q, weight: site.weight, encodings: q.encodings, frozen: q.frozen }))
  const tapOpts = { numBatches: batches.length, signal, purpose: 'AdaRound', maxBytes: opts.maxCacheBytes }
  try {
    for (const [index, { site, q }] of targets.entries()) {
      if (signal?.aborted) throw abortError(signal)
      const t0 = performance.now()
      const name = site.node.name
      // Inputs from the sim (earlier layers already AdaRounded), activation quantizers as above.
      const inputSim = sim.quantizers.map((x) => (x.kind === 'param' || (inputActivations === 'asCalibrated' && calibratedActivations.has(x)) ? x : { ...x, enabled: false }))
      const { model: qModel } = buildQdqModel(sim.model, inputSim, { purpose: 'simulation' })
      const xs = concat((await collectTensors(qModel, [site.input], batches, tapOpts)).get(site.input)!, site.input)
      const out = site.node.outputs[0]!
      const ys = concat((await collectTensors(fp32Model, [out], batches, tapOpts)).get(out)!, out)
      const t1 = performance.now()
      const encodings = q.encodings!
      const following = opts.applyActivation === false ? { activation: 'none' as const } : followingActivation(sim.model, site)
      const activation = following.activation
      const control = new native.AdaroundControl()
      const onAbort = () => control.cancel()
      signal?.addEventListener('abort', onAbort, { once: true })
      const timer = opts.onProgress
        ? setInterval(() => opts.onProgress!({ layer: name, index, layers: targets.length, iteration: control.iterations, iterations: o.numIterations }), 250)
        : undefined
      let r
      try {
        r = (await callNativeAsync(() => native.adaroundLayerAsync({
          opType: site.kind,
          conv: site.kind === 'Conv' || site.kind === 'ConvTranspose' ? nativeConv(site) : undefined,
          gemm: site.kind === 'Gemm' ? { alpha: attrFloat(site.node, 'alpha', 1), beta: attrFloat(site.node, 'beta', 1), transA: false, transB: attrInt(site.node, 'transB', 0) !== 0 } : undefined,
          x: xs.data as Float32Array,
          xShape: [...xs.dims],
          w: site.weight.data as Float32Array,
          wShape: [...site.weight.dims],
          bias: site.bias?.data as Float32Array | undefined,
          biasShape: site.bias ? [...site.bias.dims] : undefined,
          y: ys.data as Float32Array,
          scale: Float32Array.from(encodings, (e) => e.scale),
          offset: Float32Array.from(encodings, (e) => e.offset),
          qmin: encodings[0]!.qmin,
          qmax: encodings[0]!.qmax,
          axis: q.spec.axis,
          iterations: o.numIterations,
          regParam: o.regParam,
          betaStart: o.betaRange[0],
          betaEnd: o.betaRange[1],
          warmStart: o.warmStart,
          batchSize: o.batchSize,
          activation,
          clipMin: following.clipMin,
          clipMax: following.clipMax,
          seed: opts.seed ?? 0,
        }, control))) as { codes: Int32Array; weights: Float32Array; lossNearest: number; lossAdaround: number; flips: number; millis: number; forwardMs: number; backwardMs: number; updateMs: number }
      } catch (e) {
        if (signal?.aborted) throw abortError(signal)
        throw new AdaroundError(`AdaRound of ${JSON.stringify(name)} (weight ${JSON.stringify(q.tensor)}) failed: ${(e as Error).message}`, { cause: e })
      } finally {
        if (timer) clearInterval(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      // Freeze first: setInitializer would otherwise recalibrate the quantizer from the new values.
      sim.freezeEncodings(q.tensor, encodings as Encoding[])
      const tensor: Tensor = { ...site.weight, data: r.weights }
      sim.setInitializer(tensor)
      opts.onProgress?.({ layer: name, index, layers: targets.length, iteration: o.numIterations, iterations: o.numIterations })
      report.layers.push({
        node: name,
        opType: site.kind,
        weight: q.tensor,
        samples: xs.dims[0]!,
        lossNearest: r.lossNearest,
        lossAdaround: r.lossAdaround,
        flips: r.flips,
        weights: r.weights.length,
        activation,
        ms: performance.now() - t0,
        tapMs: t1 - t0,
        optimiseMs: r.millis,
        forwardMs: r.forwardMs,
        backwardMs: r.backwardMs,
        updateMs: r.updateMs,
      })
    }
  } catch (e) {
    for (const s of saved) {
      s.q.frozen = s.frozen
      s.q.encodings = s.encodings
      if (sim.model.graph.initializers.get(s.weight.name) !== s.weight) {
        s.q.frozen = true // keep the saved encodings through setInitializer
        sim.setInitializer(s.weight)
        s.q.frozen = s.frozen
      }
    }
    throw e
  }
  report.ms = performance.now() - start
  return report
}
