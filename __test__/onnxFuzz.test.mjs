// loadModel on mutated bytes of real models (PP-OCR mobile v2 cls, 579 KB, weights in Constant
// nodes; silero-vad 16k op15, 1.3 MB, initializers and If subgraphs): bit flips,
// truncations, overwritten bytes, and length fields that lie (rewritten in place, or replaced by a
// 4 GiB varint). Every case must either load or throw one of quantkit's typed errors
// (OnnxFormatError, ExternalDataError): no other exception, no crash, no hang, no huge allocation.
// Deterministic (seeded) and bounded: a number of cases or seconds per model, whichever comes
// first (QUANTKIT_FUZZ_CASES / QUANTKIT_FUZZ_SECONDS scale both up for a longer run).
import test from 'ava'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { REAL_MODELS, random } from './helpers/models.mjs'

const require = createRequire(import.meta.url)
const { loadModelSync, modelToBytes, OnnxFormatError, ExternalDataError } = require('../dist/index.js')

const SCALE_CASES = Number(process.env.QUANTKIT_FUZZ_CASES ?? 1)
const SCALE_SECONDS = Number(process.env.QUANTKIT_FUZZ_SECONDS ?? 1)
const SEED = Number(process.env.QUANTKIT_FUZZ_SEED ?? 0x5eed)

function readVarint(buf, pos) {
  let value = 0
  for (let shift = 0; shift < 64; shift += 7) {
    if (pos >= buf.length) return [NaN, pos]
    const b = buf[pos++]
    value += (b & 0x7f) * 2 ** shift
    if (!(b & 0x80)) return [value, pos]
  }
  return [NaN, pos]
}

/**
 * Positions of the length prefixes of length-delimited fields, walking the protobuf wire format
 * and descending into every field whose contents parse as a message (graph, nodes, attributes,
 * tensors, value infos, …).
 */
function lengthFields(buf, start = 0, end = buf.length, out = [], depth = 0) {
  const found = []
  let pos = start
  while (pos < end) {
    const [tag, p1] = readVarint(buf, pos)
    if (!(tag >= 8) || p1 > end) return false
    const wire = tag % 8
    if (wire === 0) pos = readVarint(buf, p1)[1]
    else if (wire === 1) pos = p1 + 8
    else if (wire === 5) pos = p1 + 4
    else if (wire === 2) {
      const [len, p2] = readVarint(buf, p1)
      if (!(p2 + len <= end)) return false
      found.push({ at: p1, width: p2 - p1, len })
      if (depth < 8 && len > 1) {
        const inner = lengthFields(buf, p2, p2 + len, [], depth + 1)
        if (inner) found.push(...inner)
      }
      pos = p2 + len
    } else return false
    if (pos > end) return false
  }
  if (pos !== end) return false
  out.push(...found)
  return out
}

/** `value` as a varint of exactly `width` bytes (non-minimal encodings are valid protobuf). */
function varintOfWidth(value, width) {
  const bytes = []
  for (let i = 0; i < width; i++) {
    const seven = Math.floor(value / 2 ** (7 * i)) % 128
    bytes.push(i < width - 1 ? seven | 0x80 : seven)
  }
  return bytes
}

function mutate(original, fields, rnd) {
  const pick = (n) => Math.floor(rnd() * n)
  const kind = pick(5)
  const bytes = Uint8Array.from(original)
  switch (kind) {
    case 0: { // bit flips
      const n = 1 + pick(4)
      for (let i = 0; i < n; i++) bytes[pick(bytes.length)] ^= 1 << pick(8)
      return { bytes, what: `flip ${n} bits` }
    }
    case 1: { // truncation
      const at = pick(original.length)
      return { bytes: bytes.subarray(0, at), what: `truncate at ${at}` }
    }
    case 2: { // overwrite a run of bytes
      const at = pick(bytes.length)
      const n = 1 + pick(16)
      for (let i = at; i < Math.min(bytes.length, at + n); i++) bytes[i] = pick(256)
      return { bytes, what: `overwrite ${n} bytes at ${at}` }
    }
    case 3: { // a length that lies, rewritten in place (same width, so everything after stays put)
      const f = fields[pick(fields.length)]
      const max = 2 ** (7 * f.width) - 1
      const choices = [0, f.len - 1, f.len + 1, f.len + 1 + pick(1000), max, pick(max + 1)]
      const value = Math.max(0, Math.min(max, choices[pick(choices.length)]))
      bytes.set(varintOfWidth(value, f.width), f.at)
      return { bytes, what: `length at ${f.at}: ${f.len} → ${value}` }
    }
    default: { // a length replaced by 4 GiB - 1
      const f = fields[pick(fields.length)]
      const spliced = new Uint8Array(original.length - f.width + 5)
      spliced.set(original.subarray(0, f.at))
      spliced.set([0xff, 0xff, 0xff, 0xff, 0x0f], f.at)
      spliced.set(original.subarray(f.at + f.width), f.at + 5)
      return { bytes: spliced, what: `length at ${f.at}: ${f.len} → 4294967295` }
    }
  }
}

const TARGETS = [
  { model: 'PP-OCR mobile v2 cls', cases: 2000, seconds: 20 },
  { model: 'silero-vad 16k op15', cases: 2000, seconds: 10 },
]

for (const { model: name, cases: maxCases, seconds } of TARGETS) test(`mutated model bytes load or throw a typed error: ${name}`, (t) => {
  const FUZZ_CASES = maxCases * SCALE_CASES
  const FUZZ_SECONDS = seconds * SCALE_SECONDS
  const original = readFileSync(REAL_MODELS[name].path)
  const fields = lengthFields(original)
  t.true(fields.length > 1000, `found ${fields.length} length fields`)
  const rnd = random(SEED)
  const counts = { loaded: 0, OnnxFormatError: 0, ExternalDataError: 0, resaved: 0 }
  const failures = []
  let slowest = { ms: 0, what: '' }
  const start = performance.now()
  let cases = 0
  for (; cases < FUZZ_CASES && performance.now() - start < FUZZ_SECONDS * 1000; cases++) {
    const { bytes, what } = mutate(original, fields, rnd)
    const t0 = performance.now()
    try {
      const model = loadModelSync(bytes)
      counts.loaded++
      // What loads must also save (every 10th, to keep the time bounded).
      if (counts.loaded % 10 === 1) {
        try {
          modelToBytes(model)
          counts.resaved++
        } catch (e) {
          if (!(e instanceof OnnxFormatError)) failures.push(`case ${cases} (${what}) re-save: ${e?.name}: ${e?.message}`)
        }
      }
    } catch (e) {
      if (e instanceof ExternalDataError) counts.ExternalDataError++
      else if (e instanceof OnnxFormatError) counts.OnnxFormatError++
      else failures.push(`case ${cases} (${what}): ${e?.name}: ${e?.message}`)
    }
    const ms = performance.now() - t0
    if (ms > slowest.ms) slowest = { ms, what }
  }
  const elapsed = (performance.now() - start) / 1000
  t.log(`${cases} cases in ${elapsed.toFixed(1)} s (seed ${SEED}): ${JSON.stringify(counts)}; slowest ${slowest.ms.toFixed(0)} ms (${slowest.what})`)
  t.deepEqual(failures.slice(0, 20), [], `${failures.length} cases threw something else`)
  t.true(cases >= Math.min(FUZZ_CASES, 500), `only ${cases} cases ran in ${FUZZ_SECONDS} s`)
  t.true(slowest.ms < 2000, `one case took ${slowest.ms} ms`)
})
