// Data sources (src/data/): image folders with preprocessing checked numerically, .npy / .npz
// written byte for byte from NumPy's format spec (and by NumPy itself: fixtures/data/), JSON
// feeds, JS modules, and every error naming the file and what the model expects.
import test from 'ava'
import { createRequire } from 'node:module'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { crc32, deflateRawSync } from 'node:zlib'

const require = createRequire(import.meta.url)
const sharp = require('sharp')
const { openDataSource, readLabels } = require('../dist/data/index.js')
const { DataSourceError } = require('../dist/errors.js')

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'data')
const FLOAT = 1, UINT8 = 2, INT64 = 7, DOUBLE = 11

const tmp = () => mkdtempSync(join(tmpdir(), 'quantkit-data-'))
const model = (...inputs) => ({ inputs: inputs.map(([name, shape, elemType = FLOAT]) => ({ name, shape, elemType })) })
async function collect(src) {
  const out = []
  for await (const b of src.batches()) out.push(b)
  return out
}
async function rejects(t, promise, ...fragments) {
  const e = await t.throwsAsync(promise, { instanceOf: DataSourceError })
  for (const f of fragments) t.true(e.message.includes(f), `message lacks ${JSON.stringify(f)}: ${e.message}`)
  return e
}

// ---------------------------------------------------------------------------------------------
// .npy and .npz written from the spec

/** A .npy file per NumPy's format doc: magic, version, header length, dict padded to 64 bytes, '\n'. */
function npy({ descr, shape, data, fortran = false, version = 1 }) {
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  const pre = version === 1 ? 10 : 12
  const pad = 64 - ((pre + dict.length + 1) % 64)
  const header = Buffer.from(dict + ' '.repeat(pad % 64) + '\n', version === 3 ? 'utf8' : 'latin1')
  const head = Buffer.alloc(pre)
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head)
  if (version === 1) head.writeUInt16LE(header.length, 8)
  else head.writeUInt32LE(header.length, 8)
  return Buffer.concat([head, header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)])
}

/** A zip (APPNOTE 4.3): local headers + data, central directory, end record. */
function zip(entries) {
  const locals = []
  const centrals = []
  let offset = 0
  for (const { name, data, deflate = false, badCrc = false } of entries) {
    const body = deflate ? deflateRawSync(data) : data
    const nameBytes = Buffer.from(name)
    const crc = (crc32(data) ^ (badCrc ? 1 : 0)) >>> 0
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(deflate ? 8 : 0, 8)
    local.writeUInt32LE(crc, 14); local.writeUInt32LE(body.length, 18); local.writeUInt32LE(data.length, 22)
    local.writeUInt16LE(nameBytes.length, 26)
    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6)
    central.writeUInt16LE(deflate ? 8 : 0, 10); central.writeUInt32LE(crc, 16)
    central.writeUInt32LE(body.length, 20); central.writeUInt32LE(data.length, 24)
    central.writeUInt16LE(nameBytes.length, 28); central.writeUInt32LE(offset, 42)
    locals.push(local, nameBytes, body)
    centrals.push(central, nameBytes)
    offset += 30 + nameBytes.length + body.length
  }
  const cd = Buffer.concat(centrals)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(entries.length, 8); end.writeUInt16LE(entries.length, 10)
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, cd, end])
}

const range = (n, f = (i) => i) => Float32Array.from({ length: n }, (_, i) => f(i))

test('.npy v1/v2/v3 float32, batched along axis 0, the short last batch kept for a free batch dim', async (t) => {
  const dir = tmp()
  for (const version of [1, 2, 3]) {
    const file = join(dir, `x${version}.npy`)
    writeFileSync(file, npy({ descr: '<f4', shape: [5, 2, 3], data: range(30), version }))
    const src = await openDataSource(file, model(['x', ['batch', 2, 3]]), { batchSize: 2 })
    t.is(src.kind, 'npy')
    t.is(src.count, 5)
    const batches = await collect(src)
    t.deepEqual(batches.map((b) => b.x.dims), [[2, 2, 3], [2, 2, 3], [1, 2, 3]])
    t.deepEqual(Array.from(batches[2].x.data), Array.from(range(6, (i) => 24 + i)))
    t.is(batches[0].x.type, 'float32')
    t.regex(src.describe(), /5 of 5 samples in batches of 2/)
  }
})

