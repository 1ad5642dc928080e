// HTP target rules (src/config/htpTargets.ts): quantkit's own per-generation table, every row
// unverified (Qualcomm's docs were not reachable), so requests outside a row are warnings in
// sim.report.warnings / placement.notes, and errors only with strictTarget.
import test from 'ava'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { QuantSim, QuantSimError, HTP_TARGETS, htpTarget, checkTarget } = require('../dist/index.js')

const MNIST = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'mnist-cnn.onnx')
const THREADS = { intraOpNumThreads: 1 }

test('the table: one row per aimet-onnx HTP preset, each with its source', (t) => {
  t.deepEqual(Object.keys(HTP_TARGETS), ['V66', 'V68', 'V69', 'V73', 'V75', 'V79', 'V81', 'V85'])
  for (const row of Object.values(HTP_TARGETS)) {
    t.false(row.verified)
    t.regex(row.source, /unverified/)
  }
  t.deepEqual(HTP_TARGETS.V68.paramBitwidths, [8])
  t.deepEqual(HTP_TARGETS.V68.activationBitwidths, [8, 16])
  t.deepEqual(HTP_TARGETS.V73.paramBitwidths, [4, 8, 16])
  t.false(HTP_TARGETS.V68.float16)
  t.true(HTP_TARGETS.V69.float16)
  t.false(HTP_TARGETS.V69.lpbq)
  t.true(HTP_TARGETS.V73.lpbq)
  t.is(htpTarget({ hwVersion: 'V75' }), HTP_TARGETS.V75)
  t.is(htpTarget({}), undefined)
  t.deepEqual(checkTarget(undefined, 'default', [{ tensor: 'w', opType: 'Conv', kind: 'param', dtype: 'int', bitwidth: 16, blockwise: false, lpbq: false }]), [])
})

test('16-bit params under htp_v68: a warning naming op type, preset and what it supports; strictTarget makes it an error', async (t) => {
  const sim = await QuantSim.create(MNIST, { ...THREADS, config: 'htp_v68', paramBitwidth: 16 })
  t.true(sim.report.warnings.length >= 2)
  const conv = sim.report.warnings.find((w) => w.startsWith('Conv params'))
  t.regex(conv, /16-bit is not supported by htp_v68 \(hw_version V68\), which supports 8-bit params/)
  t.regex(conv, /conv1\.weight/)
  t.regex(conv, /unverified/)
  t.true(sim.report.placement.notes.includes(`target: ${conv}`))
  await sim.close()
  await t.throwsAsync(() => QuantSim.create(MNIST, { ...THREADS, config: 'htp_v68', paramBitwidth: 16, strictTarget: true }), { instanceOf: QuantSimError, message: /strictTarget: .*Conv params.*16-bit is not supported by htp_v68/ })
  // Fine where the generation runs it, and never checked without an HTP config.
  for (const config of ['htp_v73', 'default', 'per_tensor']) {
    const ok = await QuantSim.create(MNIST, { ...THREADS, config, paramBitwidth: 16, strictTarget: true })
    t.deepEqual(ok.report.warnings, [], config)
    await ok.close()
  }
})

test('16-bit activations under htp_v66, float16 under htp_v68', async (t) => {
  const a16 = await QuantSim.create(MNIST, { ...THREADS, config: 'htp_v66', activationBitwidth: 16 })
  t.true(a16.report.warnings.some((w) => /activations .*16-bit is not supported by htp_v66.*supports 8-bit activations/.test(w)))
  await a16.close()
  const f16 = await QuantSim.create(MNIST, { ...THREADS, config: 'htp_v68', paramType: 'float16', activationType: 'float16' })
  t.true(f16.report.warnings.some((w) => /float16 is not supported by htp_v68/.test(w)))
  await f16.close()
})

test('blockwise and LPBQ before v73: warnings, or with strictTarget an error that leaves the sim unchanged', async (t) => {
  const sim = await QuantSim.create(MNIST, { ...THREADS, config: 'htp_v69' })
  t.deepEqual(sim.report.warnings, [])
  sim.setBlockwise({ opTypes: ['Gemm'], bitwidth: 4, blockSize: 32 })
  t.true(sim.report.warnings.some((w) => /^Gemm params .*blockwise quantization is not supported by htp_v69/.test(w)))
  t.true(sim.report.warnings.some((w) => /^Gemm params .*4-bit is not supported by htp_v69/.test(w)))
  await sim.close()

  const strict = await QuantSim.create(MNIST, { ...THREADS, config: 'htp_v69', strictTarget: true })
  const before = structuredClone(strict.quantizers.find((q) => q.tensor === 'fc1.weight').spec)
  t.throws(() => strict.setLpbq({ opTypes: ['Gemm'], bitwidth: 4, decompressedBitwidth: 8, blockSize: 32 }), { instanceOf: QuantSimError, message: /LPBQ is not supported by htp_v69/ })
  t.deepEqual(strict.quantizers.find((q) => q.tensor === 'fc1.weight').spec, before)
  await strict.close()

  const v73 = await QuantSim.create(MNIST, { ...THREADS, config: 'htp_v73', strictTarget: true })
  v73.setLpbq({ opTypes: ['Gemm'], bitwidth: 4, decompressedBitwidth: 8, blockSize: 32 })
  t.deepEqual(v73.report.warnings, [])
  await v73.close()
})
