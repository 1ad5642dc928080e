// Quantsim configs: reading AIMET's files, errors with JSON paths and nearest keys, presets equal
// to aimet-onnx 2.42's files in meaning, resolution for placement, AIMET's code-level rules.
// Tests marked (venv) read the installed aimet-onnx (AIMET_VENV, default /tmp/aimet-venv) and are
// skipped without it; the committed fixtures under fixtures/config/aimet cover the same ground in part.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'

const require = createRequire(import.meta.url)
const q = require('../dist/index.js')
const { resolveConfig, validateQuantsimConfig, presetConfig, PRESET_NAMES, PRESET_AIMET_FILES, ConfigError, QuantkitError,
  CONFIG_KEYS, aimetRules, resolveQuantizerDefaults, editDistance } = q

const here = dirname(fileURLToPath(import.meta.url))
const fixtures = join(here, 'fixtures', 'config')
const schemaPath = join(here, '..', 'schemas', 'quantsim-config.schema.json')

const venv = process.env.AIMET_VENV ?? '/tmp/aimet-venv'
function aimetConfigDir() {
  const lib = join(venv, 'lib')
  if (!existsSync(lib)) return undefined
  for (const py of readdirSync(lib)) {
    const dir = join(lib, py, 'site-packages', 'aimet_onnx', 'common', 'quantsim_config')
    if (existsSync(dir)) return dir
  }
  return undefined
}
const aimetDir = aimetConfigDir()
const venvTest = aimetDir ? test : test.skip
const aimetFiles = aimetDir ? readdirSync(aimetDir).filter((f) => f.endsWith('.json')).sort() : []

const fixtureFiles = readdirSync(join(fixtures, 'aimet')).map((f) => join(fixtures, 'aimet', f))
const clone = (x) => structuredClone(x)
const base = () => presetConfig('default')

/** Meaning of a resolved config, without where it came from. */
function meaning(resolved, extraOps = []) {
  const s = resolved.summary(extraOps)
  delete s.source
  return s
}

function throwsConfig(t, fn, { path, suggestion, message }) {
  const err = t.throws(fn, { instanceOf: ConfigError })
  if (path !== undefined) t.is(err.path, path)
  if (suggestion !== undefined) t.is(err.suggestion, suggestion)
  if (message) t.regex(err.message, message)
  return err
}

// ---------------------------------------------------------------------------------------------
// AIMET's files load

test('the committed AIMET files load without errors or warnings', (t) => {
  t.is(fixtureFiles.length, 3)
  for (const f of fixtureFiles) {
    const r = resolveConfig(f)
    t.is(r.source, f)
    t.deepEqual(r.warnings, [], f)
  }
})

venvTest('(venv) every config file aimet-onnx 2.42 ships loads without errors or warnings', (t) => {
  t.true(aimetFiles.length >= 19, `found ${aimetFiles.length} files in ${aimetDir}`)
  for (const f of aimetFiles) {
    const r = resolveConfig(join(aimetDir, f))
    t.deepEqual(r.warnings, [], f)
  }
})

