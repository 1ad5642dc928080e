// `quantkit analyze <model.onnx> --calib <source> [--data <source>] [--labels <file>]`: calibrate a
// sim, then AIMET's QuantAnalyzer-style analysis (per-layer sensitivity, activation SQNR, weight
// ranges, histograms) into report.html and report.json. Nothing is exported.
import { parseArgs } from 'node:util'
import { mkdir } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { analyzeQuantization } from '../analysis/analyzeQuantization.js'
import { openDataSource } from '../data/index.js'
import { readLabels } from '../data/labels.js'
import { opHistogram } from '../graph/opHistogram.js'
import type { CalibrationScheme } from '../observers.js'
import { writeReport } from '../report/report.js'
import type { ReportData } from '../report/reportData.js'
import { QuantSim } from '../sim/quantSim.js'
import { progress } from './progress.js'
import { positiveInt } from './args.js'
import { toJson, writeJsonFile } from './json.js'
import { UsageError } from './usageError.js'

export const ANALYZE_USAGE = `usage: quantkit analyze <model.onnx> --calib <source> [options]
  --calib <source>        calibration data
  --data <source>         data to analyze on (default: the calibration data); --labels <file> for accuracy
  --eval-module <path>    sensitivity scored by a module exporting evaluate(modelBytes, ctx) => number
                          (run in worker threads, as compress --eval); excludes --labels
  --config <preset|file>  AIMET config or preset (--preset is the same)
  --param-bw <n>, --act-bw <n>, --scheme <name>   as for quantize
  --layers <n>            sensitivity of the n largest layers only (default: all)
  --batch-size <n>        samples per batch
  --out <dir>             where report.html and report.json go (default: out)
  --json                  the analysis as JSON on stdout
  --quiet                 no progress output`

export async function analyzeCommand(argv: string[], signal?: AbortSignal): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        calib: { type: 'string' }, data: { type: 'string' }, labels: { type: 'string' }, 'eval-module': { type: 'string' }, config: { type: 'string' }, preset: { type: 'string' },
        'param-bw': { type: 'string' }, 'act-bw': { type: 'string' }, scheme: { type: 'string' }, layers: { type: 'string' },
        'batch-size': { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
      },
    })
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${ANALYZE_USAGE}`)
  }
  const { values: v, positionals } = parsed
  if (positionals.length !== 1) throw new UsageError(`expected one model file\n${ANALYZE_USAGE}`)
  if (!v.calib) throw new UsageError(`--calib <source> is required\n${ANALYZE_USAGE}`)
  if (v['eval-module'] !== undefined && v.labels !== undefined) throw new UsageError(`--eval-module and --labels: give one\n${ANALYZE_USAGE}`)
  if (v['eval-module'] === '') throw new UsageError(`--eval-module: expected a module path\n${ANALYZE_USAGE}`)
  const modelPath = positionals[0]!
  const batchSize = positiveInt(v['batch-size'], 'batch-size')
  const sim = await QuantSim.create(modelPath, {
    config: v.config ?? v.preset, quantScheme: v.scheme as CalibrationScheme | undefined,
    paramBitwidth: positiveInt(v['param-bw'], 'param-bw'), activationBitwidth: positiveInt(v['act-bw'], 'act-bw'),
  })
  try {
    const calib = await openDataSource(v.calib, sim.model.graph, { batchSize })
    const bar = progress('calibrating', { quiet: v.quiet })
    await sim.computeEncodings(calib.batches(), { signal, onProgress: (p) => bar.update(p.samples, calib.count) })
    bar.done()
    const data = await openDataSource(v.data ?? v.calib, sim.model.graph, { batchSize })
    const labels = v.labels ? await readLabels(v.labels) : undefined
    const bar2 = progress('analyzing', { quiet: v.quiet, unit: 'configurations' })
    const a = await analyzeQuantization(sim, data.batches(), {
      labels, ...(v['eval-module'] !== undefined ? { evaluator: resolve(v['eval-module']) } : {}), layers: positiveInt(v.layers, 'layers') ?? 'all', signal,
      onProgress: (p) => { if (p.phase === 'sensitivity') bar2.update(p.done, p.total) },
    })
    bar2.done()
    const report: ReportData = {
      title: `quantkit analysis: ${basename(modelPath)}`,
      createdAt: new Date().toISOString(),
      quantkitVersion: (require('../../package.json') as { version: string }).version,
      model: { file: modelPath, floatBytes: 0, parameters: [...sim.model.graph.initializers.values()].reduce((n, t) => n + t.dims.reduce((x, y) => x * y, 1), 0), ops: opHistogram(sim.model.graph) },
      metric: a.metric,
      results: [
        { name: 'FP32', settings: { precision: 'float32' }, [a.metric === 'accuracy' ? 'accuracy' : 'top1Agreement']: a.metric === 'accuracy' ? a.baseline.float : undefined },
        { name: `${sim.report.config}, ${v.scheme ?? 'min_max'}`, settings: { config: sim.report.config, scheme: v.scheme ?? 'min_max' }, ...(a.metric === 'accuracy' ? { accuracy: a.baseline.quantized } : {}) },
      ],
      sensitivity: a.sensitivity, layerSqnr: a.layerSqnr, weightRanges: a.weightRanges, histograms: a.histograms,
      notes: sim.report.placement.notes,
    }
    const outDir = resolve(v.out ?? 'out')
    await mkdir(outDir, { recursive: true })
    const jsonPath = join(outDir, 'report.json')
    await writeJsonFile(jsonPath, report)
    await writeReport(join(outDir, 'report.html'), report)
    if (v.json) {
      console.log(toJson(a))
      return 0
    }
    console.log(`${modelPath}: ${a.metric === 'accuracy' ? 'accuracy' : 'output SQNR (dB)'} FP32 ${a.baseline.float.toFixed(4)}, quantized ${a.baseline.quantized.toFixed(4)}`)
    console.log('  most sensitive layers (quality with only this layer quantized):')
    for (const s of a.sensitivity.slice(0, 10)) console.log(`    ${s.layer} (${s.opType}): ${s.onlyThisQuantized.toFixed(4)}; all but this: ${s.allButThis.toFixed(4)}`)
    console.log('  lowest activation SQNR:')
    for (const s of [...a.layerSqnr].sort((x, y) => x.sqnrDb - y.sqnrDb).slice(0, 10)) console.log(`    ${s.tensor}: ${s.sqnrDb.toFixed(1)} dB`)
    console.log(`  wrote ${join(outDir, 'report.html')} and report.json`)
    return 0
  } finally {
    await sim.close()
  }
}
