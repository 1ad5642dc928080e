// `quantkit eval <fp32.onnx> <quantized.onnx> --data <source> [--labels <file>]`: both models on
// the same data; per-output SQNR, max and mean absolute error, top-1 agreement, accuracy.
import { parseArgs } from 'node:util'
import { compareOutputs } from '../analysis/compareOutputs.js'
import { openDataSource } from '../data/index.js'
import { readLabels } from '../data/labels.js'
import { loadModel } from '../onnx/loadModel.js'
import { OrtRunner } from '../sim/ortRunner.js'
import { progress } from './progress.js'
import { positiveInt } from './args.js'
import { toJson } from './json.js'
import { UsageError } from './usageError.js'

export const EVAL_USAGE = `usage: quantkit eval <fp32.onnx> <quantized.onnx> --data <source> [options]
  --data <source>     an image folder, .npy, .npz, .json, or a .js module
  --labels <file>     class labels (.npy, .json, or one per line) for top-1 accuracy
  --batch-size <n>    samples per batch (default: the model's fixed batch, else 1)
  --count <n>         use the first n samples
  --json              results as JSON on stdout
  --quiet             no progress output`

export async function evalCommand(argv: string[], signal?: AbortSignal): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { data: { type: 'string' }, labels: { type: 'string' }, 'batch-size': { type: 'string' }, count: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' } },
    })
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${EVAL_USAGE}`)
  }
  const { values: v, positionals } = parsed
  if (positionals.length !== 2) throw new UsageError(`expected two model files\n${EVAL_USAGE}`)
  if (!v.data) throw new UsageError(`--data <source> is required\n${EVAL_USAGE}`)
  const [fp32Path, qPath] = positionals as [string, string]
  const model = await loadModel(fp32Path)
  const data = await openDataSource(v.data, model.graph, { batchSize: positiveInt(v['batch-size'], 'batch-size'), count: positiveInt(v.count, 'count') })
  const labels = v.labels ? await readLabels(v.labels) : undefined
  const a = await OrtRunner.create(fp32Path)
  const b = await OrtRunner.create(qPath).catch(async (e) => { await a.close(); throw e })
  try {
    const bar = progress('evaluating', { quiet: v.quiet })
    const r = await compareOutputs((f) => a.run(f), (f) => b.run(f), data.batches(), { labels, signal, onProgress: (n) => bar.update(n, data.count) })
    bar.done(`${r.samples} samples`)
    if (v.json) {
      console.log(toJson({ reference: fp32Path, other: qPath, ...r }))
      return 0
    }
    console.log(`${qPath} against ${fp32Path} on ${r.samples} samples (${data.describe()})`)
    for (const o of r.outputs) console.log(`  output ${o.output}: SQNR ${o.sqnrDb.toFixed(2)} dB, max |error| ${o.maxAbsError.toPrecision(3)}, mean |error| ${o.meanAbsError.toPrecision(3)}`)
    if (r.top1Agreement !== undefined) console.log(`  top-1 agreement: ${(r.top1Agreement * 100).toFixed(2)} %`)
    if (r.accuracy) console.log(`  accuracy: FP32 ${(r.accuracy.reference * 100).toFixed(2)} %, quantized ${(r.accuracy.other * 100).toFixed(2)} %`)
    return 0
  } finally {
    await Promise.all([a.close(), b.close()])
  }
}