venvTest('(venv) the JSON schema accepts every AIMET file and every preset (Python jsonschema, draft 2020-12)', (t) => {
  const python = join(venv, 'bin', 'python')
  const dir = mkdtempSync(join(tmpdir(), 'qk-config-'))
  try {
    const files = aimetFiles.map((f) => join(aimetDir, f))
    for (const name of PRESET_NAMES) {
      const p = join(dir, `${name}.json`)
      writeFileSync(p, JSON.stringify(presetConfig(name)))
      files.push(p)
    }
    const bad = base()
    bad.defaults.params.is_symetric = 'True'
    writeFileSync(join(dir, 'bad.json'), JSON.stringify(bad))
    const script = [
      'import json, sys',
      'from jsonschema import Draft202012Validator',
      'schema = json.load(open(sys.argv[1])); Draft202012Validator.check_schema(schema); v = Draft202012Validator(schema)',
      'print(json.dumps({f: [e.message for e in v.iter_errors(json.load(open(f)))] for f in sys.argv[2:]}))',
    ].join('\n')
    const r = spawnSync(python, ['-c', script, schemaPath, ...files, join(dir, 'bad.json')], { encoding: 'utf8' })
    t.is(r.status, 0, r.stderr)
    const result = JSON.parse(r.stdout)
    for (const f of files) t.deepEqual(result[f], [], f)
    t.regex(result[join(dir, 'bad.json')].join(), /is_symetric/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the JSON schema lists exactly the keys the validator knows', (t) => {
  const s = JSON.parse(readFileSync(schemaPath, 'utf8'))
  const keys = (o) => Object.keys(o.properties).sort()
  const sorted = (a) => [...a].sort()
  t.deepEqual(keys(s), sorted(CONFIG_KEYS.root))
  t.deepEqual(sorted(s.required), sorted(CONFIG_KEYS.rootRequired))
  t.deepEqual(keys(s.properties.defaults), sorted(CONFIG_KEYS.defaults))
  t.deepEqual(sorted(s.properties.defaults.required), sorted(CONFIG_KEYS.defaultsRequired))
  t.deepEqual(keys(s.properties.defaults.properties.ops), sorted(CONFIG_KEYS.defaultsOps))
  t.deepEqual(keys(s.$defs.paramSettings), sorted(CONFIG_KEYS.paramSettings))
  t.deepEqual(keys(s.$defs.opType), sorted(CONFIG_KEYS.opType))
  t.deepEqual(keys(s.$defs.opType.properties.encoding_constraints), sorted(CONFIG_KEYS.encodingConstraints))
  t.deepEqual(keys(s.$defs.kernelSpec), sorted(CONFIG_KEYS.kernelSpec))
  t.deepEqual(keys(s.$defs.supportedKernels.items), sorted(CONFIG_KEYS.supportedKernel))
  t.deepEqual(keys(s.properties.supergroups.items), sorted(CONFIG_KEYS.supergroup))
  t.deepEqual(keys(s.properties.model_input), sorted(CONFIG_KEYS.modelInput))
  t.deepEqual(keys(s.properties.model_output), sorted(CONFIG_KEYS.modelOutput))
  t.deepEqual(s.properties.supergroup_pass_list.items.enum, [...aimetRules.FUSION_PASSES])
})

// ---------------------------------------------------------------------------------------------
// Presets mean what AIMET's files mean

test('per_tensor and htp_v73 equal the committed AIMET files in meaning and as data', (t) => {
  for (const [name, file] of [['per_tensor', 'default_config.json'], ['htp_v73', 'htp_quantsim_config_v73.json']]) {
    const mine = resolveConfig(name)
    const theirs = resolveConfig(join(fixtures, 'aimet', file))
    t.deepEqual(meaning(mine), meaning(theirs), name)
    t.deepEqual(mine.config, theirs.config, name)
  }
})

venvTest('(venv) every preset equals its aimet-onnx 2.42 file in meaning and as data', (t) => {
  // quantkit's own presets (ort_x86, ort_x86_vnni, ort_arm) have no aimet-onnx file.
  for (const name of PRESET_NAMES.filter((n) => PRESET_AIMET_FILES[n] !== undefined)) {
    const file = join(aimetDir, PRESET_AIMET_FILES[name])
    const mine = resolveConfig(name)
    const theirs = resolveConfig(file)
    // Ask about every op type either config mentions plus a few no config names.
    const extra = ['Conv', 'Softmax', 'Mul', 'Resize', 'Einsum']
    t.deepEqual(meaning(mine, extra), meaning(theirs, extra), name)
    t.true(isDeepStrictEqual(mine.config, theirs.config), `${name}: validated config differs from ${file}`)
  }
})

venvTest('(venv) the _per_channel_linear files and AIMET file names resolve to the same presets', (t) => {
  for (const f of aimetFiles.filter((f) => f.includes('_per_channel_linear'))) {
    const v = f.match(/_v(\d+)_/)[1]
    t.deepEqual(meaning(resolveConfig(join(aimetDir, f))), meaning(resolveConfig(`htp_v${v}`)), f)
    t.is(resolveConfig(f).preset, `htp_v${v}`)
  }
  t.is(resolveConfig('default_config.json').preset, 'per_tensor')
  t.is(resolveConfig('default_config_per_channel.json').preset, 'default')
  t.is(resolveConfig('enpu_quantsim_config_v7.json').preset, 'enpu_v7')
})

test('no config means default; per_channel is default; the per-channel ops of each preset', (t) => {
  t.is(resolveConfig().preset, 'default')
  t.deepEqual(meaning(resolveConfig()), meaning(resolveConfig('default')))
  t.deepEqual(meaning(resolveConfig('per_channel')), meaning(resolveConfig('default')))
  const pc = (name) => resolveConfig(name).perChannelOpTypes
  t.deepEqual(pc('default'), ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])
  t.deepEqual(pc('per_tensor'), [])
  t.deepEqual(pc('htp_v66'), [])
  t.deepEqual(pc('htp_v68'), ['Conv', 'ConvTranspose'])
  t.deepEqual(pc('htp_v69'), ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])
  t.deepEqual(pc('enpu_v7'), [])
  t.is(resolveConfig('htp_v81').hwVersion, 'V81')
  t.is(resolveConfig('enpu_v6').hwVersion, undefined)
  t.deepEqual(resolveConfig('htp_v66').fusionPasses, [])
  t.deepEqual(resolveConfig('htp_v68').fusionPasses, ['LayerNormalization', 'RMSNormalization', 'MatmulAdd'])
  // presetConfig gives a fresh copy in AIMET's own spelling
  const a = presetConfig('htp_v73')
  a.defaults.hw_version = 'changed'
  t.is(presetConfig('htp_v73').defaults.hw_version, 'V73')
  t.is(presetConfig('default').defaults.params.is_symmetric, 'True')
})