test('.npy element types: f8, i8, i4, u1, b1, f2 (raw bits), each to its feed type', async (t) => {
  const dir = tmp()
  const cases = [
    ['<f8', DOUBLE, 'float64', Float64Array.of(1.5, -2)],
    ['<i8', INT64, 'int64', BigInt64Array.of(7n, -9007199254740993n)],
    ['<i4', 6, 'int32', Int32Array.of(-1, 2)],
    ['|u1', UINT8, 'uint8', Uint8Array.of(0, 255)],
    ['|b1', 9, 'bool', Uint8Array.of(1, 0)],
    ['<f2', 10, 'float16', Uint16Array.of(0x3c00, 0xc000)],
  ]
  for (const [descr, elemType, type, data] of cases) {
    const file = join(dir, `${type}.npy`)
    writeFileSync(file, npy({ descr, shape: [2], data }))
    const [b] = await collect(await openDataSource(file, model(['x', [2], elemType])))
    t.is(b.x.type, type)
    t.deepEqual(b.x.dims, [2]) // rank equal to the input: the array's axis 0 is the batch
    t.deepEqual(Array.from(b.x.data), Array.from(data), descr)
  }
})

test('.npy: one sample per feed when the input has no batch axis; static batch drops the short last batch', async (t) => {
  const dir = tmp()
  const file = join(dir, 'x.npy')
  writeFileSync(file, npy({ descr: '<f4', shape: [5, 2, 3], data: range(30) }))
  const stacked = await collect(await openDataSource(file, model(['x', [2, 3]])))
  t.is(stacked.length, 5)
  t.deepEqual(stacked[1].x.dims, [2, 3])
  t.deepEqual(Array.from(stacked[1].x.data), Array.from(range(6, (i) => 6 + i)))

  const fixed = await openDataSource(file, model(['x', [2, 2, 3]]))
  t.is(fixed.count, 4)
  t.is((await collect(fixed)).length, 2)
  t.regex(fixed.describe(), /1 sample\(s\) dropped/)

  const capped = await openDataSource(file, model(['x', ['n', 2, 3]]), { count: 3, batchSize: 2 })
  t.deepEqual((await collect(capped)).map((b) => b.x.dims[0]), [2, 1])
  await rejects(t, openDataSource(file, model(['x', [1, 2, 3]]), { batchSize: 4 }), 'x.npy', 'batchSize 4', 'fixed at 1')
})

test('.npy errors: shape, dtype, Fortran order, big-endian, truncated, not .npy, several inputs', async (t) => {
  const dir = tmp()
  const f = (name, bytes) => { const p = join(dir, name); writeFileSync(p, bytes); return p }
  const x = f('x.npy', npy({ descr: '<f4', shape: [4, 2, 3], data: range(24) }))
  let e = await rejects(t, openDataSource(x, model(['input', ['batch', 3, 4]])), 'x.npy', 'input "input"', '[batch, 3, 4]', '[1, 2, 3]')
  t.is(e.input, 'input')
  t.is(e.file, x)
  await rejects(t, openDataSource(x, model(['input', ['batch', 2, 3], DOUBLE])), 'x.npy', 'float32', 'model expects float64')
  await rejects(t, openDataSource(x, model(['input', ['batch', 6]])), 'x.npy', '[4, 2, 3]', '[batch, 6]')
  await rejects(t, openDataSource(f('f.npy', npy({ descr: '<f4', shape: [2, 3], data: range(6), fortran: true })), model(['x', ['n', 3]])), 'f.npy', 'Fortran order')
  await rejects(t, openDataSource(f('be.npy', npy({ descr: '>f4', shape: [2], data: range(2) })), model(['x', ['n']])), 'be.npy', 'big-endian')
  await rejects(t, openDataSource(f('c.npy', npy({ descr: '<c8', shape: [2], data: range(4) })), model(['x', ['n']])), 'c.npy', "unsupported dtype '<c8'")
  const full = npy({ descr: '<f4', shape: [4, 2, 3], data: range(24) })
  await rejects(t, openDataSource(f('short.npy', full.subarray(0, full.length - 5)), model(['x', ['n', 2, 3]])), 'short.npy', 'truncated', '96 bytes')
  await rejects(t, openDataSource(f('junk.npy', Buffer.from('hello world, not numpy')), model(['x', ['n']])), 'junk.npy', 'not a .npy file')
  await rejects(t, openDataSource(x, model(['a', ['n', 2, 3]], ['b', ['n', 2, 3]])), 'x.npy', 'one array', '2 inputs', '"a"', '"b"')
})

