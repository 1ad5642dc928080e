// equalizeModel: cross-layer equalization as aimet-onnx 2.42's equalize_model does it
// (aimet_onnx/cross_layer_equalization.py): fold batch norms (keeping their β and γ), find the
// layer sets, scale them (crossLayerScaling.ts), then the high-bias fold (highBiasFold.ts).
// Returns a new model; `source` is not changed. See docs/cle.md.
import { GraphError } from '../errors.js'
import { attrFloat } from '../graph/attributes.js'
import { graphIndex } from '../graph/graphIndex.js'
import { opsetVersion, type Graph, type Model, type Node } from '../graph/model.js'
import { prepareModel, type PrepareOptions } from '../graph/prepare/prepareModel.js'
import type { FoldedBatchNorm, PrepareReport } from '../graph/prepare/report.js'
import { validateGraph } from '../graph/validateGraph.js'
import type { ModelSource } from '../onnx/modelSource.js'
import { LayerParams, scaleClsSet, type ScaledPair } from './crossLayerScaling.js'
import { highBiasFold, type HighBiasFoldPair } from './highBiasFold.js'
import { findClsSets } from './layerPairs.js'

export interface EqualizeOptions {
  /** Run the high-bias fold after scaling (default true; needs BatchNorms folded by this call). */
  highBiasFold?: boolean
  /** Equalize Gemm→[Relu]→Gemm too (default true; aimet-onnx only scales Conv and ConvTranspose). */
  gemm?: boolean
  /**
   * Replace a Relu6-like Clip (min 0) between two layers by Relu first, as aimet-onnx's
   * equalize_model always does (replace_relu6_with_relu). This changes the model's function
   * (outputs above the clip's max are no longer clipped); default false, and the Clip then ends
   * the chain. The replaced nodes are listed in the report.
   */
  replaceRelu6?: boolean
  /** Options for the BatchNorm folding and the rest of preparation (prepareModel). */
  prepare?: PrepareOptions
  /**
   * BatchNorms folded earlier (a prepareModel report's `foldedBatchNorms`), for the high-bias
   * fold of a model that was prepared before this call.
   */
  foldedBatchNorms?: readonly FoldedBatchNorm[]
}

/** Per-channel scale factors in brief. */
export interface ScaleSummary {
  min: number
  max: number
  median: number
}

/** One scaled pair: layer 1's output channels and bias were divided by `scaleFactors`, layer 2's input channels multiplied. */
export interface EqualizedPair {
  layer1: string
  layer2: string
  /** Op types of the activations between them ([] when layer 1 feeds layer 2 directly). */
  activations: string[]
  scaleFactors: Float64Array
  scale: ScaleSummary
}

export interface EqualizedSet {
  /** 2 layers, or 3 with a depthwise Conv in the middle (node names). */
  layers: string[]
  pairs: EqualizedPair[]
}

export interface EqualizeReport {
  /** What preparation did (BatchNorm folding and friends). */
  preparation: PrepareReport
  sets: EqualizedSet[]
  /** Sets found but left alone (shared weights, channel mismatch), with the reason. */
  skipped: { layers: string[]; reason: string }[]
  /** Layers inside a chain that cannot be scaled (grouped Conv that is not depthwise, …). */
  unsupported: { node: string; reason: string }[]
  highBiasFold: {
    applied: boolean
    /** Why it did not run (disabled, or no BatchNorm was folded by this call). */
    skippedBecause?: string
    pairs: HighBiasFoldPair[]
  }
  /** Clip nodes turned into Relu (`replaceRelu6`). */
  replacedRelu6: string[]
  notes: string[]
}

export interface EqualizeResult {
  model: Model
  report: EqualizeReport
}

function summary(s: Float64Array): ScaleSummary {
  const sorted = Float64Array.from(s).sort()
  const n = sorted.length
  const median = n === 0 ? NaN : n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2
  return { min: sorted[0] ?? NaN, max: sorted[n - 1] ?? NaN, median }
}

/** The Clip's lower bound when it is a constant (input 1 from opset 11, attribute `min` before). */
function clipMin(model: Model, clip: Node): number | undefined {
  if ((opsetVersion(model) ?? 11) < 11) return attrFloat(clip, 'min')
  const t = model.graph.initializers.get(clip.inputs[1] ?? '')
  return t && t.data.length === 1 ? Number(t.data[0]) : undefined
}