// ---------------------------------------------------------------------------------------------
// Errors

test('an unknown or misspelled key names its JSON path and the nearest valid key', (t) => {
  const cases = [
    [(c) => { c.defaults.params.is_symetric = 'True' }, 'defaults.params.is_symetric', 'is_symmetric'],
    [(c) => { c.op_type.Conv.per_chanel_quantization = 'True' }, 'op_type.Conv.per_chanel_quantization', 'per_channel_quantization'],
    [(c) => { c.defaults.Strict_Symmetric = 'False' }, 'defaults.Strict_Symmetric', 'strict_symmetric'],
    [(c) => { c.model_inputs = {} }, 'model_inputs', 'model_input'],
    [(c) => { c.supergroups[1].oplist = ['Conv', 'Relu'] }, 'supergroups[1].oplist', 'op_list'],
    [(c) => { c.op_type.BatchNormalization.params.running_mean.is_quantised = 'False' }, 'op_type.BatchNormalization.params.running_mean.is_quantised', 'is_quantized'],
    [(c) => { c.op_type['my.op'] = { is_output_quantize: 'False' } }, 'op_type["my.op"].is_output_quantize', 'is_output_quantized'],
    [(c) => { c.model_output.is_output_quantised = 'True' }, 'model_output.is_output_quantised', 'is_output_quantized'],
  ]
  for (const [edit, path, suggestion] of cases) {
    const c = base()
    edit(c)
    const err = throwsConfig(t, () => resolveConfig(c), { path, suggestion })
    t.true(err.message.includes(path), err.message)
    t.true(err.message.includes(`"${suggestion}"`), err.message)
    t.true(err instanceof QuantkitError)
  }
  // fusion passes and preset names too
  const c = base()
  c.supergroup_pass_list = ['LayerNormalization', 'MatMulAdd']
  throwsConfig(t, () => resolveConfig(c), { path: 'supergroup_pass_list[1]', suggestion: 'MatmulAdd', message: /unknown fusion pass "MatMulAdd"/ })
  throwsConfig(t, () => resolveConfig('htp_v37'), { suggestion: 'htp_v73', message: /nearest preset is "htp_v73"/ })
  throwsConfig(t, () => resolveConfig('per-tensor'), { suggestion: 'per_tensor' })
})

