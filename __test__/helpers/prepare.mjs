// Shared pieces of the graph and preparation tests: models built from a spec and loaded into the
// IR, seeded weights, ORT runs of a Model, and the error measure the preparation proof uses.
import { createRequire } from 'node:module'
import { runModel } from './ort.mjs'

const require = createRequire(import.meta.url)
const { buildModel } = require('../../dist/onnx/modelBuilder.js')
const { loadModel } = require('../../dist/onnx/loadModel.js')
const { saveModel } = require('../../dist/onnx/saveModel.js')
const { DataType } = require('../../dist/onnx/elementType.js')

export const T = DataType

import { random } from './random.mjs'
export { random }

/** A float32 tensor of seeded values in [lo, hi). */
export function f32(name, dims, seed, lo = -1, hi = 1) {
  const rnd = random(seed)
  const n = dims.reduce((a, b) => a * b, 1)
  return { name, dataType: T.FLOAT, dims, data: Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd()) }
}

export const tensor = (name, dims, values, dataType = T.FLOAT) => ({
  name,
  dataType,
  dims,
  data: dataType === T.INT64 ? BigInt64Array.from(values, BigInt) : Float32Array.from(values),
})

/** BatchNormalization parameters for `c` channels (var > 0), as four initializers named `<p>.scale` … */
export function bnParams(p, c, seed) {
  return [f32(`${p}.scale`, [c], seed, 0.5, 1.5), f32(`${p}.B`, [c], seed + 1), f32(`${p}.mean`, [c], seed + 2), f32(`${p}.var`, [c], seed + 3, 0.2, 2)]
}
export const bnInputs = (x, p) => [x, `${p}.scale`, `${p}.B`, `${p}.mean`, `${p}.var`]

/** A ModelSpec (modelBuilder.ts) as a loaded Model. */
export async function built(spec) {
  return loadModel(buildModel(spec))
}

export function feed(dims, seed) {
  const t = f32('', dims, seed)
  return { type: 'float32', data: t.data, dims }
}

export async function run(model, feeds) {
  return runModel(await saveModel(model), feeds)
}

/** max |a − b| / max |a| over one output: the error relative to the output's own scale. */
export function relMaxError(a, b) {
  let peak = 0
  let worst = 0
  for (let i = 0; i < a.length; i++) {
    peak = Math.max(peak, Math.abs(a[i]))
    worst = Math.max(worst, Math.abs(a[i] - b[i]))
  }
  return peak === 0 ? worst : worst / peak
}

/** Runs both models on the same feeds and returns the worst relMaxError over the outputs (by name). */
export async function compareOutputs(original, prepared, feeds) {
  const a = await run(original, feeds)
  const b = await run(prepared, feeds)
  let worst = 0
  for (const name of Object.keys(a)) {
    if (!b[name]) throw new Error(`prepared model lacks output ${name}`)
    worst = Math.max(worst, relMaxError(a[name].data, b[name].data))
  }
  return worst
}