/** aimet-onnx's replace_relu6_with_relu: a Clip with min 0 between two layers becomes a Relu. */
function replaceRelu6(model: Model, gemm: boolean): string[] {
  const graph = model.graph
  const index = graphIndex(graph)
  const layer = (n: Node | undefined) => n !== undefined && (n.opType === 'Conv' || n.opType === 'ConvTranspose' || (gemm && n.opType === 'Gemm')) && n.domain === ''
  const replaced: string[] = []
  for (const node of graph.nodes) {
    if (node.opType !== 'Clip' || node.domain !== '' || clipMin(model, node) !== 0) continue
    const uses = index.consumers(node.outputs[0]!)
    if (!layer(index.producer(node.inputs[0]!)?.node) || uses.length !== 1 || !layer(uses[0]!.node) || uses[0]!.inputIndex !== 0) continue
    node.opType = 'Relu'
    node.inputs = [node.inputs[0]!]
    node.attributes = new Map()
    replaced.push(node.name)
  }
  return replaced
}

/**
 * Cross-layer equalization of `source` (AIMET's equalize_model): BatchNorms are folded first
 * (prepareModel), their β and γ kept for the high-bias fold. A model whose BatchNorms were folded
 * before is still equalized; the high-bias fold is then skipped (and the report says so) unless
 * `opts.foldedBatchNorms` supplies the earlier fold's records.
 */
export async function equalizeModel(source: ModelSource, opts: EqualizeOptions = {}): Promise<EqualizeResult> {
  const { model, report: preparation } = await prepareModel(source, opts.prepare)
  const graph: Graph = model.graph
  const gemm = opts.gemm !== false
  const notes: string[] = []
  const replacedRelu6 = opts.replaceRelu6 ? replaceRelu6(model, gemm) : []
  if (replacedRelu6.length) notes.push(`replaced ${replacedRelu6.length} Relu6-like Clip node(s) by Relu (as aimet-onnx does); the model's outputs may change where activations exceeded the clip`)

  const index = graphIndex(graph)
  const search = findClsSets(graph, index, { gemm })
  const params = new LayerParams(graph, index)
  const report: EqualizeReport = {
    preparation,
    sets: [],
    skipped: [],
    unsupported: search.unsupported,
    highBiasFold: { applied: false, pairs: [] },
    replacedRelu6,
    notes,
  }
  const scaled: ScaledPair[] = []
  for (const set of search.sets) {
    const names = set.layers.map((l) => l.node.name)
    const why = set.layers.map((l) => params.blocker(l)).find((x) => x !== undefined) ??
      set.layers.slice(1).map((l, i) => {
        const prev = set.layers[i]!
        const [out, inp] = [prev.dims[prev.outAxis]!, l.dims[l.inAxis]!]
        return out === inp ? undefined : `${prev.node.name} has ${out} output channels but ${l.node.name} reads ${inp}`
      }).find((x) => x !== undefined)
    if (why) {
      report.skipped.push({ layers: names, reason: why })
      continue
    }
    const pairs = scaleClsSet(params, set)
    scaled.push(...pairs)
    report.sets.push({
      layers: names,
      pairs: pairs.map((p) => ({
        layer1: p.layer1.node.name,
        layer2: p.layer2.node.name,
        activations: p.between.map((n) => n.opType),
        scaleFactors: p.scale,
        scale: summary(p.scale),
      })),
    })
  }
  if (search.sets.length === 0) notes.push('cross-layer equalization: no layer pairs to scale (Conv/ConvTranspose/Gemm → [Relu/PRelu] → Conv/ConvTranspose/Gemm with single readers)')

  const folded = [...preparation.foldedBatchNorms, ...(opts.foldedBatchNorms ?? [])]
  if (opts.highBiasFold === false) report.highBiasFold.skippedBecause = 'disabled (highBiasFold: false)'
  else if (folded.length === 0) {
    report.highBiasFold.skippedBecause = 'no BatchNorm was folded by this call (the model has none, or was folded before): the high-bias fold needs their β and γ; pass opts.foldedBatchNorms from the earlier prepareModel report to use them'
  } else {
    report.highBiasFold.applied = true
    report.highBiasFold.pairs = highBiasFold(params, scaled, folded)
    if (report.highBiasFold.pairs.some((p) => p.layer2Pads)) {
      notes.push('high-bias fold: some second layers pad their input; there the fold is inexact at the output borders (as in aimet-onnx)')
    }
  }
  if (report.highBiasFold.skippedBecause) notes.push(`high-bias fold skipped: ${report.highBiasFold.skippedBecause}`)
  params.write()
  try {
    validateGraph(model)
  } catch (e) {
    throw new GraphError(`equalizeModel produced an invalid graph (a quantkit bug; please report it): ${(e as Error).message}`)
  }
  return { model, report }
}

