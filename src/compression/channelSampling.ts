// The data channel pruning reconstructs weights on, as AIMET's DataSubSampler gathers it: for each
// pruned Conv, `samplesPerImage` random output positions per image, the layer input's receptive
// field at each (im2col of just those positions) and the original layer's output there (the
// target). Images are limited to ⌈maxSamples / samplesPerImage⌉ from the start of the data.
//
// Tensors come from the activation tap (collectTensors) under a byte cap; only the sampled rows
// are kept afterwards. Positions are seeded per layer and batch, so that the input of a partly
// pruned model can be sampled again at the very same positions (compressAll).
import { CalibrationError } from '../errors.js'
import { attrInts, attrString } from '../graph/attributes.js'
import type { Model, Node } from '../graph/model.js'
import { batchSize, forEachBatch, type CalibrationData } from '../sim/calibrationData.js'
import { collectTensors } from '../techniques/layerActivations.js'
import type { Float32Tensor } from '../layers.js'
import { sampleOutputs, samplePatches, samplePositions, type ConvWindow } from './pruningKernels.js'

const q = JSON.stringify

export interface SamplingOptions {
  samplesPerImage: number
  maxImages: number
  seed: number
  /** Cap on the whole tensors held while tapping (collectTensors' maxBytes). */
  maxBytes: number
  signal?: AbortSignal
}

export interface LayerSamples {
  node: string
  /** The full (unpruned) window: `channels` is the Conv's input channel count. */
  window: ConvWindow
  /** Output channels. */
  outChannels: number
  rows: number
  /** rows × channels·kh·kw, from the original model. */
  patches: Float32Array
  /** rows × outChannels: the original layer's output at the same positions. */
  targets: Float32Array
  /** Per batch: its image count and sampled positions (to resample a pruned model's input). */
  batches: { images: number; positions: Uint32Array }[]
}

/** The first `maxImages` images of `data` (whole batches; the batch crossing the limit is the last). */
export function limitImages(data: CalibrationData, maxImages: number): CalibrationData {
  const LIMIT = Symbol('enough images')
  return async (run) => {
    let seen = 0
    try {
      await forEachBatch(data, async (feeds) => {
        if (seen >= maxImages) throw LIMIT
        seen += batchSize(feeds)
        await run(feeds)
      })
    } catch (e) {
      if (e !== LIMIT) throw e
    }
  }
}

/** A 2-D Conv's window from its attributes and the measured input and output dims (NCHW). */
export function convWindow(node: Node, weightDims: readonly number[], xDims: readonly number[], yDims: readonly number[]): ConvWindow {
  const kernel: [number, number] = [weightDims[2]!, weightDims[3]!]
  const pair = (key: string, fallback: number): [number, number] => {
    const v = attrInts(node, key)
    return v && v.length === 2 ? [v[0]!, v[1]!] : [fallback, fallback]
  }
  const strides = pair('strides', 1)
  const dilations = pair('dilations', 1)
  const image: [number, number] = [xDims[2]!, xDims[3]!]
  const out: [number, number] = [yDims[2]!, yDims[3]!]
  const autoPad = attrString(node, 'auto_pad') ?? 'NOTSET'
  let padBegin: [number, number] = [0, 0]
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    padBegin = [0, 1].map((ax) => {
      const total = Math.max(0, (out[ax]! - 1) * strides[ax]! + (kernel[ax]! - 1) * dilations[ax]! + 1 - image[ax]!)
      return autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2)
    }) as [number, number]
  } else if (autoPad === 'NOTSET') {
    const pads = attrInts(node, 'pads')
    if (pads && pads.length === 4) padBegin = [pads[0]!, pads[1]!]
  }
  return { channels: xDims[1]!, image, out, kernel, strides, dilations, padBegin }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

const batchSeed = (seed: number, layer: number, batch: number) => (seed + 7919 * layer + 104729 * batch) >>> 0

export interface SampledLayer {
  node: Node
  /** Position in the pruner's layer list (seeds the positions). */
  index: number
  weightDims: readonly number[]
}

/**
 * Samples every layer in `layers` from one pass of the original `model` over the limited data.
 * Layers are tapped in groups whose whole tensors fit `maxBytes` as estimated from `perImageBytes`.
 */
