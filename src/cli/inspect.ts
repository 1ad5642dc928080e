// `quantkit inspect <model.onnx> [--json]`, `--quantizers`, `--kernels`.
import { formatOrtKernelReport, inspectOrtKernels } from '../export/ortKernels.js'
import { summarizeModel, type ModelSummary, type ValueSummary } from '../report/modelSummary.js'
import { QuantSim } from '../sim/quantSim.js'

const shape = (v: ValueSummary) => (v.shape ? `[${v.shape.map((d) => d ?? '?').join(', ')}]` : '(rank unknown)')

function print(s: ModelSummary): void {
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`
  console.log(`${s.file}`)
  console.log(`  IR ${s.irVersion}, opsets ${s.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}${s.producer ? `, produced by ${s.producer}` : ''}`)
  for (const v of s.inputs) console.log(`  input  ${v.name}: ${v.type} ${shape(v)}`)
  for (const v of s.outputs) console.log(`  output ${v.name}: ${v.type} ${shape(v)}`)
  console.log(`  ${s.nodes} nodes${s.subgraphs ? `, ${s.subgraphs} subgraphs` : ''}`)
  const ops = Object.entries(s.ops).sort((a, b) => b[1] - a[1])
  console.log(`  ops: ${ops.map(([op, n]) => `${op} ${n}`).join(', ')}`)
  console.log(`  parameters: ${s.parameters.elements.toLocaleString('en-US')} elements in ${s.parameters.tensors} tensors, ${mb(s.parameters.bytes)}`)
  console.log(`  external data: ${s.externalData.tensors ? `${s.externalData.tensors} tensors in ${s.externalData.files.join(', ')}` : 'none'}`)
  const p = s.preparation
  console.log('  preparation would:')
  console.log(`    turn ${p.constantsToInitializers} Constant nodes into initializers, fold ${p.foldedConstants} constant computations,`)
  console.log(`    remove ${p.removedIdentities} Identity/Dropout nodes, fold ${p.foldedBatchNorms.length} BatchNorms and ${p.foldedMulAdd} Mul/Add by constants`)
  console.log(`    (${p.removedNodes} nodes fewer)`)
  for (const n of p.notes.slice(0, 10)) console.log(`    note: ${n}`)
  if (p.notes.length > 10) console.log(`    … ${p.notes.length - 10} more notes (--json shows all)`)
}

function option(args: string[], ...names: string[]): string | undefined {
  for (const n of names) {
    const i = args.indexOf(n)
    if (i >= 0) return args[i + 1]
    const eq = args.find((a) => a.startsWith(`${n}=`))
    if (eq) return eq.slice(n.length + 1)
  }
  return undefined
}

/** The quantizer table QuantSim would build (placement only, no calibration). */
async function quantizerTable(path: string, args: string[]): Promise<number> {
  const config = option(args, '--config', '--preset')
  const sim = await QuantSim.create(path, { config })
  try {
    const rows = sim.quantizers.map((q) => ({
      tensor: q.tensor, kind: q.kind, op: q.node, opType: q.opType, enabled: q.enabled, bitwidth: q.spec.bitwidth,
      symmetric: q.spec.symmetric, axis: q.spec.axis ?? null, tiedTo: q.tiedTo ?? null, fixedRange: q.fixedRange ?? null, note: q.note ?? null,
    }))
    if (args.includes('--json')) {
      console.log(JSON.stringify({ config: sim.report.config, summary: sim.report.quantizers, notes: sim.report.placement.notes, quantizers: rows }, null, 2))
      return 0
    }
    const pad = (v: unknown, n: number) => { const t = String(v); return t.length >= n ? t.slice(0, n - 1) + '…' : t + ' '.repeat(n - t.length) }
    console.log(`${path}: quantizers under ${sim.report.config}`)
    console.log(`${pad('tensor', 36)} ${pad('kind', 7)} ${pad('op type', 18)} ${pad('on', 4)} ${pad('bw', 3)} ${pad('sym', 4)} ${pad('axis', 5)} note`)
    for (const r of rows) {
      const note = r.tiedTo ? `tied to ${r.tiedTo}` : r.fixedRange ? `fixed range [${r.fixedRange.min}, ${Number.isNaN(r.fixedRange.max) ? 'observed' : r.fixedRange.max}]` : r.note ?? ''
      console.log(`${pad(r.tensor, 36)} ${pad(r.kind, 7)} ${pad(r.opType || '(model input)', 18)} ${pad(r.enabled ? 'yes' : 'no', 4)} ${pad(r.bitwidth, 3)} ${pad(r.symmetric ? 'yes' : 'no', 4)} ${pad(r.axis ?? '', 5)} ${note}`)
    }
    const s = sim.report.quantizers
    console.log(`\n${s.activations} activation and ${s.params} param quantizers enabled, ${s.disabled} disabled, ${s.tied} tied`)
    for (const n of sim.report.placement.notes) console.log(`note: ${n}`)
    return 0
  } finally {
    await sim.close()
  }
}

/** Which integer kernels ONNX Runtime's CPU EP runs, read from the graph ORT optimised (src/export/ortKernels.ts). */
async function kernelTable(path: string, args: string[]): Promise<number> {
  const report = await inspectOrtKernels(path, { keepOptimizedModel: option(args, '--optimized-model') })
  if (args.includes('--json')) console.log(JSON.stringify(report, null, 2))
  else for (const line of formatOrtKernelReport(report)) console.log(line)
  return 0
}

export async function inspect(args: string[]): Promise<number> {
  const path = args.find((a, i) => !a.startsWith('--') && !['--config', '--preset', '--optimized-model'].includes(args[i - 1] ?? ''))
  if (!path) {
    console.error('usage: quantkit inspect <model.onnx> [--json] [--quantizers [--config <preset|file>]] [--kernels [--optimized-model <out.onnx>]]')
    return 2
  }
  if (args.includes('--quantizers')) return quantizerTable(path, args)
  if (args.includes('--kernels')) return kernelTable(path, args)
  const summary = await summarizeModel(path)
  if (args.includes('--json')) console.log(JSON.stringify(summary, null, 2))
  else print(summary)
  return 0
}