test('.npz: stored and deflated members named after the inputs, extra arrays ignored', async (t) => {
  const dir = tmp()
  const a = npy({ descr: '<f4', shape: [3, 2], data: range(6) })
  const ids = npy({ descr: '<i8', shape: [3, 4], data: BigInt64Array.from({ length: 12 }, (_, i) => BigInt(i)) })
  const labels = npy({ descr: '<i8', shape: [3], data: BigInt64Array.of(1n, 2n, 3n) })
  for (const deflate of [false, true]) {
    const file = join(dir, `d${deflate}.npz`)
    writeFileSync(file, zip([{ name: 'features.npy', data: a, deflate }, { name: 'ids.npy', data: ids, deflate }, { name: 'labels.npy', data: labels, deflate }]))
    const src = await openDataSource(file, model(['ids', ['b', 4], INT64], ['features', ['b', 2]]), { batchSize: 2 })
    t.is(src.kind, 'npz')
    t.is(src.count, 3)
    const batches = await collect(src)
    t.deepEqual(batches.map((b) => [b.features.dims, b.ids.dims]), [[[2, 2], [2, 4]], [[1, 2], [1, 4]]])
    t.deepEqual(Array.from(batches[1].ids.data), [8n, 9n, 10n, 11n])
    t.deepEqual(Array.from(batches[0].features.data), [0, 1, 2, 3])
    t.regex(src.describe(), /ignored: "labels"/)
    t.is((await collect(src)).length, 2, 'a second pass reads the data again')
  }
})

test('.npz errors: missing input, corrupt zip, bad CRC, unequal sample counts', async (t) => {
  const dir = tmp()
  const a = npy({ descr: '<f4', shape: [3, 2], data: range(6) })
  const b = npy({ descr: '<f4', shape: [2, 2], data: range(4) })
  const f = (name, bytes) => { const p = join(dir, name); writeFileSync(p, bytes); return p }
  const good = zip([{ name: 'x.npy', data: a }, { name: 'y.npy', data: a }])
  await rejects(t, openDataSource(f('m.npz', good), model(['image', ['n', 2]], ['x', ['n', 2]])), 'm.npz', 'no array for input "image" [n, 2] float32', 'holds "x", "y"')
  await rejects(t, openDataSource(f('cut.npz', good.subarray(0, good.length - 30)), model(['x', ['n', 2]])), 'cut.npz', 'not a zip file')
  const lying = Buffer.from(good)
  lying.writeUInt32LE(5000, lying.length - 22 + 16) // central directory offset beyond the file
  await rejects(t, openDataSource(f('lie.npz', lying), model(['x', ['n', 2]])), 'lie.npz', 'corrupt zip')
  await rejects(t, openDataSource(f('crc.npz', zip([{ name: 'x.npy', data: a, deflate: true, badCrc: true }])), model(['x', ['n', 2]])), 'crc.npz', 'CRC-32', '"x.npy"')
  await rejects(t, openDataSource(f('n.npz', zip([{ name: 'x.npy', data: a }, { name: 'y.npy', data: b }])), model(['x', ['n', 2]], ['y', ['n', 2]])), 'n.npz', 'different numbers of samples')
  // The zip64 end records (APPNOTE 4.3.14–15), as writers use them past 65535 entries or 4 GiB.
  const plain = zip([{ name: 'x.npy', data: a }])
  const cdSize = plain.readUInt32LE(plain.length - 22 + 12), cdOffset = plain.readUInt32LE(plain.length - 22 + 16)
  const rec = Buffer.alloc(56)
  rec.writeUInt32LE(0x06064b50, 0); rec.writeBigUInt64LE(44n, 4); rec.writeBigUInt64LE(1n, 24); rec.writeBigUInt64LE(1n, 32)
  rec.writeBigUInt64LE(BigInt(cdSize), 40); rec.writeBigUInt64LE(BigInt(cdOffset), 48)
  const loc = Buffer.alloc(20)
  loc.writeUInt32LE(0x07064b50, 0); loc.writeBigUInt64LE(BigInt(plain.length - 22), 8); loc.writeUInt32LE(1, 16)
  const end = Buffer.from(plain.subarray(plain.length - 22))
  end.writeUInt16LE(0xffff, 8); end.writeUInt16LE(0xffff, 10); end.writeUInt32LE(0xffffffff, 12); end.writeUInt32LE(0xffffffff, 16)
  const z64 = f('z64.npz', Buffer.concat([plain.subarray(0, plain.length - 22), rec, loc, end]))
  t.is((await collect(await openDataSource(z64, model(['x', ['n', 2]])))).length, 3)
  const single = await collect(await openDataSource(f('arr0.npz', zip([{ name: 'arr_0.npy', data: a }])), model(['x', ['n', 2]])))
  t.is(single.length, 3, 'a one-input model takes np.savez(f, arr) as arr_0')
})

