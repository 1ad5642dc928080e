// `quantkit inspect <model.onnx> [--json]`.
import { summarizeModel, type ModelSummary, type ValueSummary } from '../report/modelSummary.js'

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

export async function inspect(args: string[]): Promise<number> {
  const path = args.find((a) => !a.startsWith('--'))
  if (!path) {
    console.error('usage: quantkit inspect <model.onnx> [--json]')
    return 2
  }
  const summary = await summarizeModel(path)
  if (args.includes('--json')) console.log(JSON.stringify(summary, null, 2))
  else print(summary)
  return 0
}
