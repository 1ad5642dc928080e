// Runs a model in onnxruntime-node the way quantkit's conformance tests need: from bytes, one
// thread each way (2-core CI), graph optimisations off so ORT executes exactly the nodes written
// (with optimisations on it fuses Q/DQ pairs into integer kernels).
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { onnx } = require('../../generated/onnx.js')

// onnxruntime-node 1.23.2 aborts the whole process (v8 OOM in OrtValueToNapiValue) when a graph
// output is a 4-bit tensor, which would take the ava worker down with it. Keep 4-bit tensors
// inside the graph (read them through DequantizeLinear) and refuse such models here.
const FOUR_BIT = new Map([[21, 'UINT4'], [22, 'INT4'], [23, 'FLOAT4E2M1']])

function checkOutputs(bytes) {
  for (const o of onnx.ModelProto.decode(bytes).graph?.output ?? []) {
    const t = FOUR_BIT.get(o.type?.tensorType?.elemType ?? 0)
    if (t) throw new Error(`runModel: graph output ${JSON.stringify(o.name)} is ${t}; onnxruntime-node 1.23 crashes returning 4-bit outputs`)
  }
}

export const SESSION_OPTIONS = Object.freeze({
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'disabled',
  executionProviders: ['cpu'],
})

/**
 * @param {Uint8Array | string} bytes ModelProto bytes, or the model's path (needed for external data)
 * @param {Record<string, {type: string, data: ArrayLike<unknown>, dims: readonly number[]}>} feeds
 *   ORT tensor type names ('float32', 'int8', 'int64', …); checked by shape, not instanceof, since
 *   several onnxruntime-node copies can be installed.
 * @returns {Promise<Record<string, {type: string, data: ArrayLike<unknown>, dims: number[]}>>}
 */
export async function runModel(bytes, feeds, options = {}) {
  // A path lets ORT find the model's external data, which it cannot do for bytes.
  checkOutputs(typeof bytes === 'string' ? readFileSync(bytes) : bytes)
  const session = await ort.InferenceSession.create(bytes, { ...SESSION_OPTIONS, ...options })
  try {
    const ortFeeds = {}
    for (const [name, f] of Object.entries(feeds)) {
      if (!f || typeof f.type !== 'string' || !f.data || !Array.isArray(f.dims)) {
        throw new TypeError(`runModel: feed ${JSON.stringify(name)} must be {type, data, dims}`)
      }
      ortFeeds[name] = new ort.Tensor(f.type, f.data, f.dims)
    }
    const results = await session.run(ortFeeds)
    const out = {}
    for (const [name, t] of Object.entries(results)) {
      out[name] = { type: t.type, data: t.data, dims: [...t.dims] }
    }
    return out
  } finally {
    await session.release()
  }
}