test('NumPy-written fixtures: np.save, np.savez (zip64 extras), np.savez_compressed, Fortran order refused', async (t) => {
  const expected = Array.from(range(12, (i) => i / 4))
  const m = model(['input', ['batch', 2, 2]])
  for (const file of ['numpy_f4.npy', 'numpy_savez.npz', 'numpy_savez_compressed.npz']) {
    const batches = await collect(await openDataSource(join(fixtures, file), m, { batchSize: 3 }))
    t.is(batches.length, 1, file)
    t.deepEqual(batches[0].input.dims, [3, 2, 2])
    t.deepEqual(Array.from(batches[0].input.data), expected, file)
  }
  await rejects(t, openDataSource(join(fixtures, 'numpy_fortran.npy'), model(['x', ['n', 3]])), 'numpy_fortran.npy', 'Fortran')
})

// ---------------------------------------------------------------------------------------------
// JSON and modules

test('JSON: {dims, data} and nested arrays, typed by the model; count cuts the last batch', async (t) => {
  const dir = tmp()
  const file = join(dir, 'feeds.json')
  writeFileSync(file, JSON.stringify([
    { x: { dims: [2, 2], data: [1, 2, 3, 4] }, ids: [[1, 2], [3, 4]] },
    { x: [[5, 6]], ids: { dims: [1, 2], data: [5, 6], type: 'int64' } },
  ]))
  const m = model(['x', ['n', 2]], ['ids', ['n', 2], INT64])
  const src = await openDataSource(file, m)
  t.is(src.kind, 'json')
  t.is(src.count, 3)
  const batches = await collect(src)
  t.is(batches[0].x.type, 'float32')
  t.true(batches[0].x.data instanceof Float32Array)
  t.deepEqual(Array.from(batches[1].ids.data), [5n, 6n])
  t.deepEqual(batches[1].x.dims, [1, 2])
  const cut = await collect(await openDataSource(file, m, { count: 1 }))
  t.deepEqual(cut.map((b) => [b.x.dims, Array.from(b.x.data)]), [[[1, 2], [1, 2]]])
})

test('JSON errors: wrong input name lists the inputs, shape, type, ragged, not a list, bad JSON', async (t) => {
  const dir = tmp()
  const f = (name, v) => { const p = join(dir, name); writeFileSync(p, typeof v === 'string' ? v : JSON.stringify(v)); return p }
  const m = model(['image', ['batch', 3, 2, 2]], ['scale', [1]])
  const e = await rejects(t, openDataSource(f('name.json', [{ img: [[[[0]]]] }]), m), 'name.json, batch 0', 'no input "img"', '"image" [batch, 3, 2, 2] float32', '"scale" [1] float32')
  t.is(e.input, 'img')
  await rejects(t, openDataSource(f('missing.json', [{ image: { dims: [1, 3, 2, 2], data: Array(12).fill(0) } }]), m), 'missing.json, batch 0', 'no data for input "scale" [1] float32')
  await rejects(t, openDataSource(f('shape.json', [{ image: { dims: [1, 2, 2, 2], data: Array(8).fill(0) }, scale: [1] }]), m), 'shape.json, batch 0', 'input "image" has shape [1, 2, 2, 2]', 'expects [batch, 3, 2, 2]')
  await rejects(t, openDataSource(f('type.json', [{ image: { dims: [1, 3, 2, 2], data: Array(12).fill(0), type: 'int64' }, scale: [1] }]), m), 'type.json, batch 0', 'int64', 'expects float32')
  await rejects(t, openDataSource(f('count.json', [{ image: { dims: [1, 3, 2, 2], data: [1] }, scale: [1] }]), m), 'count.json', 'hold 12 elements but data has 1')
  await rejects(t, openDataSource(f('ragged.json', [{ scale: [[1], [2, 3]] }]), model(['scale', ['n', 1]])), 'ragged.json', 'ragged')
  await rejects(t, openDataSource(f('int.json', [{ ids: [1.5] }]), model(['ids', [1], INT64])), 'int.json', 'not an integer')
  await rejects(t, openDataSource(f('obj.json', { image: [] }), m), 'obj.json', 'expected a JSON list of feeds')
  await rejects(t, openDataSource(f('bad.json', '[{'), m), 'bad.json', 'not valid JSON')
  await rejects(t, openDataSource(f('empty.json', []), m), 'empty.json', 'empty')
  // symbolic dims must agree across inputs
  await rejects(t, openDataSource(f('sym.json', [{ a: [[1], [2]], b: [[1]] }]), model(['a', ['n', 1]], ['b', ['n', 1]])), 'sym.json', 'input "b" has shape [1, 1]', 'expects [n, 1]')
})

