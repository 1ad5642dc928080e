// `quantkit quantize <model.onnx> --calib <source> [options]`: prepare, place quantizers,
// calibrate, export the QDQ model and AIMET encodings, and (with --eval) compare against FP32.
import { parseArgs } from 'node:util'
import { mkdir, stat, writeFile, rename } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { QuantSim, type QuantSimOptions } from '../sim/quantSim.js'
import { modelToBytes } from '../onnx/saveModel.js'
import { OrtRunner } from '../sim/ortRunner.js'
import { compareOutputs, type Comparison } from '../analysis/compareOutputs.js'
import { openDataSource } from '../data/index.js'
import { readLabels } from '../data/labels.js'
import { analyzeQuantization } from '../analysis/analyzeQuantization.js'
import { writeReport } from '../report/report.js'
import type { ReportData } from '../report/reportData.js'
import { opHistogram } from '../graph/opHistogram.js'
import type { CalibrationScheme } from '../observers.js'
import { progress } from './progress.js'
import { UsageError } from './usageError.js'

export const QUANTIZE_USAGE = `usage: quantkit quantize <model.onnx> --calib <source> [options]
  --calib <source>        calibration data: an image folder, .npy, .npz, .json, or a .js module
  --calib-count <n>       use the first n calibration samples (default: all)
  --batch-size <n>        samples per batch (default: the model's fixed batch, else 1)
  --config <preset|file>  AIMET config or preset (default, per_tensor, htp_v66 … htp_v85); --preset is the same
  --per-tensor            per-tensor weights (the per_tensor preset) when no --config is given
  --param-bw <n>          weight bitwidth (default 8); or --param-type int4|int8|int16|float16
  --act-bw <n>            activation bitwidth (default 8); or --act-type int8|int16|float16
  --scheme <name>         min_max (default), tf_enhanced, percentile, mse, entropy
  --percentile <p>        for --scheme percentile (default 99.99)
  --eval <source>         data to compare FP32 and quantized outputs on; --labels <file> for accuracy
  --analyze               per-layer sensitivity, activation SQNR, weight ranges and histograms in the report
  --analyze-layers <n>    measure the sensitivity of the n largest layers only (default: all)
  --no-prepare            quantize the model as is (no BatchNorm folding)
  --out <dir>             output folder (default: out)
  --prefix <name>         file name prefix (default: the model's name)
  --json                  print the results as JSON on stdout (logs stay on stderr)
  --quiet                 no progress output`

const OPTIONS = {
  calib: { type: 'string' }, 'calib-count': { type: 'string' }, 'batch-size': { type: 'string' },
  config: { type: 'string' }, preset: { type: 'string' }, 'per-tensor': { type: 'boolean' }, 'per-channel': { type: 'boolean' },
  'param-bw': { type: 'string' }, 'act-bw': { type: 'string' }, 'param-type': { type: 'string' }, 'act-type': { type: 'string' },
  scheme: { type: 'string' }, percentile: { type: 'string' }, eval: { type: 'string' }, labels: { type: 'string' },
  'no-prepare': { type: 'boolean' }, analyze: { type: 'boolean' }, 'analyze-layers': { type: 'string' }, out: { type: 'string' }, prefix: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
} as const

