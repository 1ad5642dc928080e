// `quantkit quantize <model.onnx> --calib <source> [options]`: prepare, place quantizers,
// calibrate, export the QDQ model and AIMET encodings, and (with --eval) compare against FP32.
import { parseArgs } from 'node:util'
import { mkdir, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { QuantSim } from '../sim/quantSim.js'
import type { QuantizeJob, TensorOverride } from './quantizeJob.js'
import { MODES, printModeSummary, runModeJob, type PrecisionMode } from './modeJob.js'
import { modelToBytes } from '../onnx/saveModel.js'
import { OrtRunner } from '../sim/ortRunner.js'
import { compareOutputs, type Comparison } from '../analysis/compareOutputs.js'
import { openDataSource } from '../data/index.js'
import { readLabels } from '../data/labels.js'
import { analyzeQuantization } from '../analysis/analyzeQuantization.js'
import { equalizeModel } from '../techniques/equalizeModel.js'
import { applySeqMse } from '../techniques/seqMse.js'
import { applyAdaround } from '../techniques/adaround.js'
import { applyBiasCorrection } from '../techniques/biasCorrection.js'
import { equalizedBatchNorms } from '../techniques/analyticalBias.js'
import { writeReport } from '../report/report.js'
import type { ReportData } from '../report/reportData.js'
import { techniquesReportData } from '../report/techniquesData.js'
import { opHistogram } from '../graph/opHistogram.js'
import type { CalibrationScheme } from '../observers.js'
import { progress } from './progress.js'
import { positiveInt } from './args.js'
import { toJson, writeJsonFile } from './json.js'
import { UsageError } from './usageError.js'

export const QUANTIZE_USAGE = `usage: quantkit quantize <model.onnx> --calib <source> [options]
  --mode <mode>           static (default: QuantSim, W8A8 with calibration), dynamic (int8 weights,
                          activations quantized at run time), weight-only (int4/int8 MatMul weights,
                          --param-bw 4 or 8), fp16 (float16 weights and compute)
  --calib <source>        calibration data: an image folder, .npy, .npz, .json, or a .js module
                          (required for static; dynamic and fp16 use it to check quality and range)
  --calib-count <n>       use the first n calibration samples (default: all)
  --batch-size <n>        samples per batch (default: the model's fixed batch, else 1)
  --config <preset|file>  AIMET config or preset (default, per_tensor, htp_v66 … htp_v85); --preset is the same
  --per-tensor            per-tensor weights (the per_tensor preset) when no --config is given
  --param-bw <n>          weight bitwidth (default 8); or --param-type int4|int8|int16|float16
  --act-bw <n>            activation bitwidth (default 8); or --act-type int8|int16|float16
  --scheme <name>         min_max (default), tf_enhanced, percentile, mse, entropy
  --percentile <p>        for --scheme percentile (default 99.99)
  --eval <source>         data to compare FP32 and quantized outputs on; --labels <file> for accuracy
  --cle                   cross-layer equalization and high-bias fold before quantizing
  --seq-mse               choose weight ranges by layer output MSE (SeqMSE)
  --adaround <n>          AdaRound the weights with n iterations per layer (AIMET: 10000)
  --bias-correction       bias correction after calibration (analytical from BatchNorm statistics where
                          a folded BatchNorm precedes the layer, empirical elsewhere)
  --analyze               per-layer sensitivity, activation SQNR, weight ranges and histograms in the report
  --analyze-layers <n>    measure the sensitivity of the n largest layers only (default: all)
  --no-prepare            quantize the model as is (no BatchNorm folding)
  --out <dir>             output folder (default: out)
  --prefix <name>         file name prefix (default: the model's name)
  --json                  print the results as JSON on stdout (logs stay on stderr)
  --quiet                 no progress output`

const OPTIONS = {
  calib: { type: 'string' }, mode: { type: 'string' }, 'calib-count': { type: 'string' }, 'batch-size': { type: 'string' },
  config: { type: 'string' }, preset: { type: 'string' }, 'per-tensor': { type: 'boolean' }, 'per-channel': { type: 'boolean' },
  'param-bw': { type: 'string' }, 'act-bw': { type: 'string' }, 'param-type': { type: 'string' }, 'act-type': { type: 'string' },
  scheme: { type: 'string' }, percentile: { type: 'string' }, eval: { type: 'string' }, labels: { type: 'string' },
  cle: { type: 'boolean' }, 'seq-mse': { type: 'boolean' }, adaround: { type: 'string' }, 'bias-correction': { type: 'boolean' },
  'no-prepare': { type: 'boolean' }, analyze: { type: 'boolean' }, 'analyze-layers': { type: 'string' }, out: { type: 'string' }, prefix: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
} as const


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
  /** What each post-training technique did, per layer. */
  techniques?: Record<string, unknown>
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
  const mode = (v.mode ?? 'static') as PrecisionMode
  if (!MODES.includes(mode)) throw new UsageError(`--mode: expected one of ${MODES.join(', ')}, got ${JSON.stringify(v.mode)}`)
  if (!v.calib && mode === 'static') throw new UsageError(`--calib <source> is required\n${QUANTIZE_USAGE}`)
  if (v.config && v.preset && v.config !== v.preset) throw new UsageError('--config and --preset name the same setting; give one')
  if (v.labels && !v.eval) throw new UsageError('--labels needs --eval <source> (the labelled data)')
  const modelPath = positionals[0]!
  const job: QuantizeJob = {
    model: modelPath,
    calibration: v.calib ?? '',
    evaluation: v.eval,
    labels: v.labels,
    sim: {
      config: v.config ?? v.preset ?? (v['per-tensor'] ? 'per_tensor' : undefined),
      prepare: !v['no-prepare'],
      quantScheme: v.scheme as CalibrationScheme | undefined,
      percentile: v.percentile === undefined ? undefined : Number(v.percentile),
      paramBitwidth: positiveInt(v['param-bw'], 'param-bw'),
      activationBitwidth: positiveInt(v['act-bw'], 'act-bw'),
      paramType: v['param-type'],
      activationType: v['act-type'],
    },
    overrides: [],
    analysis: { enabled: v.analyze ?? false, layers: positiveInt(v['analyze-layers'], 'analyze-layers') },
    techniques: { cle: v.cle, seqMse: v['seq-mse'], adaroundIterations: positiveInt(v.adaround, 'adaround'), biasCorrection: v['bias-correction'] },
    output: { dir: resolve(v.out ?? 'out'), prefix: v.prefix ?? basename(modelPath).replace(/\.onnx$/i, ''), formats: ['encodings', 'qdq'] },
    batchSize: positiveInt(v['batch-size'], 'batch-size'),
    calibrationCount: positiveInt(v['calib-count'], 'calib-count'),
  }
  if (mode !== 'static') job.mode = mode
  return runJob(job, { signal, quiet: v.quiet, json: v.json })
}