test('modules: default async generator function (called per pass, with the inputs), CJS feeds array, data export', async (t) => {
  const dir = tmp()
  writeFileSync(join(dir, 'gen.mjs'), `
    export let calls = []
    export default async function* (ctx) {
      calls.push(ctx.inputs.map((v) => v.name).join(','))
      for (let i = 0; i < 3; i++) yield { x: { type: 'float32', data: Float32Array.of(i, i), dims: [1, 2] } }
    }`)
  writeFileSync(join(dir, 'arr.cjs'), 'module.exports = { feeds: [{ x: [[1, 2]] }, { x: [[3, 4], [5, 6]] }] }')
  writeFileSync(join(dir, 'data.mjs'), 'export const data = () => Promise.resolve([{ x: [[7, 8]] }])')
  const m = model(['x', ['n', 2]])
  const gen = await openDataSource(join(dir, 'gen.mjs'), m)
  t.is(gen.kind, 'module')
  t.is(gen.count, undefined)
  t.deepEqual((await collect(gen)).map((b) => b.x.data[0]), [0, 1, 2])
  t.is((await collect(gen)).length, 3, 'a second pass calls the function again')
  const mod = await import(join(dir, 'gen.mjs'))
  t.deepEqual(mod.calls, ['x', 'x'])

  const arr = await openDataSource(join(dir, 'arr.cjs'), m)
  t.is(arr.count, 3)
  t.deepEqual((await collect(arr)).map((b) => b.x.dims), [[1, 2], [2, 2]])
  t.is((await collect(await openDataSource(join(dir, 'arr.cjs'), m, { count: 2 })))[1].x.dims[0], 1)
  t.deepEqual(Array.from((await collect(await openDataSource(join(dir, 'data.mjs'), m)))[0].x.data), [7, 8])
})

test('module errors: nothing usable, a bad batch (named by index), a one-shot iterator read twice, a throwing export', async (t) => {
  const dir = tmp()
  const f = (name, text) => { const p = join(dir, name); writeFileSync(p, text); return p }
  const m = model(['x', ['n', 2]])
  await rejects(t, openDataSource(f('none.mjs', 'export const answer = 42; export function helper() {}'), m), 'none.mjs', 'exports no feeds', 'answer, helper')
  const bad = await openDataSource(f('bad.mjs', 'export default [{ x: [[1, 2]] }, { x: [[1, 2, 3]] }]'), m).catch((e) => e)
  t.true(bad instanceof DataSourceError)
  t.true(bad.message.includes('bad.mjs, batch 1') && bad.message.includes('expects [n, 2]'), bad.message)
  const lazy = await openDataSource(f('lazy.mjs', 'export default async function* () { yield { x: [[1, 2]] }; yield { y: [[1, 2]] } }'), m)
  await rejects(t, collect(lazy), 'lazy.mjs, batch 1', 'no input "y"', '"x" [n, 2] float32')
  const once = await openDataSource(f('once.mjs', 'async function* g() { yield { x: [[1, 2]] } }\nexport const feeds = g()'), m)
  t.is((await collect(once)).length, 1)
  await rejects(t, collect(once), 'once.mjs', 'read once only')
  await rejects(t, collect(await openDataSource(f('throws.mjs', 'export default () => { throw new Error("no tokenizer") }'), m)), 'throws.mjs', 'no tokenizer')
  await rejects(t, openDataSource(f('syntax.mjs', 'export default [[['), m), 'syntax.mjs', 'cannot load the data module')
})

// ---------------------------------------------------------------------------------------------
// Images

