// The quantize / eval / analyze commands as a user runs them: files written, numbers printed,
// exit codes, --json on stdout, Ctrl-C leaving nothing half-written.
import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const cli = join(root, 'dist', 'cli', 'main.js')
const ex = (f) => join(root, 'examples', 'mnist', f)
const run = (args, opts = {}) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: root, ...opts })

test('quantize --json: files written, accuracy within 0.5 points of FP32, sizes', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'quantkit-cli-'))
  const r = run(['quantize', ex('mnist-cnn.onnx'), '--calib', ex('calibration.npy'), '--eval', ex('test-images.npy'), '--labels', ex('test-labels.npy'),
    '--batch-size', '100', '--out', out, '--json', '--quiet'])
  t.is(r.status, 0, r.stderr)
  const res = JSON.parse(r.stdout)
  t.deepEqual(readdirSync(out).sort(), ['mnist-cnn.encodings', 'mnist-cnn.onnx', 'mnist-cnn.qdq.onnx', 'report.html', 'report.json'])
  t.is(res.evaluation.samples, 1000)
  t.true(res.evaluation.accuracy.reference >= 0.98)
  t.true(res.evaluation.accuracy.reference - res.evaluation.accuracy.other <= 0.005)
  t.true(res.floatBytes / res.quantizedBytes > 3)
  t.is(r.stderr, '') // --quiet: nothing on stderr
})

test('eval compares two models; analyze writes the report', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'quantkit-cli-'))
  t.is(run(['quantize', ex('mnist-cnn.onnx'), '--calib', ex('calibration.npy'), '--batch-size', '64', '--out', out, '--quiet']).status, 0)
  const e = run(['eval', join(out, 'mnist-cnn.onnx'), join(out, 'mnist-cnn.qdq.onnx'), '--data', ex('test-images.npy'), '--labels', ex('test-labels.npy'), '--batch-size', '100', '--json', '--quiet'])
  t.is(e.status, 0, e.stderr)
  const r = JSON.parse(e.stdout)
  t.true(r.outputs[0].sqnrDb > 25)
  t.true(r.accuracy.other > 0.975)
  const an = mkdtempSync(join(tmpdir(), 'quantkit-an-'))
  const a = run(['analyze', ex('mnist-cnn.onnx'), '--calib', ex('calibration.npy'), '--batch-size', '64', '--out', an, '--json', '--quiet'])
  t.is(a.status, 0, a.stderr)
  const res = JSON.parse(a.stdout)
  t.true(res.sensitivity.length >= 5)
  t.true(existsSync(join(an, 'report.html')))
})

test('exit codes: 2 for usage errors, 1 for failures naming the file', (t) => {
  t.is(run(['quantize']).status, 2)
  t.is(run(['quantize', ex('mnist-cnn.onnx')]).status, 2) // no --calib
  t.is(run(['quantize', ex('mnist-cnn.onnx'), '--calib', ex('calibration.npy'), '--param-bw', 'eight']).status, 2)
  t.is(run(['frobnicate']).status, 2)
  const missing = run(['quantize', '/nonexistent/m.onnx', '--calib', ex('calibration.npy')])
  t.is(missing.status, 1)
  t.regex(missing.stderr, /\/nonexistent\/m\.onnx/)
  const wrong = run(['quantize', ex('mnist-cnn.onnx'), '--calib', ex('test-labels.npy'), '--out', mkdtempSync(join(tmpdir(), 'qk-'))])
  t.is(wrong.status, 1)
  t.regex(wrong.stderr, /test-labels\.npy.*"input"/s)
})

test('Ctrl-C during calibration stops cleanly and writes nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quantkit-int-'))
  // A calibration module that is slow: one batch every 200 ms, forever.
  const mod = join(dir, 'slow.mjs')
  writeFileSync(mod, `export default async function* () { for (;;) { await new Promise((r) => setTimeout(r, 200)); yield { input: { data: new Float32Array(784).fill(0.5), dims: [1, 1, 28, 28] } } } }\n`)
  const out = join(dir, 'out')
  const child = spawn(process.execPath, [cli, 'quantize', ex('mnist-cnn.onnx'), '--calib', mod, '--out', out], { cwd: root })
  let stderr = ''
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  child.stderr.on('data', (d) => {
    stderr += d
    if (/calibrating: \d/.test(stderr) && !child.killed) child.kill('SIGINT')
  })
  const code = await exited
  t.is(code, 1, stderr)
  t.regex(stderr, /stopping|abort/i)
  t.false(existsSync(out) && readdirSync(out).some((f) => !f.startsWith('.')))
})

test('--mode dynamic, weight-only and fp16: a model file each, accuracy within a point of FP32', (t) => {
  for (const mode of ['dynamic', 'weight-only', 'fp16']) {
    const out = mkdtempSync(join(tmpdir(), `quantkit-${mode}-`))
    const r = run(['quantize', ex('mnist-cnn.onnx'), '--mode', mode, '--calib', ex('calibration.npy'), '--eval', ex('test-images.npy'), '--labels', ex('test-labels.npy'),
      '--batch-size', '100', '--out', out, '--json', '--quiet'])
    t.is(r.status, 0, `${mode}: ${r.stderr}`)
    const res = JSON.parse(r.stdout)
    t.is(res.mode, mode)
    t.true(res.evaluation.accuracy.reference - res.evaluation.accuracy.other <= 0.01, `${mode}: ${JSON.stringify(res.evaluation.accuracy)}`)
    t.true(res.quantizedBytes < res.floatBytes * 0.6, `${mode}: ${res.quantizedBytes} of ${res.floatBytes} bytes`)
    t.true(readdirSync(out).some((f) => f.endsWith('.onnx')))
  }
  t.is(run(['quantize', ex('mnist-cnn.onnx'), '--mode', 'turbo']).status, 2)
})

test('--seq-mse and --bias-correction at W4A8: techniques reported, accuracy held against FP32', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'quantkit-tech-'))
  const r = run(['quantize', ex('mnist-cnn.onnx'), '--calib', ex('calibration.npy'), '--eval', ex('test-images.npy'), '--labels', ex('test-labels.npy'),
    '--batch-size', '64', '--param-bw', '4', '--seq-mse', '--bias-correction', '--out', out, '--json', '--quiet'])
  t.is(r.status, 0, r.stderr)
  const res = JSON.parse(r.stdout)
  t.true(res.techniques.seqMse.length >= 5)
  t.true(res.techniques.seqMse.every((l) => l.lossAfter <= l.lossBefore))
  t.true(res.techniques.biasCorrection.length >= 5)
  t.true(res.evaluation.accuracy.reference - res.evaluation.accuracy.other <= 0.005, JSON.stringify(res.evaluation.accuracy))
})
