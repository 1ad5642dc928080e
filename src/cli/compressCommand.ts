// `quantkit compress <model.onnx> --scheme … --target 0.5 --eval <module> --out <dir>`: compressModel
// with the user's evaluation module run in worker threads; writes <name>.compressed.onnx,
// stats.json and report.html (each atomically, only once the search has finished: an interrupted
// run leaves nothing behind).
import { mkdir, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { compressModel, COMPRESSION_SCHEMES, type CompressionStats } from '../compression/compressModel.js'
import type { CompressionSchemeName, CostMetric } from '../compression/layerCompressor.js'
import { openDataSource } from '../data/index.js'
import { AbortError } from '../errors.js'
import { opHistogram } from '../graph/opHistogram.js'
import { loadModel } from '../onnx/loadModel.js'
import { saveModel } from '../onnx/saveModel.js'
import { writeReport } from '../report/report.js'
import type { ReportData } from '../report/reportData.js'
import { positiveInt } from './args.js'
import { toJson, writeJsonFile } from './json.js'
import { progress } from './progress.js'
import { UsageError } from './usageError.js'

export const COMPRESS_USAGE = `usage: quantkit compress <model.onnx> --scheme <scheme> --target <ratio> --eval <module> [options]
  --scheme <s>          weight_svd, spatial_svd or channel_pruning
  --target <ratio>      the fraction of the cost to keep, in (0, 1], e.g. 0.5
  --eval <module>       a module exporting evaluate(modelBytes, ctx) → score (higher is better); runs in worker threads
  --metric <m>          mac (default) or memory (parameters)
  --data <source>       calibration data (image folder, .npy, .npz, .json, .js module): needed by channel_pruning
  --candidates <n>      candidate ratios 1/n … (n-1)/n per layer (default 10)
  --ignore <a,b>        node names to leave alone
  --rank-multiple <n>   round ranks (kept channels) up to a multiple of n (default 1, as AIMET)
  --concurrency <n>     evaluation worker threads (default: half the cores)
  --batch-size <n>      samples per calibration batch
  --out <dir>           output folder (default: out): <name>.compressed.onnx, stats.json, report.html
  --json                print the stats as JSON on stdout
  --quiet               no progress output`

export async function compressCommand(argv: string[], signal?: AbortSignal): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        scheme: { type: 'string' }, target: { type: 'string' }, eval: { type: 'string' }, metric: { type: 'string' },
        data: { type: 'string' }, candidates: { type: 'string' }, ignore: { type: 'string' }, 'rank-multiple': { type: 'string' },
        concurrency: { type: 'string' }, 'batch-size': { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
      },
    })
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${COMPRESS_USAGE}`)
  }
  const { values: v, positionals } = parsed
  if (positionals.length !== 1) throw new UsageError(`expected one model file\n${COMPRESS_USAGE}`)
  if (!v.scheme || !COMPRESSION_SCHEMES.includes(v.scheme as CompressionSchemeName)) throw new UsageError(`--scheme: expected one of ${COMPRESSION_SCHEMES.join(', ')}${v.scheme ? `, got ${JSON.stringify(v.scheme)}` : ''}\n${COMPRESS_USAGE}`)
  const target = Number(v.target)
  if (v.target === undefined || !(target > 0 && target <= 1)) throw new UsageError(`--target: expected a ratio in (0, 1]${v.target !== undefined ? `, got ${JSON.stringify(v.target)}` : ''}\n${COMPRESS_USAGE}`)
  if (!v.eval) throw new UsageError(`--eval <module> is required\n${COMPRESS_USAGE}`)
  const metric = (v.metric ?? 'mac') as CostMetric
  if (metric !== 'mac' && metric !== 'memory') throw new UsageError(`--metric: expected mac or memory, got ${JSON.stringify(v.metric)}`)
  const candidates = positiveInt(v.candidates, 'candidates')
  if (candidates !== undefined && candidates < 2) throw new UsageError('--candidates: expected at least 2')
  const evalModule = resolve(v.eval)
  try {
    await stat(evalModule)
  } catch {
    throw new UsageError(`--eval: no file ${evalModule}`)
  }
  const modelPath = positionals[0]!
  const outDir = resolve(v.out ?? 'out')
  const name = basename(modelPath).replace(/\.onnx$/i, '')
  const quiet = v.quiet

  const model = await loadModel(modelPath)
  const data = v.data ? await openDataSource(v.data, model.graph, { batchSize: positiveInt(v['batch-size'], 'batch-size') }) : undefined
  const bar = progress('compress: scoring layers', { quiet, unit: 'evaluations' })
  const { model: compressed, stats } = await compressModel(model, {
    scheme: v.scheme as CompressionSchemeName, targetRatio: target, costMetric: metric, evaluate: evalModule,
    data: data ? () => data.batches() : undefined, sample: data ? await firstBatch(data.batches()) : undefined,
    candidates, ignore: v.ignore ? v.ignore.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    rankMultiple: positiveInt(v['rank-multiple'], 'rank-multiple'), concurrency: positiveInt(v.concurrency, 'concurrency'),
    signal, onProgress: (p) => { if (p.phase === 'evaluate') bar.update(p.done!, p.total) },
  })
  bar.done(`${stats.evaluations} evaluations`)
  if (signal?.aborted) throw new AbortError('compress: aborted', { cause: signal.reason })

  await mkdir(outDir, { recursive: true })
  const modelOut = join(outDir, `${name}.compressed.onnx`)
  await saveModel(compressed, modelOut)
  const statsPath = join(outDir, 'stats.json')
  await writeJsonFile(statsPath, { model: modelPath, output: modelOut, ...stats })
  const htmlPath = join(outDir, 'report.html')
  await writeReport(htmlPath, await reportData(modelPath, modelOut, compressed.graph, stats))
  const files = [modelOut, statsPath, htmlPath]

  if (v.json) {
    console.log(toJson({ model: modelPath, files, ...stats }))
    return 0
  }
  printSummary(modelPath, stats, files)
  return 0
}

async function firstBatch<T>(batches: AsyncIterable<T>): Promise<T | undefined> {
  for await (const b of batches) return b
  return undefined
}

async function reportData(modelPath: string, outPath: string, graph: Parameters<typeof opHistogram>[0], stats: CompressionStats): Promise<ReportData> {
  const size = async (f: string) => (await stat(f)).size
  const [floatBytes, compressedBytes] = await Promise.all([size(modelPath), size(outPath)])
  return {
    title: `quantkit compress: ${basename(modelPath)}`,
    createdAt: new Date().toISOString(),
    quantkitVersion: (require('../../package.json') as { version: string }).version,
    model: {
      file: modelPath, floatBytes,
      parameters: [...graph.initializers.values()].reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0),
      ops: opHistogram(graph),
    },
    metric: 'sqnr',
    results: [
      { name: 'original', settings: { score: stats.baselineScore, macs: stats.costBefore.mac, params: stats.costBefore.memory, bytes: floatBytes } },
      { name: `${stats.scheme} to ${stats.targetRatio}`, settings: { score: stats.compressedScore, macs: stats.costAfter.mac, params: stats.costAfter.memory, bytes: compressedBytes } },
    ],
    compression: stats,
    notes: [
      `Scores come from the --eval module (higher is better); the model section counts the compressed model's nodes and parameters.`,
      ...stats.notes,
      ...stats.skipped.map((s) => `${s.node} left alone: ${s.reason}`),
    ],
  }
}

function printSummary(modelPath: string, s: CompressionStats, files: string[]): void {
  const m = s.costMetric === 'mac' ? 'MACs' : 'parameters'
  console.log(`\n${modelPath} → ${s.scheme}, target ${s.targetRatio} of the ${m}`)
  console.log(`  reached ${s.achievedRatio.toFixed(4)}: ${s.costBefore[s.costMetric].toLocaleString('en-US')} → ${s.costAfter[s.costMetric].toLocaleString('en-US')} ${m}`)
  console.log(`  score: original ${s.baselineScore.toPrecision(4)}, compressed ${s.compressedScore.toPrecision(4)} (threshold ${s.threshold.toPrecision(4)})`)
  console.log(`  ${s.evaluations} evaluations in ${s.evaluationSeconds.toFixed(1)} s, ${s.seconds.toFixed(1)} s in all`)
  for (const l of s.layers) console.log(`  ${l.node}: ratio ${l.chosenRatio} (kept ${l.kept}/${l.full})`)
  for (const k of s.skipped) console.log(`  ${k.node}: left alone (${k.reason})`)
  console.log('  wrote:')
  for (const f of files) console.log(`    ${f}`)
}