// A 2×2 image with known pixels: red, green / blue, (255, 255, 128).
const PIXELS = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 128]]
const raw2x2 = () => Buffer.from(PIXELS.flat())
const png2x2 = () => sharp(raw2x2(), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer()
const f32 = (x) => Math.fround(x)
const norm = (v, mean, std) => f32(f32(f32(v / 255) - f32(mean)) / f32(std))

test('images: a 2×2 PNG → NCHW float32 with mean/std, exactly as ToTensor + Normalize compute it', async (t) => {
  const dir = tmp()
  writeFileSync(join(dir, 'a.png'), await png2x2())
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225]
  const src = await openDataSource(dir, model(['input', [1, 3, 2, 2]]), { preprocess: { mean, std } })
  t.is(src.kind, 'images')
  t.is(src.count, 1)
  const [b] = await collect(src)
  t.deepEqual(b.input.dims, [1, 3, 2, 2])
  t.is(b.input.type, 'float32')
  const want = [0, 1, 2].flatMap((c) => PIXELS.map((p) => norm(p[c], mean[c], std[c])))
  t.deepEqual(Array.from(b.input.data), want)
  t.regex(src.describe(), /RGB, \(x\/255 − \[0\.485, 0\.456, 0\.406\]\) \/ \[0\.229, 0\.224, 0\.225\], NCHW float32/)
})

test('images: NHWC, BGR, scale, uint8, grayscale (BT.601 luma, truncated by libvips)', async (t) => {
  const dir = tmp()
  writeFileSync(join(dir, 'a.png'), await png2x2())
  const nhwc = (await collect(await openDataSource(dir, model(['x', [1, 2, 2, 3]]), { preprocess: { channelOrder: 'bgr', scale: 1, mean: [10, 20, 30] } })))[0].x
  t.deepEqual(nhwc.dims, [1, 2, 2, 3])
  t.deepEqual(Array.from(nhwc.data), PIXELS.flatMap((p) => [p[2] - 10, p[1] - 20, p[0] - 30]))

  const u8 = (await collect(await openDataSource(dir, model(['x', [1, 3, 2, 2], UINT8]))))[0].x
  t.is(u8.type, 'uint8')
  t.deepEqual(Array.from(u8.data), [0, 1, 2].flatMap((c) => PIXELS.map((p) => p[c])))
  const u8nhwc = (await collect(await openDataSource(dir, model(['x', [1, 2, 2, 3], UINT8]))))[0].x
  t.deepEqual(Array.from(u8nhwc.data), PIXELS.flat())

  const gray = (await collect(await openDataSource(dir, model(['x', ['n', 1, 2, 2]]))))[0].x
  t.deepEqual(gray.dims, [1, 1, 2, 2])
  const luma = PIXELS.map(([r, g, b]) => Math.floor(0.299 * r + 0.587 * g + 0.114 * b))
  t.deepEqual(luma, [76, 149, 29, 240])
  t.deepEqual(Array.from(gray.data), luma.map((v) => f32(v / 255)))
})

test('images: default resize (shorter side) + centre crop to the static size; explicit resize/centerCrop', async (t) => {
  const dir = tmp()
  // 8 wide × 4 high: left half red, right half blue, and a green middle column pair (3, 4).
  const w = 8, h = 4
  const px = Buffer.alloc(w * h * 3)
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = (y * w + x) * 3
    if (x === 3 || x === 4) px[o + 1] = 255
    else if (x < 4) px[o] = 255
    else px[o + 2] = 255
  }
  writeFileSync(join(dir, 'wide.png'), await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer())
  // Shorter side already 4: no scaling, the crop takes columns 2..5 (torchvision: round((8-4)/2) = 2).
  const [b] = await collect(await openDataSource(dir, model(['x', [1, 3, 4, 4]]), { preprocess: { interpolation: 'nearest', scale: 1 } }))
  const row = (c) => Array.from(b.x.data.subarray(c * 16, c * 16 + 4))
  t.deepEqual(row(0), [255, 0, 0, 0])
  t.deepEqual(row(1), [0, 255, 255, 0])
  t.deepEqual(row(2), [0, 0, 0, 255])
  // Exact resize to the model's size, no crop needed.
  const [s] = await collect(await openDataSource(dir, model(['x', [1, 3, 2, 2]]), { preprocess: { resize: [2, 2], interpolation: 'nearest' } }))
  t.deepEqual(s.x.dims, [1, 3, 2, 2])
  // Dynamic H, W: resize shorter side 2 (→ 2×4), crop 2×2.
  const [d] = await collect(await openDataSource(dir, model(['x', ['n', 3, 'h', 'w']]), { preprocess: { resize: 2, centerCrop: 2 } }))
  t.deepEqual(d.x.dims, [1, 3, 2, 2])
  const [full] = await collect(await openDataSource(dir, model(['x', ['n', 3, 'h', 'w']])))
  t.deepEqual(full.x.dims, [1, 3, 4, 8], 'no preprocessing for a dynamic input: the image as it is')
})

