// prepareModel: brings a model into the form quantization expects, as AIMET's model preparation
// and batch-norm folding do: weights as initializers, no Identity/Dropout, weight-only constant
// subgraphs evaluated, BatchNorms and per-channel Mul/Add folded into their Conv/Gemm.
// Every change is exact algebra (float32 rounding aside); see each pass for what it refuses.
import { GraphError } from '../../errors.js'
import { resolveModelSource, type ModelSource } from '../../onnx/modelSource.js'
import type { LoadOptions } from '../../onnx/loadModel.js'
import { pruneUnusedInitializers } from '../graphEdits.js'
import { cloneModel, type Model } from '../model.js'
import { opHistogram } from '../opHistogram.js'
import { validateGraph } from '../validateGraph.js'
import type { PassContext } from './pass.js'
import { FOLD_PASSES, PREPARE_PASS_NAMES, SETUP_PASSES, type PreparePassName } from './passes.js'
import { emptyReport, type PrepareReport } from './report.js'

export interface PrepareOptions {
  /** Passes to run (in their fixed order); default all. */
  passes?: readonly PreparePassName[]
  /** Passes to leave out. */
  skip?: readonly PreparePassName[]
  /** Loading options when `source` is a path or bytes. */
  load?: LoadOptions
}

export interface PrepareResult {
  model: Model
  report: PrepareReport
}

/** Upper bound on fold rounds; each round folds at least one node, so this only guards against a bug. */
const MAX_ROUNDS = 100

/**
 * Prepares a model for quantization without changing `source`. The input is validated first
 * (GraphError on dangling inputs, cycles, duplicate names, missing opsets), and so is the result.
 */
export async function prepareModel(source: ModelSource, opts: PrepareOptions = {}): Promise<PrepareResult> {
  const original = await resolveModelSource(source, opts.load)
  for (const name of [...(opts.passes ?? []), ...(opts.skip ?? [])]) {
    if (!PREPARE_PASS_NAMES.includes(name)) {
      throw new TypeError(`prepareModel: unknown pass ${JSON.stringify(name)}; expected one of ${PREPARE_PASS_NAMES.join(', ')}`)
    }
  }
  const enabled = new Set(opts.passes ?? PREPARE_PASS_NAMES)
  for (const name of opts.skip ?? []) enabled.delete(name)

  validateGraph(original)
  const model = cloneModel(original)
  const report = emptyReport()
  let notes = new Set<string>()
  const released = new Set<string>()
  const ctx: PassContext = {
    model,
    report,
    note: (m) => void notes.add(m),
    release: (...names) => names.forEach((n) => n !== '' && released.add(n)),
  }
  const nodesBefore = model.graph.nodes.length
  report.opsBefore = opHistogram(model.graph)

  for (const pass of SETUP_PASSES) if (enabled.has(pass.name as PreparePassName)) pass.run(ctx)
  const setupNotes = [...notes]
  const folds = FOLD_PASSES.filter((p) => enabled.has(p.name as PreparePassName))
  for (let round = 0; folds.length > 0; round++) {
    if (round === MAX_ROUNDS) throw new GraphError(`prepareModel: folding did not settle after ${MAX_ROUNDS} rounds`)
    // Notes describe the final state: a refusal in an early round may be folded in a later one.
    notes = new Set()
    let changes = 0
    for (const pass of folds) changes += pass.run(ctx)
    if (changes === 0) break
  }
  report.removedInitializers = pruneUnusedInitializers(model.graph, released).length

  report.opsAfter = opHistogram(model.graph)
  report.removedNodes = nodesBefore - model.graph.nodes.length
  report.notes = [...setupNotes, ...notes]
  try {
    validateGraph(model)
  } catch (e) {
    throw new GraphError(`prepareModel produced an invalid graph (a quantkit bug; please report it): ${(e as Error).message}`)
  }
  return { model, report }
}
