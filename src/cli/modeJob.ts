// The precision modes other than static W8A8 (issue: dynamic, weight-only, float16) as a CLI job:
// transform, save atomically, compare against FP32 on the evaluation data, write the report.
import { mkdir, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { compareOutputs, type Comparison } from '../analysis/compareOutputs.js'
import { openDataSource } from '../data/index.js'
import { readLabels } from '../data/labels.js'
import { opHistogram } from '../graph/opHistogram.js'
import { convertFloat16 } from '../modes/convertFloat16.js'
import { quantizeDynamic } from '../modes/quantizeDynamic.js'
import { quantizeWeights } from '../modes/quantizeWeights.js'
import { loadModel } from '../onnx/loadModel.js'
import { prepareModel } from '../graph/prepare/prepareModel.js'
import { modelToBytes, saveModel } from '../onnx/saveModel.js'
import { writeReport } from '../report/report.js'
import type { ReportData } from '../report/reportData.js'
import { OrtRunner } from '../sim/ortRunner.js'
import { progress } from './progress.js'
import type { QuantizeJob } from './quantizeJob.js'
import { writeJsonFile } from './json.js'
import { UsageError } from './usageError.js'

export type PrecisionMode = 'static' | 'dynamic' | 'weight-only' | 'fp16'
export const MODES: readonly PrecisionMode[] = ['static', 'dynamic', 'weight-only', 'fp16']

export interface ModeResult {
  model: string
  mode: PrecisionMode
  files: string[]
  floatBytes: number
  quantizedBytes: number
  evaluation?: Comparison
  report: unknown
  notes: string[]
}

const FILE_SUFFIX: Record<Exclude<PrecisionMode, 'static'>, string> = { dynamic: 'dynamic', 'weight-only': 'weights', fp16: 'fp16' }

export async function runModeJob(job: QuantizeJob, mode: Exclude<PrecisionMode, 'static'>, opts: { signal?: AbortSignal; quiet?: boolean } = {}): Promise<ModeResult> {
  const { signal, quiet } = opts
  // Weights held in Constant nodes (paddle2onnx models) become initializers, BatchNorms fold:
  // the modes look for constant initializer weights.
  const float = mode === 'fp16' ? await loadModel(job.model) : (await prepareModel(job.model)).model
  const calib = job.calibration ? await openDataSource(job.calibration, float.graph, { batchSize: job.batchSize, count: job.calibrationCount }) : undefined
  let transformed: { model: import('../graph/model.js').Model; report: unknown }
  const step = progress(mode, { quiet, unit: 'steps' })
  if (mode === 'dynamic') {
    transformed = await quantizeDynamic(float, { data: calib?.batches(), signal })
  } else if (mode === 'weight-only') {
    const bits = job.sim.paramBitwidth ?? 4
    if (bits !== 4 && bits !== 8) throw new UsageError(`weight-only mode takes --param-bw 4 or 8, got ${bits}`)
    transformed = await quantizeWeights(float, { bits, signal })
  } else {
    transformed = await convertFloat16(float, { data: calib?.batches(), signal })
  }
  step.done()
  const outDir = resolve(job.output.dir)
  await mkdir(outDir, { recursive: true })
  const file = join(outDir, `${job.output.prefix}.${FILE_SUFFIX[mode]}.onnx`)
  await saveModel(transformed.model, file)
  const floatBytes = (await stat(job.model)).size
  const quantizedBytes = (await stat(file)).size
  let evaluation: Comparison | undefined
  if (job.evaluation) {
    const labels = job.labels ? await readLabels(job.labels) : undefined
    const data = await openDataSource(job.evaluation, float.graph, { batchSize: job.batchSize })
    const a = await OrtRunner.create(modelToBytes(float), { name: `${job.model} (FP32)` })
    const b = await OrtRunner.create(file, { name: file }).catch(async (e) => { await a.close(); throw e })
    try {
      const bar = progress('evaluating', { quiet })
      evaluation = await compareOutputs((f) => a.run(f), (f) => b.run(f), data.batches(), { labels, signal, onProgress: (n) => bar.update(n, data.count) })
      bar.done(`${evaluation.samples} samples`)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  }
  const report: ReportData = {
    title: `quantkit (${mode}): ${basename(job.model)}`,
    createdAt: new Date().toISOString(),
    quantkitVersion: (require('../../package.json') as { version: string }).version,
    model: { file: job.model, floatBytes, quantizedBytes, parameters: [...float.graph.initializers.values()].reduce((n, t) => n + t.dims.reduce((x, y) => x * y, 1), 0), ops: opHistogram(float.graph) },
    metric: evaluation?.accuracy ? 'accuracy' : 'sqnr',
    results: evaluation ? [
      ...(evaluation.accuracy ? [{ name: 'FP32', settings: { precision: 'float32' }, accuracy: evaluation.accuracy.reference, top1Agreement: 1 }] : []),
      { name: mode, settings: { mode }, accuracy: evaluation.accuracy?.other, outputSqnrDb: Object.fromEntries(evaluation.outputs.map((o) => [o.output, o.sqnrDb])), top1Agreement: evaluation.top1Agreement },
    ] : [],
    notes: [`${mode}: ${JSON.stringify(transformed.report, (_k, v) => (ArrayBuffer.isView(v) ? undefined : v)).slice(0, 2000)}`],
  }
  const json = join(outDir, 'report.json')
  await writeJsonFile(json, { ...report, modeReport: transformed.report })
  const html = join(outDir, 'report.html')
  await writeReport(html, report)
  return { model: job.model, mode, files: [file, json, html], floatBytes, quantizedBytes, evaluation, report: transformed.report, notes: [] }
}

export function printModeSummary(r: ModeResult): void {
  console.log(`\n${r.model} → ${r.mode}`)
  console.log(`  size: FP32 ${(r.floatBytes / 1024).toFixed(0)} KiB → ${(r.quantizedBytes / 1024).toFixed(0)} KiB (×${(r.floatBytes / r.quantizedBytes).toFixed(2)} smaller)`)
  const e = r.evaluation
  if (e?.accuracy) console.log(`  accuracy on ${e.samples} samples: FP32 ${(e.accuracy.reference * 100).toFixed(2)} %, ${r.mode} ${(e.accuracy.other * 100).toFixed(2)} %`)
  for (const o of e?.outputs ?? []) console.log(`  output ${o.output}: SQNR ${o.sqnrDb.toFixed(1)} dB`)
  console.log('  wrote:')
  for (const f of r.files) console.log(`    ${f}`)
}