test('images: sorted paths (subfolders too), JPEG and WebP decoded, batches, count, other files ignored', async (t) => {
  const dir = tmp()
  mkdirSync(join(dir, 'b_class'))
  const solid = (r, g, b) => sharp({ create: { width: 3, height: 3, channels: 3, background: { r, g, b } } })
  writeFileSync(join(dir, 'c.png'), await solid(30, 30, 30).png().toBuffer())
  writeFileSync(join(dir, 'a.webp'), await solid(10, 10, 10).webp({ lossless: true }).toBuffer())
  writeFileSync(join(dir, 'b_class', 'z.JPG'), await solid(20, 20, 20).jpeg({ quality: 100 }).toBuffer())
  writeFileSync(join(dir, 'notes.txt'), 'not an image')
  writeFileSync(join(dir, '.hidden.png'), 'skipped')
  const m = model(['x', ['n', 1, 3, 3]])
  const src = await openDataSource(dir, m, { batchSize: 2, preprocess: { scale: 1 } })
  t.is(src.count, 3)
  const batches = await collect(src)
  t.deepEqual(batches.map((b) => b.x.dims[0]), [2, 1])
  const firsts = batches.flatMap((b) => Array.from({ length: b.x.dims[0] }, (_, i) => b.x.data[i * 9]))
  t.is(firsts[0], 10)
  t.true(Math.abs(firsts[1] - 20) <= 1, `JPEG ${firsts[1]}`)
  t.is(firsts[2], 30)
  t.deepEqual((await collect(await openDataSource(dir, m, { count: 2 }))).length, 2)
  t.regex(src.describe(), /3 of 3 images/)
  // A single image file is a source too.
  t.is((await collect(await openDataSource(join(dir, 'c.png'), m))).length, 1)
})

test('image errors: empty folder, unreadable image, sizes, layout, dtype, options, several inputs', async (t) => {
  const empty = tmp()
  writeFileSync(join(empty, 'readme.md'), '#')
  const m = model(['input', ['batch', 3, 224, 224]])
  await rejects(t, openDataSource(empty, m), empty, 'no images', '.jpg', '1 other file(s) ignored')

  const dir = tmp()
  writeFileSync(join(dir, 'a.png'), await png2x2())
  writeFileSync(join(dir, 'broken.jpg'), Buffer.from('not a jpeg at all'))
  const src = await openDataSource(dir, model(['x', ['n', 3, 2, 2]]))
  const e = await rejects(t, collect(src), 'broken.jpg', 'cannot read the image')
  t.is(e.file, join(dir, 'broken.jpg'))

  const two = tmp()
  writeFileSync(join(two, 'a.png'), await png2x2())
  writeFileSync(join(two, 'b.png'), await sharp({ create: { width: 3, height: 2, channels: 3, background: 'red' } }).png().toBuffer())
  await rejects(t, collect(await openDataSource(two, model(['x', ['n', 3, 'h', 'w']]), { batchSize: 2 })), 'b.png', '2×3', 'a.png', 'same batch')
  await rejects(t, collect(await openDataSource(two, model(['x', ['n', 3, 'h', 'w']]), { preprocess: { centerCrop: 3 } })), 'a.png', 'smaller than centerCrop 3×3')
  await rejects(t, openDataSource(two, model(['x', ['n', 4, 8, 8]])), 'has 4 channels')
  await rejects(t, openDataSource(two, model(['x', ['n', 3, 8]])), 'a 4-d input', '"x" [n, 3, 8] float32')
  await rejects(t, openDataSource(two, model(['x', ['n', 3, 8, 8], INT64])), 'int64')
  await rejects(t, openDataSource(two, model(['x', ['n', 3, 8, 8]]), { preprocess: { dtype: 'uint8' } }), "dtype is 'uint8'", 'float32')
  await rejects(t, openDataSource(two, model(['x', ['n', 3, 8, 8], UINT8]), { preprocess: { mean: 0.5 } }), 'uint8 input takes raw pixels')
  await rejects(t, openDataSource(two, model(['x', ['n', 3, 8, 8]]), { preprocess: { mean: [1, 2] } }), 'preprocess.mean', '3 numbers')
  await rejects(t, openDataSource(two, model(['x', ['n', 3, 8, 8]]), { preprocess: { resize: 16, centerCrop: 10 } }), 'gives 10×10 images', 'takes 8×8')
  await rejects(t, openDataSource(two, model(['x', ['n', 3, 8, 8]]), { preprocess: { mena: [0] } }), 'unknown preprocess option "mena"', 'did you mean "mean"')
  await rejects(t, openDataSource(two, model(['x', [1, 3, 8, 8]]), { batchSize: 2 }), 'batchSize 2', 'fixed at 1')
  await rejects(t, openDataSource(two, model(['a', ['n', 3, 8, 8]], ['b', ['n', 3, 8, 8]])), 'images feed one input', '"a"', '"b"')
})