test('a valid key with a bad value says what is allowed', (t) => {
  const cases = [
    [(c) => { c.defaults.params.is_symmetric = 'yes' }, 'defaults.params.is_symmetric', /expected "True" or "False"/],
    [(c) => { c.defaults.params.is_symmetric = 'true' }, 'defaults.params.is_symmetric', /case-sensitive/],
    [(c) => { c.defaults.per_channel_quantization = 1 }, 'defaults.per_channel_quantization', /expected "True" or "False".*got number 1/],
    [(c) => { c.defaults.hw_version = 73 }, 'defaults.hw_version', /hardware version string/],
    [(c) => { c.op_type.Relu = { encoding_constraints: { min: '0' } } }, 'op_type.Relu.encoding_constraints.min', /finite number/],
    [(c) => { c.op_type.Relu = { encoding_constraints: { max: 1 } } }, 'op_type.Relu.encoding_constraints', /missing required key "min"/],
    [(c) => { c.op_type.Tanh = { encoding_constraints: { min: 1, max: -1 } } }, 'op_type.Tanh.encoding_constraints.max', /max ≥ min/],
    [(c) => { c.supergroups.push({ op_list: ['Conv'] }) }, 'supergroups[5].op_list', /at least 2 op types/],
    [(c) => { c.supergroups = {} }, 'supergroups', /expected an array/],
    [(c) => { c.op_type.Conv.supported_kernels = [{ activation: { bitwidth: 12, dtype: 'int' } }] }, 'op_type.Conv.supported_kernels[0].activation.bitwidth', /one of 4, 8, 16, 32/],
    [(c) => { c.defaults.supported_kernels = [{ activation: { bitwidth: 8, dtype: 'float' }, param: { bitwidth: 8, dtype: 'int' } }] }, 'defaults.supported_kernels[0].activation.bitwidth', /float.*16 or 32/],
    [(c) => { c.defaults.supported_kernels = [{ activation: { bitwidth: 8, dtype: 'int' } }] }, 'defaults.supported_kernels[0]', /missing required key "param"/],
    [(c) => { c.model_input.is_input_quantized = 'False' }, 'model_input.is_input_quantized', /only "True" is allowed/],
    [(c) => { c.model_output.is_output_quantized = false }, 'model_output.is_output_quantized', /only "True" is allowed/],
    [(c) => { c.defaults.ops.is_output_quantized = 'False' }, 'defaults.ops.is_output_quantized', /only "True" is allowed/],
    [(c) => { c.defaults.ops.is_input_quantized = 'True' }, 'defaults.ops.is_input_quantized', /not allowed in defaults/],
    [(c) => { c.op_type.Add = { is_input_quantized: 'False' } }, 'op_type.Add.is_input_quantized', /only "True" is allowed/],
    [(c) => { delete c.model_output }, '', /missing required key "model_output"/],
    [(c) => { delete c.defaults.params }, 'defaults', /missing required key "params"/],
  ]
  for (const [edit, path, message] of cases) {
    const c = base()
    edit(c)
    throwsConfig(t, () => resolveConfig(c), { path, message })
  }
  t.throws(() => resolveConfig(42), { instanceOf: TypeError, message: /^config:/ })
  throwsConfig(t, () => resolveConfig('missing/dir/config.json'), { message: /config file not found: missing\/dir\/config.json/ })
  throwsConfig(t, () => resolveConfig('dsp_quantsim_config.json'), { message: /does not bundle/ })
  const dir = mkdtempSync(join(tmpdir(), 'qk-config-'))
  try {
    writeFileSync(join(dir, 'broken.json'), '{"defaults": ')
    const err = throwsConfig(t, () => resolveConfig(join(dir, 'broken.json')), { message: /not valid JSON/ })
    t.is(err.source, join(dir, 'broken.json'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('"True"/"False" strings and JSON booleans mean the same', (t) => {
  const strings = base()
  const toBool = (o) => {
    for (const [k, v] of Object.entries(o)) {
      if (v === 'True') o[k] = true
      else if (v === 'False') o[k] = false
      else if (v && typeof v === 'object') toBool(v)
    }
    return o
  }
  const bools = toBool(clone(strings))
  t.is(bools.defaults.params.is_symmetric, true)
  t.deepEqual(meaning(resolveConfig(bools)), meaning(resolveConfig(strings)))
  t.deepEqual(resolveConfig(bools).config, resolveConfig(strings).config)
})

test('settings that match nothing are accepted with a warning naming the likely intent', (t) => {
  const c = base()
  c.op_type.ReLU = { is_output_quantized: 'False' }
  c.params.wieght = { is_symmetric: 'False' }
  c.supergroups.push({ op_list: ['Conv', 'Sigmoïd'] })
  c.op_type.Relu = { encoding_constraints: { min: 0, maxx: 6 } }
  c.defaults.hw_version = 'V99'
  const r = resolveConfig(c)
  const w = r.warnings.join('\n')
  t.regex(w, /op_type\.ReLU: .*did you mean "Relu"/)
  t.regex(w, /params\.wieght: .*did you mean "weight"/)
  t.regex(w, /supergroups\[5\]\.op_list\[1\]: .*did you mean "Sigmoid"/)
  t.regex(w, /op_type\.Relu\.encoding_constraints\.maxx: ignored.*"max"/)
  t.regex(w, /defaults\.hw_version: "V99".*V73 or later/)
  t.is(r.warnings.length, 5)
  t.deepEqual(r.op('Relu').encodingConstraints, { min: 0, symmetric: false })
})

// ---------------------------------------------------------------------------------------------
// Resolution

test('per-channel applies only to Conv, ConvTranspose, Gemm and MatMul, whatever the file says', (t) => {
  const c = base()
  c.defaults.per_channel_quantization = 'True'
  c.op_type.LayerNormalization = { per_channel_quantization: 'True' }
  c.op_type.Gemm.per_channel_quantization = 'False'
  const r = resolveConfig(c)
  t.deepEqual(r.perChannelOpTypes, ['Conv', 'ConvTranspose', 'MatMul'])
  for (const op of ['LayerNormalization', 'PRelu', 'BatchNormalization', 'Add', 'LSTM']) t.false(r.op(op).perChannel, op)
  t.true(r.op('ConvTranspose').perChannel)
  t.false(r.op('Gemm').perChannel)
  // PRelu is marked per-channel in AIMET's default file but has no params there
  t.deepEqual(resolveConfig('default').op('PRelu').params, {})
})

test('a hand-written small config resolves as expected', (t) => {
  const r = resolveConfig(join(fixtures, 'small.json'))
  t.deepEqual(r.warnings, [])
  t.is(r.hwVersion, 'V68')
  t.true(r.strictSymmetric)
  t.false(r.unsignedSymmetric)
  t.deepEqual(r.modelInput, { isInputQuantized: true })
  t.deepEqual(r.modelOutput, { isOutputQuantized: true })
  t.deepEqual(r.supergroups, [['Conv', 'Relu'], ['Gemm', 'BatchNormalization', 'Relu']])
  t.deepEqual(r.fusionPasses, ['LayerNormalization'])
  t.deepEqual(r.perChannelOpTypes, ['Conv', 'MatMul'])

  t.deepEqual(r.op('Conv'), {
    opType: 'Conv', hasOutputQuantizer: true, isOutputQuantized: true, isSymmetric: false, perChannel: true,
    params: { weight: { isQuantized: true, isSymmetric: true }, bias: { isQuantized: false, isSymmetric: true } },
    dynamicWeightIsSymmetric: true,
  })
  const mm = r.op('MatMul')
  t.deepEqual(mm.params, { weight: { isQuantized: true, isSymmetric: false } })
  t.false(mm.dynamicWeightIsSymmetric)
  t.true(mm.perChannel)
  t.false(r.op('Gemm').perChannel)
  t.false(r.op('LayerNormalization').perChannel)
  t.deepEqual(r.op('LayerNormalization').params, { weight: { isQuantized: true, isSymmetric: true }, bias: { isQuantized: false, isSymmetric: true } })
  t.deepEqual(r.op('BatchNormalization').params, {
    weight: { isQuantized: true, isSymmetric: true }, bias: { isQuantized: false, isSymmetric: true },
    running_mean: { isQuantized: false, isSymmetric: true }, running_var: { isQuantized: false, isSymmetric: true },
  })
  t.deepEqual(r.param('Gemm', 'bias'), { isQuantized: false, isSymmetric: true })
  t.deepEqual(r.param('Gemm', 'weight'), { isQuantized: true, isSymmetric: true })

  // grid-preserving: MaxPool is named (so its output is quantized, with a symmetric fixed range); Pad is not
  const maxPool = r.op('MaxPool')
  t.true(maxPool.isOutputQuantized)
  t.deepEqual(maxPool.encodingConstraints, { min: -4, max: 4, symmetric: true })
  t.true(maxPool.isSymmetric)
  t.false(r.op('Pad').isOutputQuantized)
  t.true(r.op('Pad').hasOutputQuantizer)
  // no output quantizer at all
  t.false(r.op('Reshape').hasOutputQuantizer)
  t.false(r.op('Reshape').isOutputQuantized)
  // the rest
  const sig = r.op('Sigmoid')
  t.true(sig.isInputQuantized)
  t.deepEqual(sig.encodingConstraints, { min: 0, max: 1, symmetric: false })
  t.false(sig.isSymmetric)
  t.false(r.op('Softmax').isOutputQuantized)
  t.true(r.op('Add').isOutputQuantized)
  t.deepEqual(r.op('Add').params, {})
  t.is(r.op('Add').isInputQuantized, undefined)
  t.is(r.op('Concat').tie, 'inputs-take-output')
  t.is(r.op('Relu').tie, 'output-takes-input')
  t.is(r.op('Resize').tie, 'output-takes-input')
  t.is(r.op('Add').tie, undefined)
  // op() hands out copies
  r.op('Conv').params.weight.isQuantized = false
  t.true(r.op('Conv').params.weight.isQuantized)
  // JSON form
  const json = JSON.parse(JSON.stringify(r))
  t.is(json.ops.MaxPool.encodingConstraints.max, 4)
  t.is(json.defaults.params.isSymmetric, true)
})

test('AIMET defaults when a file is silent: no strict/unsigned, params and outputs off, model input off', (t) => {
  const c = {
    defaults: { ops: {}, params: {} }, params: {}, op_type: {}, supergroups: [], model_input: {}, model_output: {},
  }
  const r = resolveConfig(c)
  t.false(r.strictSymmetric)
  t.false(r.unsignedSymmetric)
  t.false(r.op('Conv').isOutputQuantized)
  t.deepEqual(r.op('Conv').params.weight, { isQuantized: false, isSymmetric: false })
  t.false(r.modelInput.isInputQuantized)
  t.deepEqual(r.modelOutput, {})
  t.deepEqual(r.fusionPasses, [])
  // the dsp file has no is_symmetric: params asymmetric
  t.false(resolveConfig(join(fixtures, 'aimet', 'dsp_quantsim_config.json')).param('Conv', 'weight').isSymmetric)
})

test('HTP and eNPU presets: the facts of docs/presets.md', (t) => {
  const v66 = resolveConfig('htp_v66')
  t.false(v66.op('Flatten').isOutputQuantized)
  t.false(v66.op('Gather').isOutputQuantized)
  t.false(v66.op('ChannelShuffle').isOutputQuantized)
  t.deepEqual(v66.op('Relu').encodingConstraints, { min: 0, symmetric: false })
  t.deepEqual(v66.op('Tanh').encodingConstraints, { min: -1, max: 1, symmetric: true })
  t.false(v66.param('LayerNormalization', 'weight').isSymmetric)
  t.true(v66.param('InstanceNormalization', 'weight').isSymmetric) // v66 does not name InstanceNorm
  const v73 = resolveConfig('htp_v73')
  t.true(v73.param('GroupNormalization', 'bias').isQuantized)
  t.false(v73.param('LayerNormalization', 'bias').isQuantized)
  t.deepEqual(v73.op('Softmax').encodingConstraints, { min: 0, max: 1, symmetric: false })
  t.is(v73.supergroups.length, 14)
  const e7 = resolveConfig('enpu_v7')
  t.true(e7.op('Add').isSymmetric)
  t.deepEqual(e7.modelOutput, { isOutputQuantized: true })
  t.false(e7.param('BatchNormalization', 'weight').isQuantized)
  t.is(resolveConfig('enpu_v6').supergroups.length, 95) // Conv, ConvTranspose, pools: 15 each; Gemm, MatMul, Add, Sub, Mul: 7 each
  t.is(e7.supergroups.length, 101) // + BatchNormalization followed by 6 activations
})

// ---------------------------------------------------------------------------------------------
// AIMET's code-level rules

test('aimetRules: op-input → param name mapping and per-channel axes', (t) => {
  const { PARAM_INPUTS, perChannelAxis, perChannelAllowed, excludedFromSupergroups } = aimetRules
  t.deepEqual(PARAM_INPUTS.Conv, { 1: 'weight', 2: 'bias' })
  t.deepEqual(PARAM_INPUTS.Gemm, { 1: 'weight', 2: 'bias' })
  t.deepEqual(PARAM_INPUTS.MatMul, { 1: 'weight' })
  t.deepEqual(PARAM_INPUTS.BatchNormalization, { 1: 'weight', 2: 'bias', 3: 'running_mean', 4: 'running_var' })
  t.deepEqual(PARAM_INPUTS.RMSNormalization, { 1: 'weight' })
  t.is(PARAM_INPUTS.PRelu, undefined)
  t.is(perChannelAxis('Conv'), 0)
  t.is(perChannelAxis('ConvTranspose'), 1)
  t.is(perChannelAxis('Gemm'), 1)
  t.is(perChannelAxis('Gemm', { transB: true }), 0)
  t.is(perChannelAxis('MatMul'), -1)
  t.is(perChannelAxis('MatMul', { weightThroughTranspose: true }), -2)
  t.is(perChannelAxis('PRelu'), undefined)
  t.true(perChannelAllowed('ConvTranspose', { group: 1 }))
  t.false(perChannelAllowed('ConvTranspose', { group: 2 }))
  t.true(perChannelAllowed('Conv', { group: 32 }))
  t.false(perChannelAllowed('LayerNormalization'))
  t.true(excludedFromSupergroups({ opType: 'Conv', group: 8, weightShape: [8, 1, 3, 3] })) // depthwise
  t.false(excludedFromSupergroups({ opType: 'Conv', group: 2, weightShape: [8, 4, 3, 3] }))
  t.true(excludedFromSupergroups({ opType: 'Conv', weightShape: [8, 4, 3, 3, 3] })) // 3-D
  t.true(excludedFromSupergroups({ opType: 'ConvTranspose', group: 4, weightShape: [4, 1, 3, 3] }))
  t.false(excludedFromSupergroups({ opType: 'Gemm' }))
  t.true(aimetRules.GRID_PRESERVING_OP_TYPES.has('MaxPool'))
  t.false(aimetRules.GRID_PRESERVING_OP_TYPES.has('Resize'))
  t.true(aimetRules.NO_OUTPUT_QUANTIZER_OP_TYPES.has('Transpose'))
  t.false(aimetRules.NO_OUTPUT_QUANTIZER_OP_TYPES.has('MaxPool'))
})

test('aimetRules: hardware exception rules for norm params and dynamic MatMul', (t) => {
  const { normParamRule, dynamicMatMulRule } = aimetRules
  const qz = (bitwidth, symmetric = true, dtype = 'int', enabled = true) => ({ enabled, dtype, bitwidth, symmetric })
  // LayerNorm/BatchNorm: ≥ 8 bit, 8 bit before V73, symmetric iff ≥ 16 bit
  t.deepEqual(normParamRule('LayerNormalization', undefined, qz(4)), { bitwidth: 8, symmetric: false })
  t.deepEqual(normParamRule('LayerNormalization', 'V73', qz(16, false)), { bitwidth: 16, symmetric: true })
  t.deepEqual(normParamRule('BatchNormalization', 'V69', qz(16)), { bitwidth: 8, symmetric: false })
  // GroupNorm/InstanceNorm/RMSNorm follow the output quantizer
  t.deepEqual(normParamRule('GroupNormalization', 'V73', qz(8), qz(16, true)), { bitwidth: 16, symmetric: true })
  t.deepEqual(normParamRule('RMSNormalization', 'V73', qz(4), qz(16, true, 'int', false)), { bitwidth: 8, symmetric: false })
  t.is(normParamRule('InstanceNormalization', 'V73', qz(8, true, 'float')), undefined)
  t.is(normParamRule('LayerNormalization', 'V73', qz(8, true, 'int', false)), undefined)
  t.is(normParamRule('Conv', 'V73', qz(8)), undefined)
  // MatMul of two activations
  t.is(dynamicMatMulRule(undefined, qz(16, false), qz(16, false)), undefined)
  t.deepEqual(dynamicMatMulRule('V68', qz(16, false), qz(16, false)), { input0: { bitwidth: 16 }, input1: { bitwidth: 8, symmetric: true } })
  t.deepEqual(dynamicMatMulRule('V73', qz(8, false), qz(16, false)), { input0: { bitwidth: 16 }, input1: { bitwidth: 16, symmetric: true } })
  t.deepEqual(dynamicMatMulRule('V79', qz(16, false), qz(8, false)), { input0: { bitwidth: 16 }, input1: { bitwidth: 8, symmetric: false } })
  t.is(dynamicMatMulRule('V73', qz(16, false, 'float'), qz(16)), undefined)
})

// ---------------------------------------------------------------------------------------------
// Quantizer settings in both forms

test('resolveQuantizerDefaults takes AIMET types or bitwidths and names the bad option', (t) => {
  t.deepEqual(resolveQuantizerDefaults(), { param: { dtype: 'int', bitwidth: 8, type: 'int8' }, activation: { dtype: 'int', bitwidth: 8, type: 'int8' } })
  t.deepEqual(resolveQuantizerDefaults({ paramType: 'int4', activationType: 'int16' }),
    { param: { dtype: 'int', bitwidth: 4, type: 'int4' }, activation: { dtype: 'int', bitwidth: 16, type: 'int16' } })
  t.deepEqual(resolveQuantizerDefaults({ paramBitwidth: 4, activationBitwidth: 16 }),
    { param: { dtype: 'int', bitwidth: 4, type: 'int4' }, activation: { dtype: 'int', bitwidth: 16, type: 'int16' } })
  t.deepEqual(resolveQuantizerDefaults({ activationType: 'float16' }).activation, { dtype: 'float', bitwidth: 16, type: 'float16' })
  t.deepEqual(resolveQuantizerDefaults({ paramBitwidth: 6 }).param, { dtype: 'int', bitwidth: 6, type: 'int6' })
  t.deepEqual(resolveQuantizerDefaults({ paramType: 'int8', paramBitwidth: 8 }).param, { dtype: 'int', bitwidth: 8, type: 'int8' })
  t.throws(() => resolveQuantizerDefaults({ paramType: 'int9' }), { instanceOf: RangeError, message: /^paramType: unknown type "int9"/ })
  t.throws(() => resolveQuantizerDefaults({ activationType: 'fp16' }), { instanceOf: RangeError, message: /^activationType: .*nearest is "float16"/ })
  t.throws(() => resolveQuantizerDefaults({ activationBitwidth: 1 }), { instanceOf: RangeError, message: /^activationBitwidth: expected an integer from 2 to 32/ })
  t.throws(() => resolveQuantizerDefaults({ paramBitwidth: 8.5 }), { instanceOf: TypeError, message: /^paramBitwidth/ })
  t.throws(() => resolveQuantizerDefaults({ paramBitwidth: '8' }), { instanceOf: TypeError, message: /^paramBitwidth/ })
  t.throws(() => resolveQuantizerDefaults({ paramType: 8 }), { instanceOf: TypeError, message: /^paramType/ })
  t.throws(() => resolveQuantizerDefaults({ paramType: 'int8', paramBitwidth: 4 }), { instanceOf: RangeError, message: /paramType "int8" and paramBitwidth 4 disagree/ })
  t.throws(() => resolveQuantizerDefaults({ activationType: 'float16', activationBitwidth: 16 }), { instanceOf: RangeError, message: /disagree/ })
})

test('editDistance counts a transposition as one edit and ignores case', (t) => {
  t.is(editDistance('per_chanel_quantization', 'per_channel_quantization'), 1)
  t.is(editDistance('htp_v37', 'htp_v73'), 1)
  t.is(editDistance('ReLU', 'Relu'), 0)
  t.is(editDistance('', 'abc'), 3)
  t.is(editDistance('kitten', 'sitting'), 3)
})

test('validateQuantsimConfig returns the config with booleans and names the source', (t) => {
  const { config, warnings } = validateQuantsimConfig(presetConfig('htp_v68'), 'mine.json')
  t.deepEqual(warnings, [])
  t.is(config.defaults.params.is_symmetric, true)
  t.is(config.op_type.Cast.is_output_quantized, false)
  const bad = presetConfig('htp_v68')
  bad.op_type.Conv.per_channel = 'True'
  const err = t.throws(() => validateQuantsimConfig(bad, 'mine.json'), { instanceOf: ConfigError })
  t.is(err.source, 'mine.json')
  t.regex(err.message, /^mine\.json: op_type\.Conv\.per_channel: unknown key "per_channel"; the nearest valid key is "per_channel_quantization"/)
})