/** Runs a job (static, or one of the other modes) and prints its summary or, with `json`, its JSON. */
export async function runJob(job: QuantizeJob, opts: { signal?: AbortSignal; quiet?: boolean; json?: boolean }): Promise<number> {
  const result = job.mode ? await runModeJob(job, job.mode, opts) : await runQuantizeJob(job, opts)
  if (opts.json) console.log(toJson(result))
  else if ('mode' in result) printModeSummary(result)
  else printSummary(result)
  return 0
}

function compileMatch(match: string): (name: string) => boolean {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(match)
  if (!re) return (name) => name === match
  const rx = new RegExp(re[1]!, re[2])
  return (name) => rx.test(name)
}

/** Applies per-tensor overrides; returns how many quantizers each override changed. */
export function applyOverrides(sim: QuantSim, overrides: readonly TensorOverride[]): number[] {
  return overrides.map((o) => {
    const test = compileMatch(o.match)
    const tensors = [...new Set(sim.quantizers.filter((q) => test(q.tensor)).map((q) => q.tensor))]
    for (const t of tensors) sim.setQuantizer(t, { enabled: o.enabled, bitwidth: o.bitwidth, symmetric: o.symmetric })
    return tensors.length
  })
}

/** Runs a quantization job: sim, overrides, calibration, export, evaluation, analysis, report. */
export async function runQuantizeJob(job: QuantizeJob, opts: { signal?: AbortSignal; quiet?: boolean } = {}): Promise<QuantizeResult> {
  const { signal, quiet } = opts
  const log = (m: string) => { if (!quiet) process.stderr.write(`${m}\n`) }
  const outDir = resolve(job.output.dir)
  const prefix = job.output.prefix
  const t = job.techniques ?? {}
  const techniqueReports: Record<string, unknown> = {}
  // The techniques' full reports, for report.json and the HTML report.
  const full: Parameters<typeof techniquesReportData>[0] = {}
  let source: Parameters<typeof QuantSim.create>[0] = job.model
  if (t.cle) {
    const eq = await equalizeModel(job.model)
    source = eq.model
    full.cle = eq.report
    techniqueReports.cle = { sets: eq.report.sets.length, highBiasFold: eq.report.highBiasFold, notes: eq.report.notes }
    log(`quantkit: cross-layer equalization scaled ${eq.report.sets.length} layer groups`)
  }
  const sim = await QuantSim.create(source, t.cle ? { ...job.sim, prepare: false } : job.sim)
  try {
    const changed = applyOverrides(sim, job.overrides)
    changed.forEach((n, i) => { if (n === 0) log(`quantkit: override ${JSON.stringify(job.overrides[i]!.match)} matches no quantized tensor`) })
    log(`quantkit: ${job.model} under ${sim.report.config}: ${sim.report.quantizers.activations} activation and ${sim.report.quantizers.params} weight quantizers`)
    const calib = await openDataSource(job.calibration, sim.model.graph, { batchSize: job.batchSize, count: job.calibrationCount })
    // The FP32 reference for evaluation, taken before AdaRound and bias correction change weights and biases.
    const reference = modelToBytes(sim.model)
    if (t.seqMse) {
      const r = await applySeqMse(sim, () => calib.batches(), { signal })
      full.seqMse = r
      techniqueReports.seqMse = r.layers.map((l) => ({ node: l.node, lossBefore: l.lossBefore, lossAfter: l.lossAfter }))
      log(`quantkit: SeqMSE chose weight ranges for ${r.layers.length} layers`)
    }
    if (t.adaroundIterations) {
      const bar0 = progress('adaround', { quiet, unit: 'layers' })
      const r = await applyAdaround(sim, () => calib.batches(), { numIterations: t.adaroundIterations, signal, onProgress: (p) => bar0.update(p.index, p.layers) })
      bar0.done()
      full.adaround = r
      techniqueReports.adaround = r.layers.map((l) => ({ node: l.node, lossNearest: l.lossNearest, lossAdaround: l.lossAdaround, flips: l.flips }))
    }
    const bar = progress('calibrating', { quiet })
    const t0 = Date.now()
    let samples = 0
    await sim.computeEncodings(calib.batches(), { signal, onProgress: (p) => { samples = p.samples; bar.update(p.samples, calib.count) } })
    bar.done(`${samples} samples`)
    if (t.biasCorrection) {
      // After CLE the sim's model has no BatchNorm records of its own: give it the equalized ones.
      const r = await applyBiasCorrection(sim, () => calib.batches(), { signal, ...(full.cle ? { batchNorms: equalizedBatchNorms(full.cle) } : {}) })
      full.biasCorrection = r
      techniqueReports.biasCorrection = r.layers.map((l) => ({ node: l.node, meanAbsShift: l.meanAbsShift }))
      log(`quantkit: bias correction shifted ${r.layers.length} biases`)
    }
    const seconds = (Date.now() - t0) / 1000
    await mkdir(outDir, { recursive: true })
    const exported = await sim.export(outDir, prefix, { formats: job.output.formats })
    const size = async (f: string) => { try { return (await stat(join(outDir, f))).size } catch { return 0 } }
    const floatBytes = (await size(`${prefix}.onnx`)) || (await stat(job.model)).size
    const quantizedBytes = await size(`${prefix}.qdq.onnx`)
    const labels = job.labels ? await readLabels(job.labels) : undefined
    let evaluation: Comparison | undefined
    if (job.evaluation) {
      const data = await openDataSource(job.evaluation, sim.model.graph, { batchSize: job.batchSize })
      const fp32 = await OrtRunner.create(reference, { name: `${job.model} (FP32)` })
      try {
        const bar2 = progress('evaluating', { quiet })
        evaluation = await compareOutputs((f) => fp32.run(f), (f) => sim.run(f), data.batches(), { labels, signal, onProgress: (n) => bar2.update(n, data.count) })
        bar2.done(`${evaluation.samples} samples`)
      } finally {
        await fp32.close()
      }
    }
    // Counted now: sim.report.quantizers is placement's count, before the overrides.
    const q = sim.quantizers
    const quantizers = {
      activations: q.filter((x) => x.kind !== 'param' && x.enabled).length,
      params: q.filter((x) => x.kind === 'param' && x.enabled).length,
      disabled: q.filter((x) => !x.enabled).length,
      tied: q.filter((x) => x.enabled && x.tiedTo).length,
    }
    const result: QuantizeResult = {
      model: job.model, config: sim.report.config, files: exported.files, quantizers,
      floatBytes, quantizedBytes, calibration: { samples, seconds }, evaluation,
      notes: [...sim.report.placement.notes, ...(exported.qdq?.notes ?? [])],
      techniques: Object.keys(techniqueReports).length > 0 ? techniqueReports : undefined,
    }
    const scheme = job.sim.quantScheme ?? 'min_max'
    const report: ReportData = {
      title: `quantkit: ${basename(job.model)}`,
      createdAt: new Date().toISOString(),
      quantkitVersion: (require('../../package.json') as { version: string }).version,
      model: { file: job.model, floatBytes, quantizedBytes: quantizedBytes || undefined, parameters: [...sim.model.graph.initializers.values()].reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0), ops: opHistogram(sim.model.graph) },
      metric: evaluation?.accuracy ? 'accuracy' : 'sqnr',
      results: evaluation ? [{
        name: `${sim.report.config}, ${scheme}`,
        settings: { config: sim.report.config, scheme, paramBitwidth: job.sim.paramBitwidth ?? 8, activationBitwidth: job.sim.activationBitwidth ?? 8 },
        accuracy: evaluation.accuracy?.other,
        outputSqnrDb: Object.fromEntries(evaluation.outputs.map((o) => [o.output, o.sqnrDb])),
        top1Agreement: evaluation.top1Agreement,
      }] : [],
      notes: result.notes,
      ...(Object.keys(full).length > 0 ? { techniques: techniquesReportData(full) } : {}),
    }
    if (evaluation?.accuracy) report.results.unshift({ name: 'FP32', settings: { precision: 'float32' }, accuracy: evaluation.accuracy.reference, top1Agreement: 1 })
    if (job.analysis.enabled) {
      const source = await openDataSource(job.evaluation ?? job.calibration, sim.model.graph, { batchSize: job.batchSize })
      const bar3 = progress('analyzing', { quiet, unit: 'configurations' })
      const a = await analyzeQuantization(sim, source.batches(), {
        labels: job.evaluation ? labels : undefined,
        // Accuracy moves in steps of 1/samples: 64 samples cannot tell layers apart.
        sensitivitySamples: job.evaluation && labels ? Math.min(labels.length, 1000) : undefined,
        layers: job.analysis.layers ?? 'all',
        signal,
        onProgress: (p) => { if (p.phase === 'sensitivity') bar3.update(p.done, p.total) },
      })
      bar3.done()
      Object.assign(report, { metric: a.metric, sensitivity: a.sensitivity, layerSqnr: a.layerSqnr, weightRanges: a.weightRanges, histograms: a.histograms })
    }
    const reportPath = join(outDir, 'report.json')
    await writeJsonFile(reportPath, report)
    result.files.push(reportPath)
    const htmlPath = join(outDir, 'report.html')
    await writeReport(htmlPath, report)
    result.files.push(htmlPath)
    return result
  } finally {
    await sim.close()
  }
}

export function printSummary(r: QuantizeResult): void {
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