export async function sampleLayers(model: Model, layers: SampledLayer[], data: CalibrationData, perImageBytes: (l: SampledLayer) => number, opts: SamplingOptions): Promise<Map<string, LayerSamples>> {
  const out = new Map<string, LayerSamples>()
  const limited = limitImages(data, opts.maxImages)
  const groups: SampledLayer[][] = []
  let group: SampledLayer[] = []
  let bytes = 0
  for (const l of layers) {
    const b = perImageBytes(l) * opts.maxImages
    if (group.length > 0 && bytes + b > opts.maxBytes) { groups.push(group); group = []; bytes = 0 }
    group.push(l)
    bytes += b
  }
  if (group.length > 0) groups.push(group)
  for (const g of groups) {
    const names = [...new Set(g.flatMap((l) => [l.node.inputs[0]!, l.node.outputs[0]!]))]
    const tensors = await collectTensors(model, names, limited, { purpose: 'channel pruning', maxBytes: opts.maxBytes, signal: opts.signal })
    for (const l of g) {
      const xs = tensors.get(l.node.inputs[0]!)!
      const ys = tensors.get(l.node.outputs[0]!)!
      out.set(l.node.name, sampleOne(l, xs, ys, opts))
    }
  }
  return out
}

function sampleOne(l: SampledLayer, xs: Float32Tensor[], ys: Float32Tensor[], opts: SamplingOptions): LayerSamples {
  const patches: Float32Array[] = []
  const targets: Float32Array[] = []
  const batches: LayerSamples['batches'] = []
  let window: ConvWindow | undefined
  const m = l.weightDims[0]!
  xs.forEach((x, b) => {
    const y = ys[b]!
    if (x.dims.length !== 4 || y.dims.length !== 4) throw new CalibrationError(`channel pruning: node ${q(l.node.name)}: expected 4-D input and output, got [${x.dims.join(', ')}] and [${y.dims.join(', ')}]`, l.node.inputs[0])
    window ??= convWindow(l.node, l.weightDims, x.dims, y.dims)
    const images = x.dims[0]!
    const positions = samplePositions(images, opts.samplesPerImage, window, batchSeed(opts.seed, l.index, b))
    patches.push(samplePatches(x.data, images, window, positions))
    targets.push(sampleOutputs(y.data, images, m, window, positions))
    batches.push({ images, positions })
  })
  if (!window) throw new CalibrationError(`channel pruning: no data reached node ${q(l.node.name)}`, l.node.inputs[0])
  const rows = batches.reduce((n, b) => n + b.images * opts.samplesPerImage, 0)
  return { node: l.node.name, window, outChannels: m, rows, patches: concat(patches), targets: concat(targets), batches }
}

/**
 * The input patches of `node` in `model` (a partly pruned copy of the original) at the positions
 * of `samples`, keeping only the input channels `keep`.
 */
export async function resampleInput(model: Model, node: Node, samples: LayerSamples, keep: Uint32Array, data: CalibrationData, opts: SamplingOptions): Promise<Float32Array> {
  const name = node.inputs[0]!
  const tensors = await collectTensors(model, [name], limitImages(data, opts.maxImages), { purpose: 'channel pruning', maxBytes: opts.maxBytes, signal: opts.signal })
  const xs = tensors.get(name)!
  if (xs.length !== samples.batches.length || xs.some((x, b) => x.dims[0] !== samples.batches[b]!.images)) {
    throw new CalibrationError(`channel pruning: the data gave different batches on a second pass (node ${q(node.name)}); pass an array or a function returning a fresh iterable`, name)
  }
  const parts = xs.map((x, b) => {
    const win: ConvWindow = { ...samples.window, channels: x.dims[1]!, image: [x.dims[2]!, x.dims[3]!] }
    if (win.channels !== samples.window.channels) throw new CalibrationError(`channel pruning: node ${q(node.name)}'s input has ${win.channels} channels in the pruned model, expected ${samples.window.channels}`, name)
    return samplePatches(x.data, samples.batches[b]!.images, win, samples.batches[b]!.positions, keep)
  })
  return concat(parts)
}
