// `quantkit config show <preset|file> [--json]`: the rules a config resolves to (what placement
// will do), as a table or as ResolvedConfig.summary() in JSON. A bad name or file exits with 2.
import { parseArgs } from 'node:util'
import { resolveConfig, type ResolvedConfig, type ResolvedConfigSummary, type OpRule, type ParamRule } from '../config/resolve.js'
import { PRESET_AIMET_FILES, presetQuantizerDefaults } from '../config/presets/index.js'
import type { SupportedKernel } from '../config/format.js'
import { ConfigError } from '../errors.js'
import { UsageError } from './usageError.js'

export const CONFIG_USAGE = `usage: quantkit config show <preset|file> [--json]
  <preset|file>  a preset (default, per_channel, per_tensor, htp_v66 … htp_v85, enpu_v6, enpu_v7,
                 ort_x86, ort_x86_vnni, ort_arm) or an AIMET quantsim config file
  --json         print the resolved rules (ResolvedConfig.summary()) as JSON`

const yesNo = (b: boolean | undefined) => (b === undefined ? '–' : b ? 'yes' : 'no')

function kernels(ks: readonly SupportedKernel[] | undefined): string {
  if (!ks?.length) return 'not restricted'
  return ks.map((k) => `act ${k.activation.dtype}${k.activation.bitwidth}${k.param ? ` / param ${k.param.dtype}${k.param.bitwidth}` : ''}`).join(', ')
}

function paramRule(r: ParamRule): string {
  return r.isQuantized ? (r.isSymmetric ? 'symmetric' : 'asymmetric') : 'off'
}

function constraint(r: OpRule): string {
  const c = r.encodingConstraints
  return c ? `[${c.min}, ${c.max ?? 'observed'}]` : ''
}

function tie(r: OpRule): string {
  return r.tie === 'inputs-take-output' ? 'inputs ← output' : r.tie === 'output-takes-input' ? 'output ← input' : ''
}

function print(c: ResolvedConfig, s: ResolvedConfigSummary): void {
  const aimetFile = c.preset ? PRESET_AIMET_FILES[c.preset] : undefined
  const file = aimetFile ? ` (aimet-onnx's ${aimetFile})` : c.preset ? ' (quantkit\'s preset for ONNX Runtime\'s CPU kernels, docs/ort-cpu.md)' : ''
  console.log(`${s.source}${file}`)
  const implied = presetQuantizerDefaults(c.preset)
  if (implied.paramBitwidth !== undefined) {
    console.log(`  QuantSim defaults:     ${implied.paramBitwidth}-bit params (ONNX Runtime's reduce_range; not in AIMET's format, so a file copy of this preset needs paramBitwidth ${implied.paramBitwidth})`)
  }
  console.log(`  hw_version:            ${s.hwVersion ?? '(none)'}`)
  console.log(`  per-channel op types:  ${s.perChannelOpTypes.join(', ') || '(none: per-tensor weights)'}`)
  console.log(`  supergroups:           ${s.supergroups.length ? s.supergroups.map((g) => g.join('+')).join(', ') : '(none)'}`)
  console.log(`  fusion passes:         ${s.fusionPasses.join(', ') || '(none)'}`)
  console.log(`  model input:           ${s.modelInput.isInputQuantized ? 'quantized' : 'not quantized'}`)
  console.log(`  model output:          ${s.modelOutput.isOutputQuantized ? 'quantized (forced)' : 'as the op rules say'}`)
  const d = s.defaults
  console.log(`  defaults:              outputs ${d.isOutputQuantized ? 'quantized' : 'not quantized'}, ${d.isSymmetric ? 'symmetric' : 'asymmetric'} activations, ` +
    `per_channel_quantization ${yesNo(d.perChannel)} (op types may override), params ${paramRule(d.params)}`)
  console.log(`  strict symmetric:      ${yesNo(s.strictSymmetric)}    unsigned symmetric: ${yesNo(s.unsignedSymmetric)}`)
  console.log(`  supported kernels:     ${kernels(s.supportedKernels)}`)
  console.log(`  params:                ${Object.entries(s.params).map(([n, r]) => `${n} ${paramRule(r)}`).join(', ')}`)

  const head = ['op type', 'output quantized', 'input quantized', 'symmetric', 'per-channel', 'encoding constraint', 'tie', 'params']
  const rows = Object.values(s.ops).map((r) => [
    r.opType,
    r.hasOutputQuantizer ? yesNo(r.isOutputQuantized) : 'no quantizer',
    yesNo(r.isInputQuantized),
    yesNo(r.isSymmetric),
    yesNo(r.perChannel),
    constraint(r),
    tie(r),
    Object.entries(r.params).map(([n, p]) => `${n} ${paramRule(p)}`).join(', '),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => `  ${cells.map((x, i) => (i === cells.length - 1 ? x : x.padEnd(widths[i]!))).join('  ')}`.trimEnd()
  console.log('')
  console.log(line(head))
  console.log(line(widths.map((w) => '-'.repeat(w))))
  for (const r of rows) console.log(line(r))
  for (const w of c.warnings) console.log(`  warning: ${w}`)
}

export async function configCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === '--help' || sub === 'help') {
    console.log(CONFIG_USAGE)
    return 0
  }
  if (sub !== 'show') throw new UsageError(`${sub === undefined ? 'expected a subcommand' : `unknown subcommand 'config ${sub}'`}\n${CONFIG_USAGE}`)
  let parsed
  try {
    parsed = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${CONFIG_USAGE}`)
  }
  if (parsed.positionals.length !== 1) throw new UsageError(`expected one preset name or config file\n${CONFIG_USAGE}`)
  let config: ResolvedConfig
  try {
    config = resolveConfig(parsed.positionals[0]!)
  } catch (err) {
    // A misspelt preset or a bad file is the caller's to fix: the message has the nearest name or key.
    if (err instanceof ConfigError) throw new UsageError(err.message)
    throw err
  }
  const summary = config.summary()
  if (parsed.values.json) console.log(JSON.stringify(summary, null, 2))
  else print(config, summary)
  return 0
}
