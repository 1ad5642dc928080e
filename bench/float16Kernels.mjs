// Which ops ONNX Runtime's CPU provider runs natively in float16 on this machine: one-node float16
// models, session created with graph optimisations disabled and the transformed graph saved; an op
// wrapped in Cast nodes has no float16 kernel here (InsertCastTransformer runs the float kernel).
// Facts behind src/modes/float16Ops.ts and the table in docs/float16.md.
// Usage: node bench/float16Kernels.mjs
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const tmp = require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'qk-fp16-'))
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const H = 10, F = 1, I64 = 7
const t = (name, dataType, dims, data) => ({ name, dataType, dims, data })
const cases = {
  Relu: { inputs: ['x'] }, Conv: { inputs: ['x', 'w'], inits: [t('w', H, [2, 2, 1, 1], new Uint16Array(4).fill(0x3c00))] },
  MatMul: { inputs: ['x', 'm'], inits: [t('m', H, [3, 3], new Uint16Array(9).fill(0x3c00))] },
  Add: { inputs: ['x', 'x'] }, Mul: { inputs: ['x', 'x'] }, Sigmoid: {}, Tanh: {}, Exp: {}, Softmax: {}, Erf: {}, Sqrt: {}, Div: { inputs: ['x', 'x'] },
  MaxPool: { attrs: { kernel_shape: [1, 1] } }, AveragePool: { attrs: { kernel_shape: [1, 1] } }, GlobalAveragePool: {},
  ReduceMean: {}, ReduceSum: {}, ReduceMax: {}, ReduceSumSquare: {}, ReduceL2: {}, ReduceLogSumExp: {}, ReduceProd: {},
  Resize: { opset: 13, inputs: ['x', '', 's'], inits: [t('s', F, [4], Float32Array.of(1, 1, 2, 2))] },
  'Resize(fp16 scales)': { op: 'Resize', opset: 13, inputs: ['x', '', 's'], inits: [t('s', H, [4], Uint16Array.of(0x3c00, 0x3c00, 0x4000, 0x4000))] },
  Clip: { inputs: ['x', 'lo', 'hi'], inits: [t('lo', H, [], Uint16Array.of(0)), t('hi', H, [], Uint16Array.of(0x4600))] },
  BatchNormalization: { inputs: ['x', 'p', 'p', 'p', 'p'], inits: [t('p', H, [2], Uint16Array.of(0x3c00, 0x3c00))] },
  Pow: { inputs: ['x', 'e'], inits: [t('e', H, [], Uint16Array.of(0x4000))] },
  LayerNormalization: { opset: 17, inputs: ['x', 'g'], inits: [t('g', H, [3], new Uint16Array(3).fill(0x3c00))] },
  InstanceNormalization: { inputs: ['x', 'p', 'p'], inits: [t('p', H, [2], Uint16Array.of(0x3c00, 0x3c00))] },
  Gemm: { x: [3, 2], inputs: ['x', 'm'], inits: [t('m', H, [2, 2], new Uint16Array(4).fill(0x3c00))] },
  TopK: { inputs: ['x', 'k'], inits: [t('k', I64, [1], BigInt64Array.of(1n))], outputs: ['y', 'i'] },
  CumSum: { inputs: ['x', 'a'], inits: [t('a', I64, [], BigInt64Array.of(1n))] },
  Min: { inputs: ['x', 'x'] }, Max: { inputs: ['x', 'x'] }, Where: { inputs: ['c', 'x', 'x'], inits: [t('c', 9, [], Uint8Array.of(1))] },
  Range: { x: [], inputs: ['x', 'x', 'x'] },
  NonMaxSuppression: { x: [1, 1, 4], inputs: ['x', 'x'], outY: I64 },
  RoiAlign: { inputs: ['x', 'r', 'b'], inits: [t('r', H, [1, 4], new Uint16Array(4)), t('b', I64, [1], BigInt64Array.of(0n))] },
  LeakyRelu: {}, HardSigmoid: {}, PRelu: { inputs: ['x', 'x'] }, Transpose: {}, Concat: { attrs: { axis: 1 } , inputs: ['x', 'x']}, Flatten: {},
  ConvTranspose: { inputs: ['x', 'w'], inits: [t('w', H, [2, 2, 1, 1], new Uint16Array(4).fill(0x3c00))] },
  Einsum: { attrs: { equation: 'abcd->abdc' } }, Log: {}, Neg: {}, Abs: {}, Floor: {}, Round: {}, Gelu: { opset: 20 }, HardSwish: {}, Einsum2: {op:'Einsum', attrs: { equation: 'ij,jk->ik' }, x:[2,2], inputs:['x','x']},
  Upsample: { opset: 9, inputs: ['x', 's'], inits: [t('s', F, [4], Float32Array.of(1, 1, 2, 2))] },
  LpNormalization: {}, MeanVarianceNormalization: {}, GroupNormalization: { opset: 21, inputs: ['x', 'p', 'p'], attrs: { num_groups: 1 }, inits: [t('p', H, [2], Uint16Array.of(0x3c00, 0x3c00))] },
}
for (const [name, c] of Object.entries(cases)) {
  const op = c.op ?? name
  const dims = c.x ?? [1, 2, 3, 3]
  const outputs = c.outputs ?? ['y']
  const spec = {
    opset: c.opset ?? 17, inputs: [{ name: 'x', dataType: H, dims }], outputs: outputs.map((o, i) => ({ name: o, dataType: i === 0 ? (c.outY ?? H) : I64 })),
    initializers: c.inits ?? [], nodes: [{ opType: op, inputs: c.inputs ?? ['x'], outputs, attributes: c.attrs }],
  }
  const res = []; const p = `${tmp}/opt_${name.replace(/[^A-Za-z0-9]/g,"")}.onnx`
  for (const level of ['disabled']) {
    try {
      const bytes = buildModel(spec)
      const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level, intraOpNumThreads: 1, optimizedModelFilePath: p })
      const n = dims.reduce((a, b) => a * b, 1)
      const x = new Uint16Array(n).fill(0x3c00)
      await s.run({ x: new ort.Tensor('float16', x, dims) })
      const { onnx } = require('../generated/onnx.js'); const g = onnx.ModelProto.decode(require("fs").readFileSync(p)).graph; res.push(g.node.map(n => n.opType).join(","))
    } catch (e) { res.push(`FAIL ${String(e.message).split('\n')[0].slice(0, 150)}`) }
  }
  console.log(name.padEnd(24), res.join(' | '))
}
