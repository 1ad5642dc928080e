// `quantkit config show <preset|file> [--json]`: the resolved rules as a table and as
// ResolvedConfig.summary(); a misspelt preset or a bad file exits with 2 and the nearest name or key.
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { resolveConfig, presetConfig } = require('../dist/index.js')
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js')

function run(args) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cli, ...args])
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => { stdout += d })
    p.stderr.on('data', (d) => { stderr += d })
    p.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

test('config show htp_v73: hw_version, supergroups with Conv+Relu, per-channel Conv, the op table', async (t) => {
  const r = await run(['config', 'show', 'htp_v73'])
  t.is(r.status, 0, r.stderr)
  const line = (label) => r.stdout.split('\n').find((l) => l.trimStart().startsWith(label)) ?? ''
  t.regex(r.stdout, /^preset:htp_v73 \(aimet-onnx's htp_quantsim_config_v73\.json\)/)
  t.regex(line('hw_version:'), /V73/)
  t.true(line('supergroups:').split(/:\s+/)[1].split(', ').includes('Conv+Relu'), line('supergroups:'))
  t.regex(line('per-channel op types:'), /Conv, ConvTranspose, Gemm, MatMul/)
  t.regex(line('fusion passes:'), /LayerNormalization, RMSNormalization, MatmulAdd/)
  t.regex(line('model input:'), /quantized/)
  t.regex(line('strict symmetric:'), /no/)
  t.regex(r.stdout, /op type\s+output quantized\s+input quantized\s+symmetric\s+per-channel\s+encoding constraint\s+tie/)
  const row = (op) => line(`${op} `).trim().split(/\s{2,}/)
  t.deepEqual(row('Conv').slice(0, 5), ['Conv', 'yes', '–', 'no', 'yes'])
  t.deepEqual(row('Softmax').slice(0, 6), ['Softmax', 'yes', '–', 'no', 'no', '[0, 1]'])
  t.deepEqual(row('Concat').slice(0, 6), ['Concat', 'yes', '–', 'no', 'no', 'inputs ← output'])
  t.deepEqual(row('Reshape').slice(0, 2), ['Reshape', 'no quantizer'])
})

test('config show --json prints ResolvedConfig.summary()', async (t) => {
  const r = await run(['config', 'show', 'htp_v73', '--json'])
  t.is(r.status, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), JSON.parse(JSON.stringify(resolveConfig('htp_v73').summary())))
  const pt = JSON.parse((await run(['config', 'show', '--json', 'per_tensor'])).stdout)
  t.deepEqual(pt.perChannelOpTypes, [])
})

test('config show <file>: an AIMET config file; a misspelt key exits 2 with its JSON path and the nearest key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qk-configshow-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const good = join(dir, 'my_config.json')
  writeFileSync(good, JSON.stringify(presetConfig('htp_v75')))
  const r = await run(['config', 'show', good, '--json'])
  t.is(r.status, 0, r.stderr)
  const s = JSON.parse(r.stdout)
  t.is(s.source, good)
  t.deepEqual(s.ops, JSON.parse(JSON.stringify(resolveConfig('htp_v75').summary().ops)))

  const c = presetConfig('default')
  c.defaults.per_chanel_quantization = 'True'
  const bad = join(dir, 'bad.json')
  writeFileSync(bad, JSON.stringify(c))
  const b = await run(['config', 'show', bad])
  t.is(b.status, 2)
  t.regex(b.stderr, /defaults\.per_chanel_quantization: unknown key "per_chanel_quantization"; the nearest valid key is "per_channel_quantization"/)
})

test('config show: an unknown preset exits 2 naming the nearest; usage errors exit 2', async (t) => {
  const r = await run(['config', 'show', 'htp_v37'])
  t.is(r.status, 2)
  t.regex(r.stderr, /unknown config "htp_v37".*the nearest preset is "htp_v73"/)
  t.is(r.stdout, '')
  t.is((await run(['config', 'show', 'missing/config.json'])).status, 2)
  t.is((await run(['config'])).status, 2)
  t.is((await run(['config', 'shwo', 'htp_v73'])).status, 2)
  t.is((await run(['config', 'show'])).status, 2)
  t.is((await run(['config', 'show', 'htp_v73', '--yaml'])).status, 2)
})
