// `quantkit compress` as a user runs it: the MNIST CNN to half its MACs with an evaluation module
// in worker threads, files written, stats consistent with the model written; usage errors; an
// unreachable target; Ctrl-C leaving nothing behind.
import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadMnist, mnistAccuracy } from './helpers/mnist.mjs'
import { runModel } from './helpers/ort.mjs'
import { launchChromium, openHtml, paintedCharts } from './helpers/browser.mjs'

const require = createRequire(import.meta.url)
const { loadModel, measureLayerShapes, modelCost } = require('../dist/index.js')

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const cli = join(root, 'dist', 'cli', 'main.js')
const mnist = join(root, 'examples', 'mnist', 'mnist-cnn.onnx')
const evalModule = join(root, '__test__', 'helpers', 'mnistEvaluate.mjs')
const env = { ...process.env, QUANTKIT_EVAL_COUNT: '200' }
const run = (args) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: root, env })

test('compress --scheme weight_svd --target 0.5: model, stats.json and report.html; the model written meets the target', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'quantkit-compress-'))
  const r = run(['compress', mnist, '--scheme', 'weight_svd', '--target', '0.5', '--eval', evalModule, '--candidates', '5', '--concurrency', '1', '--out', out, '--json', '--quiet'])
  t.is(r.status, 0, r.stderr)
  t.deepEqual(readdirSync(out).sort(), ['mnist-cnn.compressed.onnx', 'report.html', 'stats.json'])
  const stats = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8'))
  const printed = JSON.parse(r.stdout)
  t.is(printed.achievedRatio, stats.achievedRatio)
  t.true(stats.achievedRatio <= 0.5)
  t.deepEqual(stats.candidates, [0.2, 0.4, 0.6, 0.8])
  // Independent of the stats: price the written model's layers afresh.
  const original = await loadModel(mnist)
  const compressed = await loadModel(join(out, 'mnist-cnn.compressed.onnx'))
  const before = modelCost(original, await measureLayerShapes(original))
  const after = modelCost(compressed, await measureLayerShapes(compressed))
  t.is(before.mac, stats.costBefore.mac)
  t.is(after.mac, stats.costAfter.mac)
  t.true(after.mac <= 0.5 * before.mac, `${after.mac} of ${before.mac}`)
  // The model runs, and its accuracy is what the module reported for it (the same 200 digits).
  const set = loadMnist({ split: 'test', count: 200 })
  const acc = await mnistAccuracy((f) => runModel(join(out, 'mnist-cnn.compressed.onnx'), { input: { type: 'float32', ...f.input } }), set, 100)
  t.true(Math.abs(acc - stats.compressedScore) <= 0.01, `${acc} vs ${stats.compressedScore}`)
  t.true(acc > 0.3, `accuracy ${acc}`)
  const html = readFileSync(join(out, 'report.html'), 'utf8')
  t.regex(html, /data-section="compression"/)
  // The sensitivity chart draws offline with no errors, for all layers and for one.
  const chromium = await launchChromium()
  if (chromium.skipped) return t.log(chromium.skipped)
  try {
    const { page, problems, offline } = await openHtml(chromium.browser, html)
    const chart = async () => (await paintedCharts(page)).find((c) => c.chart === 'compression')
    t.true((await chart())?.painted > 0, 'the compression chart drew')
    const pick = page.locator('[data-section="compression"] select')
    t.is(await pick.locator('option').count(), stats.layers.length + 1)
    await pick.selectOption(stats.layers[1].node)
    t.true((await chart())?.painted > 0, 'one layer drawn')
    t.deepEqual(problems, [])
    t.deepEqual(offline(), [])
  } finally {
    await chromium.browser.close()
  }
})

test('compress: usage errors exit 2', (t) => {
  t.is(run(['compress', mnist, '--scheme', 'weight_svd', '--target', '0.5']).status, 2) // no --eval
  t.is(run(['compress', mnist, '--scheme', 'tucker', '--target', '0.5', '--eval', evalModule]).status, 2)
  t.is(run(['compress', mnist, '--scheme', 'weight_svd', '--target', '1.5', '--eval', evalModule]).status, 2)
  t.is(run(['compress', mnist, '--scheme', 'weight_svd', '--target', '0.5', '--eval', '/nonexistent/eval.mjs']).status, 2)
})

test('compress: an unreachable target exits 1 naming the best reachable ratio, and writes nothing', (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'quantkit-compress-')), 'out')
  const r = run(['compress', mnist, '--scheme', 'spatial_svd', '--target', '0.1', '--eval', evalModule, '--out', out, '--quiet'])
  t.is(r.status, 1)
  t.regex(r.stderr, /UnreachableTargetError: .*best reachable is 0\.\d+/)
  t.false(existsSync(out))
})

test('compress: Ctrl-C while scoring stops cleanly and writes nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quantkit-compress-int-'))
  const slow = join(dir, 'slow.mjs')
  writeFileSync(slow, 'export async function evaluate() { await new Promise((r) => setTimeout(r, 300)); return 1 }\n')
  const out = join(dir, 'out')
  const child = spawn(process.execPath, [cli, 'compress', mnist, '--scheme', 'weight_svd', '--target', '0.5', '--eval', slow, '--out', out], { cwd: root })
  let stderr = ''
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  child.stderr.on('data', (d) => {
    stderr += d
    if (/scoring layers: \d/.test(stderr) && !child.killed) child.kill('SIGINT')
  })
  const code = await exited
  t.is(code, 1, stderr)
  t.regex(stderr, /AbortError/)
  t.false(existsSync(out))
})

test('the README example: examples/mnist/evaluate.mjs scores the original model at its accuracy on the bundled digits', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'quantkit-compress-example-'))
  const example = join(root, 'examples', 'mnist', 'evaluate.mjs')
  const r = run(['compress', mnist, '--scheme', 'spatial_svd', '--target', '0.5', '--eval', example, '--candidates', '5', '--out', out, '--json', '--quiet'])
  t.is(r.status, 0, r.stderr)
  const stats = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8'))
  t.true(stats.achievedRatio <= 0.5)
  // Independent: the FP32 model's top-1 accuracy on the same first 500 bundled digits, computed here.
  const images = join(root, 'examples', 'mnist', 'test-images.npy')
  const labels = join(root, 'examples', 'mnist', 'test-labels.npy')
  const bytes = readFileSync(images)
  const pixels = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 128, bytes.byteOffset + 128 + 500 * 784 * 4))
  const classes = readFileSync(labels).subarray(128, 128 + 500)
  const outputs = await runModel(mnist, { input: { type: 'float32', data: pixels, dims: [500, 1, 28, 28] } })
  const scores = Object.values(outputs)[0].data
  let correct = 0
  for (let i = 0; i < 500; i++) {
    let best = 0
    for (let c = 1; c < 10; c++) if (scores[i * 10 + c] > scores[i * 10 + best]) best = c
    if (best === classes[i]) correct++
  }
  t.is(stats.baselineScore, correct / 500)
})
