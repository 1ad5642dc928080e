// The evaluation interface: a module path run in worker threads, and an in-process function,
// give the same score for the same candidate; bad modules and bad scores are typed errors naming
// the module or the candidate; abort rejects at once.
import test from 'ava'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { workerEvaluator, functionEvaluator, EvaluationError, AbortError, loadModel } = require('../dist/index.js')

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const mnist = join(root, 'examples', 'mnist', 'mnist-cnn.onnx')
const dir = mkdtempSync(join(tmpdir(), 'quantkit-eval-'))
const mod = (name, text) => {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}

test('a module in a worker pool and the same function in process score a model identically', async (t) => {
  process.env.QUANTKIT_EVAL_COUNT = '100'
  const path = join(root, '__test__', 'helpers', 'mnistEvaluate.mjs')
  const pool = await workerEvaluator(path, { concurrency: 2, threads: 1 })
  const { evaluate } = await import(path)
  const inProcess = functionEvaluator(evaluate)
  try {
    const model = await loadModel(mnist)
    const [a, b, c] = await Promise.all([pool.evaluate(model, 'mnist 1'), pool.evaluate(model, 'mnist 2'), inProcess.evaluate(model, 'mnist 3')])
    t.is(a, b)
    t.is(a, c)
    t.true(a > 0.9, `accuracy ${a}`)
  } finally {
    await pool.close()
    await inProcess.close()
  }
})

test('the worker receives bytes and a context; jobs beyond the pool size queue', async (t) => {
  const p = mod('ctx.mjs', 'export function evaluate(bytes, ctx) { return bytes.length * 1000 + ctx.worker * 10 + ctx.threads }\n')
  const pool = await workerEvaluator(p, { concurrency: 2, threads: 3 })
  try {
    const scores = await Promise.all([1, 2, 3, 4, 5].map((n) => pool.evaluate(new Uint8Array(n), `job ${n}`)))
    scores.forEach((s, i) => {
      t.is(Math.floor(s / 1000), i + 1)
      t.true([3, 13].includes(s % 1000), `worker index and threads: ${s % 1000}`)
    })
  } finally {
    await pool.close()
  }
})

test('a module without evaluate, or that fails to load, is an error naming it', async (t) => {
  const none = mod('none.mjs', 'export const x = 1\n')
  await t.throwsAsync(workerEvaluator(none, { concurrency: 1 }), { instanceOf: EvaluationError, message: /none\.mjs exports no function `evaluate/ })
  const broken = mod('broken.mjs', 'throw new Error("cannot start")\n')
  await t.throwsAsync(workerEvaluator(broken, { concurrency: 1 }), { instanceOf: EvaluationError, message: /broken\.mjs: cannot start/ })
})

test('a throwing evaluate or a non-number names the candidate; the pool keeps working', async (t) => {
  const p = mod('picky.mjs', 'export function evaluate(bytes, ctx) { if (bytes[0] === 1) throw new Error("bad model"); if (bytes[0] === 2) return "0.9"; if (bytes[0] === 3) return Infinity; return 0.5 }\n')
  const pool = await workerEvaluator(p, { concurrency: 1 })
  try {
    const e1 = await t.throwsAsync(pool.evaluate(Uint8Array.of(1), 'layer "a" at ratio 0.3'), { instanceOf: EvaluationError })
    t.regex(e1.message, /layer "a" at ratio 0\.3: bad model/)
    t.is(e1.label, 'layer "a" at ratio 0.3')
    await t.throwsAsync(pool.evaluate(Uint8Array.of(2), 'b'), { instanceOf: EvaluationError, message: /returned string 0\.9 for b/ })
    await t.throwsAsync(pool.evaluate(Uint8Array.of(3), 'c'), { instanceOf: EvaluationError, message: /Infinity for c/ })
    t.is(await pool.evaluate(Uint8Array.of(0), 'd'), 0.5)
  } finally {
    await pool.close()
  }
  const f = functionEvaluator(() => { throw new Error('nope') })
  await t.throwsAsync(f.evaluate(Uint8Array.of(0), 'e'), { instanceOf: EvaluationError, message: /for e: nope/ })
})

test('abort rejects a queued or running evaluation at once', async (t) => {
  const p = mod('slow.mjs', 'export async function evaluate() { await new Promise((r) => setTimeout(r, 400)); return 1 }\n')
  const pool = await workerEvaluator(p, { concurrency: 1 })
  try {
    const ac = new AbortController()
    const running = pool.evaluate(Uint8Array.of(0), 'running', ac.signal)
    const queued = pool.evaluate(Uint8Array.of(0), 'queued', ac.signal)
    setTimeout(() => ac.abort(), 50)
    const t0 = Date.now()
    await t.throwsAsync(running, { instanceOf: AbortError })
    await t.throwsAsync(queued, { instanceOf: AbortError })
    t.true(Date.now() - t0 < 350, 'rejected before the running evaluation finished')
    t.is(await pool.evaluate(Uint8Array.of(0), 'after'), 1, 'the pool still works')
  } finally {
    await pool.close()
  }
})
