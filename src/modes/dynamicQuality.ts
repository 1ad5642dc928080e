// The quality check of dynamic quantization: FP32 and candidate models run in onnxruntime-node (in
// a worker, OrtRunner) on the user's data, and the lowest output SQNR decides. The FP32 outputs are
// computed once and kept; the data is read once and kept (the check runs several candidates over
// it), so give it a representative few hundred samples, not a whole data set.
import { compareOutputs } from '../analysis/compareOutputs.js'
import { SqnrAccumulator } from '../analysis/sqnrAccumulator.js'
import { AbortError } from '../errors.js'
import { batchSize, forEachBatch, type CalibrationData } from '../sim/calibrationData.js'
import { toPlainFeeds, type Feeds, type PlainTensor } from '../sim/feeds.js'
import { OrtRunner } from '../sim/ortRunner.js'

type PlainFeeds = Record<string, PlainTensor>
type Outputs = Record<string, PlainTensor>

export interface ModelQuality {
  /** The lowest SQNR over the float32 outputs, in dB (Infinity when none differ or none are float32). */
  sqnrDb: number
  outputs: { output: string; sqnrDb: number }[]
  top1Agreement?: number
}

export interface QualityCheckOptions {
  signal?: AbortSignal
  intraOpNumThreads?: number
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('quantizeDynamic aborted', { cause: signal.reason })
}

/** Reads every batch of `data` into memory, checking each against the model's inputs. */
export async function collectBatches(data: CalibrationData, inputNames: readonly string[], signal?: AbortSignal): Promise<PlainFeeds[]> {
  const batches: PlainFeeds[] = []
  const expected = new Set(inputNames)
  await forEachBatch(data, async (feeds: Feeds) => {
    checkAbort(signal)
    const where = `quantizeDynamic: data batch ${batches.length}`
    const plain = toPlainFeeds(feeds, where)
    for (const name of expected) {
      if (!(name in plain)) throw new TypeError(`${where}: missing input ${JSON.stringify(name)} (the model's inputs: ${inputNames.join(', ')})`)
    }
    for (const name of Object.keys(plain)) {
      if (!expected.has(name)) throw new TypeError(`${where}: the model has no input ${JSON.stringify(name)} (its inputs: ${inputNames.join(', ')})`)
    }
    batches.push(plain)
  })
  return batches
}

export class QualityCheck {
  readonly batches: readonly PlainFeeds[]
  readonly samples: number
  readonly #reference: Map<PlainFeeds, Outputs>
  readonly #opts: QualityCheckOptions

  private constructor(batches: PlainFeeds[], reference: Map<PlainFeeds, Outputs>, opts: QualityCheckOptions) {
    this.batches = batches
    this.samples = batches.reduce((n, f) => n + batchSize(f), 0)
    this.#reference = reference
    this.#opts = opts
  }

  /** Runs the FP32 model on every batch once and keeps its outputs. */
  static async create(fp32: Uint8Array, batches: PlainFeeds[], opts: QualityCheckOptions = {}): Promise<QualityCheck> {
    const reference = new Map<PlainFeeds, Outputs>()
    await withRunner(fp32, 'FP32 model', opts, async (runner) => {
      for (const feeds of batches) {
        checkAbort(opts.signal)
        reference.set(feeds, await runner.run(feeds))
      }
    })
    return new QualityCheck(batches, reference, opts)
  }

  /** The candidate's outputs against FP32's over all batches. */
  async evaluate(candidate: Uint8Array): Promise<ModelQuality> {
    return withRunner(candidate, 'dynamic model', this.#opts, async (runner) => {
      const c = await compareOutputs(async (f) => this.#reference.get(f as PlainFeeds)!, (f) => runner.run(f), this.batches,
        this.#opts.signal ? { signal: this.#opts.signal } : {})
      const outputs = c.outputs.map((o) => ({ output: o.output, sqnrDb: o.sqnrDb }))
      return {
        sqnrDb: Math.min(Infinity, ...outputs.map((o) => o.sqnrDb)),
        outputs,
        ...(c.top1Agreement !== undefined ? { top1Agreement: c.top1Agreement } : {}),
      }
    })
  }

  /**
   * Per layer, the SQNR of a quantized copy's output against the float layer's, both reading the
   * float model's activations: `tapped` is the FP32 model with each copy added beside its layer and
   * both outputs exposed.
   */
  async layerSqnr(tapped: Uint8Array, taps: readonly { float: string; quantized: string }[]): Promise<number[]> {
    const acc = taps.map(() => new SqnrAccumulator())
    const names = [...new Set(taps.flatMap((t) => [t.float, t.quantized]))]
    await withRunner(tapped, 'per-layer check model', this.#opts, async (runner) => {
      for (const feeds of this.batches) {
        checkAbort(this.#opts.signal)
        const out = await runner.run(feeds, { outputs: names })
        taps.forEach((t, i) => acc[i]!.add(out[t.float]!.data as Float32Array, out[t.quantized]!.data as Float32Array))
      }
    })
    return acc.map((a) => a.sqnrDb)
  }
}

async function withRunner<T>(bytes: Uint8Array, name: string, opts: QualityCheckOptions, use: (r: OrtRunner) => Promise<T>): Promise<T> {
  // Default graph optimisations: the check measures what a user will run.
  const runner = await OrtRunner.create(bytes, { name, ...(opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {}) })
  try {
    return await use(runner)
  } finally {
    await runner.close()
  }
}