function int(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${flag}: expected a positive integer, got ${JSON.stringify(v)}`)
  return n
}

export interface QuantizeResult {
  model: string
  config: string
  files: string[]
  quantizers: QuantSim['report']['quantizers']
  floatBytes: number
  quantizedBytes: number
  calibration: { samples: number; seconds: number }
  evaluation?: Comparison
  notes: string[]
}

export async function quantizeCommand(argv: string[], signal?: AbortSignal): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${QUANTIZE_USAGE}`)
  }
  const { values: v, positionals } = parsed
  if (positionals.length !== 1) throw new UsageError(`expected one model file\n${QUANTIZE_USAGE}`)
  if (!v.calib) throw new UsageError(`--calib <source> is required\n${QUANTIZE_USAGE}`)
  if (v.config && v.preset && v.config !== v.preset) throw new UsageError('--config and --preset name the same setting; give one')
  const modelPath = positionals[0]!
  const config = v.config ?? v.preset ?? (v['per-tensor'] ? 'per_tensor' : undefined)
  const opts: QuantSimOptions = {
    config,
    prepare: !v['no-prepare'],
    quantScheme: v.scheme as CalibrationScheme | undefined,
    percentile: v.percentile === undefined ? undefined : Number(v.percentile),
    paramBitwidth: int(v['param-bw'], 'param-bw'),
    activationBitwidth: int(v['act-bw'], 'act-bw'),
    paramType: v['param-type'],
    activationType: v['act-type'],
  }
  const log = (m: string) => { if (!v.quiet) process.stderr.write(`${m}\n`) }
  const outDir = resolve(v.out ?? 'out')
  const prefix = v.prefix ?? basename(modelPath).replace(/\.onnx$/i, '')

  const sim = await QuantSim.create(modelPath, opts)
  try {
    log(`quantkit: ${modelPath} under ${sim.report.config}: ${sim.report.quantizers.activations} activation and ${sim.report.quantizers.params} weight quantizers`)
    const calib = await openDataSource(v.calib, sim.model.graph, { batchSize: int(v['batch-size'], 'batch-size'), count: int(v['calib-count'], 'calib-count') })
    const bar = progress('calibrating', { quiet: v.quiet })
    const t0 = Date.now()
    let samples = 0
    await sim.computeEncodings(calib.batches(), { signal, onProgress: (p) => { samples = p.samples; bar.update(p.samples, calib.count) } })
    bar.done(`${samples} samples`)
    const seconds = (Date.now() - t0) / 1000
    await mkdir(outDir, { recursive: true })
    const exported = await sim.export(outDir, prefix)
    const floatBytes = (await stat(join(outDir, `${prefix}.onnx`))).size
    const quantizedBytes = (await stat(join(outDir, `${prefix}.qdq.onnx`))).size
    let evaluation: Comparison | undefined
    const labels = v.labels ? await readLabels(v.labels) : undefined
    if (v.labels && !v.eval) throw new UsageError('--labels needs --eval <source> (the labelled data)')
    if (v.eval) {
      const data = await openDataSource(v.eval, sim.model.graph, { batchSize: int(v['batch-size'], 'batch-size') })
      const fp32 = await OrtRunner.create(modelToBytes(sim.model), { name: `${modelPath} (FP32)` })
      try {
        const bar2 = progress('evaluating', { quiet: v.quiet })
        evaluation = await compareOutputs((f) => fp32.run(f), (f) => sim.run(f), data.batches(), { labels, signal, onProgress: (n) => bar2.update(n, data.count) })
        bar2.done(`${evaluation.samples} samples`)
      } finally {
        await fp32.close()
      }
    }
    const result: QuantizeResult = {
      model: modelPath, config: sim.report.config, files: exported.files, quantizers: sim.report.quantizers,
      floatBytes, quantizedBytes, calibration: { samples, seconds }, evaluation,
      notes: [...sim.report.placement.notes, ...(exported.qdq?.notes ?? [])],
    }
    const report: ReportData = {
      title: `quantkit: ${basename(modelPath)}`,
      createdAt: new Date().toISOString(),
      quantkitVersion: (require('../../package.json') as { version: string }).version,
      model: { file: modelPath, floatBytes, quantizedBytes, parameters: [...sim.model.graph.initializers.values()].reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0), ops: opHistogram(sim.model.graph) },
      metric: evaluation?.accuracy ? 'accuracy' : 'sqnr',
      results: evaluation ? [{
        name: `${sim.report.config}, ${opts.quantScheme ?? 'min_max'}`,
        settings: { config: sim.report.config, scheme: opts.quantScheme ?? 'min_max', paramBitwidth: opts.paramBitwidth ?? 8, activationBitwidth: opts.activationBitwidth ?? 8 },
        accuracy: evaluation.accuracy?.other,
        outputSqnrDb: Object.fromEntries(evaluation.outputs.map((o) => [o.output, o.sqnrDb])),
        top1Agreement: evaluation.top1Agreement,
      }] : [],
      notes: result.notes,
    }
    if (v.analyze) {
      const source = await openDataSource(v.eval ?? v.calib, sim.model.graph, { batchSize: int(v['batch-size'], 'batch-size') })
      const bar3 = progress('analyzing', { quiet: v.quiet, unit: 'steps' })
      const a = await analyzeQuantization(sim, source.batches(), {
        labels: v.eval ? labels : undefined,
        layers: v['analyze-layers'] ? int(v['analyze-layers'], 'analyze-layers') : 'all',
        signal,
        onProgress: (p) => { if (p.phase === 'sensitivity') bar3.update(p.done, p.total) },
      })
      bar3.done()
      Object.assign(report, { metric: a.metric, sensitivity: a.sensitivity, layerSqnr: a.layerSqnr, weightRanges: a.weightRanges, histograms: a.histograms })
    }
    const reportPath = join(outDir, 'report.json')
    // JSON has no Infinity (an exact output has infinite SQNR): written as the string "Infinity".
    await writeFile(`${reportPath}.tmp`, JSON.stringify(report, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x), 2) + '\n')
    await rename(`${reportPath}.tmp`, reportPath)
    result.files.push(reportPath)
    const htmlPath = join(outDir, 'report.html')
    await writeReport(htmlPath, report)
    result.files.push(htmlPath)
    if (v.json) {
      console.log(JSON.stringify(result, (_k, x) => (x === Infinity ? 'Infinity' : x), 2))
      return 0
    }
    printSummary(result)
    return 0
  } finally {
    await sim.close()
  }
}

function printSummary(r: QuantizeResult): void {
  const kb = (b: number) => `${(b / 1024).toFixed(0)} KiB`
  console.log(`\n${r.model} → quantized with ${r.config}`)
  console.log(`  quantizers: ${r.quantizers.activations} activations, ${r.quantizers.params} weights (${r.quantizers.disabled} disabled, ${r.quantizers.tied} tied)`)
  console.log(`  calibration: ${r.calibration.samples} samples in ${r.calibration.seconds.toFixed(1)} s`)
  console.log(`  size: FP32 ${kb(r.floatBytes)} → QDQ ${kb(r.quantizedBytes)} (×${(r.floatBytes / r.quantizedBytes).toFixed(2)} smaller)`)
  const e = r.evaluation
  if (e) {
    if (e.accuracy) console.log(`  accuracy on ${e.samples} samples: FP32 ${(e.accuracy.reference * 100).toFixed(2)} %, quantized ${(e.accuracy.other * 100).toFixed(2)} % (${((e.accuracy.other - e.accuracy.reference) * 100).toFixed(2)} points)`)
    if (e.top1Agreement !== undefined) console.log(`  top-1 agreement with FP32: ${(e.top1Agreement * 100).toFixed(2)} %`)
    for (const o of e.outputs) console.log(`  output ${o.output}: SQNR ${o.sqnrDb.toFixed(1)} dB, max |error| ${o.maxAbsError.toPrecision(3)}, mean |error| ${o.meanAbsError.toPrecision(3)}`)
  }
  console.log('  wrote:')
  for (const f of r.files) console.log(`    ${f}`)
  for (const n of r.notes) console.log(`  note: ${n}`)
}