test('spec objects, base folder, options override, unknown paths and kinds, initializer-backed inputs', async (t) => {
  const dir = tmp()
  writeFileSync(join(dir, 'a.png'), await png2x2())
  const m = model(['x', ['n', 3, 2, 2]])
  const src = await openDataSource({ path: '.', preprocess: { scale: 1, mean: 1 }, count: 5 }, m, { baseDir: dir, preprocess: { mean: 2 } })
  t.is(src.path, dir)
  t.is((await collect(src))[0].x.data[0], 253)
  await rejects(t, openDataSource('nope/missing.npy', m, { baseDir: dir }), join(dir, 'nope', 'missing.npy'), 'no such file or folder')
  writeFileSync(join(dir, 'x.csv'), '1,2')
  await rejects(t, openDataSource(join(dir, 'x.csv'), m), 'x.csv', 'unknown kind of data source', '.npz')
  await rejects(t, openDataSource({ path: dir, kind: 'npy' }, m), 'only images come as a folder')
  await rejects(t, openDataSource(dir, m, { batchSize: 0 }), 'batchSize must be a positive integer')
  // Old exporters list weights as graph inputs: with the initializers given they need no feed.
  const withWeights = { inputs: [...m.inputs, { name: 'w', shape: [3], elemType: FLOAT }], initializers: new Map([['w', {}]]) }
  t.is((await collect(await openDataSource(dir, withWeights))).length, 1)
})

test('labels (readLabels, written alongside the CLI): .npy, .json, text', async (t) => {
  const dir = tmp()
  writeFileSync(join(dir, 'l.npy'), npy({ descr: '<i8', shape: [3], data: BigInt64Array.of(2n, 0n, 1n) }))
  writeFileSync(join(dir, 'l.json'), '[3, 1]')
  writeFileSync(join(dir, 'l.txt'), '4\n5\n\n6\n')
  t.deepEqual(Array.from(await readLabels(join(dir, 'l.npy'))), [2, 0, 1])
  t.deepEqual(Array.from(await readLabels(join(dir, 'l.json'))), [3, 1])
  t.deepEqual(Array.from(await readLabels(join(dir, 'l.txt'))), [4, 5, 6])
  writeFileSync(join(dir, 'bad.json'), '[1, -2]')
  await rejects(t, readLabels(join(dir, 'bad.json')), 'bad.json', 'label 1')
})

test('an image folder feeds the MNIST CNN through ONNX Runtime', async (t) => {
  const ort = require('onnxruntime-node')
  const { loadModel } = require('../dist/index.js')
  const path = join(dirname(fixtures), 'mnist-cnn.onnx')
  const m = await loadModel(path)
  const dir = tmp()
  for (let i = 0; i < 3; i++) writeFileSync(join(dir, `${i}.png`), await sharp({ create: { width: 40, height: 32, channels: 3, background: { r: 80 * i, g: 0, b: 0 } } }).png().toBuffer())
  const src = await openDataSource(dir, m.graph, { batchSize: 2, preprocess: { resize: [28, 28] } })
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 })
  let samples = 0
  for await (const feeds of src.batches()) {
    const out = await session.run({ input: new ort.Tensor(feeds.input.type, feeds.input.data, feeds.input.dims) })
    samples += out.logits.dims[0]
  }
  t.is(samples, 3)
})
