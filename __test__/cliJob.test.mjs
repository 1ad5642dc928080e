// `quantkit run job.json`: the MNIST example end to end, per-tensor overrides, validation errors
// (JSON path + nearest key, walked over the whole format table), xquant's precision levels, the
// shipped JSON schema kept in sync with the table, and exit codes.
import test from 'ava'
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { jobFromJson, jobFileSchema, JOB_FILE_FORMAT, JobFileError } = require('../dist/cli/jobFile.js')
const { IMAGE_PREPROCESS_KEYS } = require('../dist/data/imagePreprocess.js')
const { UsageError } = require('../dist/cli/usageError.js')

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const cli = join(root, 'dist', 'cli', 'main.js')
const example = join(root, 'examples', 'mnist')
const schemaPath = join(root, 'schemas', 'job.schema.json')
const exampleJob = () => JSON.parse(readFileSync(join(example, 'job.json'), 'utf8'))

function run(args, cwd = root) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cli, ...args], { cwd, env: { ...process.env, OMP_NUM_THREADS: '1' } })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => { stdout += d })
    p.stderr.on('data', (d) => { stderr += d })
    p.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

/** A temp folder holding a copy of the MNIST example and `job` as job.json (paths relative to it). */
function jobDir(t, job) {
  const dir = mkdtempSync(join(tmpdir(), 'qk-job-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const f of ['mnist-cnn.onnx', 'calibration.npy', 'test-images.npy', 'test-labels.npy']) copyFileSync(join(example, f), join(dir, f))
  writeFileSync(join(dir, 'job.json'), JSON.stringify(job, null, 2))
  return dir
}

test('the MNIST job file round trip: outputs written beside the job file, accuracy within 0.5 points of FP32', async (t) => {
  const job = exampleJob()
  job.output.dir = 'out'
  delete job.$schema
  const dir = jobDir(t, job)
  // Run from elsewhere: every path must resolve against the job file's folder, not the cwd.
  const r = await run(['run', join(dir, 'job.json'), '--json', '--quiet'], tmpdir())
  t.is(r.status, 0, r.stderr)
  const result = JSON.parse(r.stdout)
  for (const f of ['mnist-cnn.onnx', 'mnist-cnn.encodings', 'mnist-cnn.qdq.onnx', 'report.html', 'report.json']) {
    t.true(existsSync(join(dir, 'out', f)), f)
    t.true(result.files.includes(join(dir, 'out', f)), f)
  }
  t.is(result.config, 'preset:default')
  t.deepEqual(result.quantizers, { activations: 7, params: 5, disabled: 10, tied: 1 })
  t.is(result.evaluation.samples, 1000)
  const { reference, other } = result.evaluation.accuracy
  t.true(reference > 0.95)
  t.true(Math.abs(other - reference) <= 0.005, `FP32 ${reference}, quantized ${other}`)
  const report = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8'))
  t.true(report.sensitivity.length > 0, 'analysis is on in the example')
})

test('overrides: a regex disables every Conv output quantizer; an exact name that matches nothing is reported', async (t) => {
  const job = {
    model: 'mnist-cnn.onnx',
    calibration: { path: 'calibration.npy', batch_size: 64, count: 64 },
    quantization: {
      overrides: [
        { tensor: '/Conv_output_0$/', disable: true },
        { tensor: 'no/such/tensor', bitwidth: 4 },
      ],
    },
    analysis: false,
    output: { formats: ['encodings'] },
  }
  const dir = jobDir(t, job)
  // Not --quiet: the note about an override that matches nothing is a log line on stderr.
  const r = await run(['run', join(dir, 'job.json'), '--json'])
  t.is(r.status, 0, r.stderr)
  const result = JSON.parse(r.stdout)
  // Placement (`inspect --quantizers`): conv1/conv2 outputs are already off inside Conv+Relu, conv3's is on; the override turns it off.
  t.deepEqual(result.quantizers, { activations: 6, params: 5, disabled: 11, tied: 1 })
  t.deepEqual(result.files.map((f) => f.slice(join(dir, 'out').length + 1)), ['mnist-cnn.encodings', 'mnist-cnn.onnx', 'report.json', 'report.html'])
  const enc = JSON.parse(readFileSync(join(dir, 'out', 'mnist-cnn.encodings'), 'utf8'))
  const names = JSON.stringify(enc.activation_encodings)
  t.false(names.includes('/conv3/Conv_output_0'))
  t.true(names.includes('/Relu_1_output_0'))
  t.regex(r.stderr, /override "no\/such\/tensor" matches no quantized tensor/)
})

// ---- Validation -------------------------------------------------------------------------------

const minimalJob = () => ({ model: 'm.onnx', calibration: 'c.npy' })

function parseError(t, json) {
  const err = t.throws(() => jobFromJson(json, '/jobs', 'job.json'))
  t.true(err instanceof JobFileError, err.message)
  t.true(err instanceof UsageError)
  return err
}

/** A plausible value for a spec: the smallest the table allows. */
function minimal(spec) {
  switch (spec.type) {
    case 'string': return spec.enum ? spec.enum[0] : 'x'
    case 'integer': return spec.enum ? spec.enum[0] : spec.minimum ?? 1
    case 'number': return spec.minimum ?? (spec.exclusiveMinimum ?? 0) + 1
    case 'boolean': return spec.const ?? true
    case 'array': return Array.from({ length: spec.minItems ?? 1 }, () => minimal(spec.items))
    case 'anyOf': return minimal(spec.options[0])
    case 'object': return Object.fromEntries((spec.required ?? []).map((k) => [k, minimal(spec.properties[k])]))
  }
}

/** Every object the format has, each with a document that reaches it: [path, spec, build(value) → document]. */
function objects(spec, path, build, out = []) {
  if (spec.type === 'anyOf') for (const o of spec.options) objects(o, path, build, out)
  else if (spec.type === 'array') objects(spec.items, [...path, 0], (v) => build([v]), out)
  else if (spec.type === 'object') {
    out.push([path, spec, build])
    const base = minimal(spec)
    for (const [k, s] of Object.entries(spec.properties)) objects(s, [...path, k], (v) => build({ ...base, [k]: v }), out)
  }
  return out
}

const formatPath = (parts) => parts.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')

test('every object in the format: a misspelt key is an error naming its JSON path and the nearest valid key', (t) => {
  const cases = objects(JOB_FILE_FORMAT, [], (v) => v)
  t.true(cases.length >= 8, `${cases.length} objects`)
  for (const [path, spec, build] of cases) {
    for (const key of Object.keys(spec.properties).filter((k) => k.length >= 4 && k !== '$schema')) {
      // Drop one inner letter: `overrides` → `overides`.
      const typo = key.slice(0, 2) + key.slice(3)
      const doc = build({ ...minimal(spec), [typo]: minimal(spec.properties[key]) })
      if (path.length === 0) Object.assign(doc, { model: 'm.onnx', calibration: 'c.npy' })
      const err = parseError(t, path.length === 0 ? doc : { ...minimalJob(), ...doc })
      const where = formatPath([...path, typo])
      t.is(err.path, where, err.message)
      t.is(err.suggestion, key, err.message)
      t.true(err.message.startsWith(`job.json: ${where}: unknown key "${typo}"; the nearest valid key is "${key}"`), err.message)
    }
  }
})

test('bad values name the JSON path and what is allowed', (t) => {
  const cases = [
    [{ quantization: { scheme: 'minmax' } }, 'quantization.scheme', /nearest is "min_max" \(allowed: min_max, tf_enhanced, percentile, mse, entropy\)/],
    [{ quantization: { param_bitwidth: 40 } }, 'quantization.param_bitwidth', /expected an integer from 2 to 32, got 40/],
    [{ quantization: { activation_bitwidth: 8.5 } }, 'quantization.activation_bitwidth', /expected an integer from 2 to 32, got number 8.5/],
    [{ quantization: { param_type: 'fp16' } }, 'quantization.param_type', /allowed: int2, int4, int8, int16, float16/],
    [{ quantization: { param_type: 'int4', param_bitwidth: 8 } }, 'quantization.param_type', /param_type "int4" and param_bitwidth 8 disagree/],
    [{ quantization: { percentile: 20 } }, 'quantization.percentile', /from 50 to 100/],
    [{ quantization: { config: 'htp_v37' } }, 'quantization.config', /nearest preset is "htp_v73"/],
    [{ quantization: { config: 'default', preset: 'htp_v73' } }, 'quantization.preset', /name the same setting/],
    [{ quantization: { prepare: 'yes' } }, 'quantization.prepare', /expected true or false, got "yes"/],
    [{ quantization: { overrides: [{ tensor: '/conv(/' }] } }, 'quantization.overrides[0].tensor', /not a valid regular expression/],
    [{ quantization: { overrides: [{ tensor: 'x' }] } }, 'quantization.overrides[0]', /changes nothing/],
    [{ quantization: { overrides: [{ tensor: 'x', disable: false }] } }, 'quantization.overrides[0].disable', /only true is allowed/],
    [{ quantization: { overrides: [{ bitwidth: 4 }] } }, 'quantization.overrides[0]', /missing required key "tensor"/],
    [{ quantization: { overrides: [{ tensor: 'x', bitwidth: 1 }] } }, 'quantization.overrides[0].bitwidth', /from 2 to 32/],
    [{ calibration: 5 }, 'calibration', /expected a string, or an object with keys path, kind, batch_size, count, preprocess, got number 5/],
    [{ calibration: { path: 'c', kind: 'image' } }, 'calibration.kind', /nearest is "images"/],
    [{ calibration: { path: 'c', batch_size: 0 } }, 'calibration.batch_size', /≥ 1, got 0/],
    [{ calibration: { path: 'c', preprocess: { resize: [1, 2, 3] } } }, 'calibration.preprocess.resize', /exactly 2 items \(\[height, width\]\), got 3/],
    [{ calibration: { path: 'c', preprocess: { channel_order: 'BGR' } } }, 'calibration.preprocess.channel_order', /allowed: rgb, bgr/],
    [{ calibration: { path: 'c', preprocess: { scale: 0 } } }, 'calibration.preprocess.scale', /> 0, got 0/],
    [{ evaluation: { kind: 'npy' } }, 'evaluation', /missing required key "path"/],
    [{ output: { formats: ['onnx'] } }, 'output.formats[0]', /nearest is "qdq"|allowed: encodings, qdq/],
    [{ output: { formats: ['qdq', 'qdq'] } }, 'output.formats[1]', /duplicate/],
    [{ output: { formats: [] } }, 'output.formats', /at least 1 item/],
    [{ working_dir: 'a', output: { dir: 'b' } }, 'output.dir', /give one/],
    [{ labels: 'l.npy' }, 'labels', /need evaluation data/],
    [{ analysis: { layers: 0 } }, 'analysis.layers', /≥ 1/],
    [{ analysis: 'yes' }, 'analysis', /expected true or false, or an object with keys enabled, layers/],
    [{ model: '' }, 'model', /non-empty/],
  ]
  for (const [patch, path, message] of cases) {
    const err = parseError(t, { ...minimalJob(), ...patch })
    t.is(err.path, path, err.message)
    t.true(err.message.startsWith(`job.json: ${path}: `), err.message)
    t.regex(err.message, message)
  }
  t.regex(parseError(t, { calibration: 'c.npy' }).message, /^job\.json: the job file: missing required key "model"/)
  t.regex(parseError(t, []).message, /expected an object with keys \$schema, model/)
})

test("xquant's precision_level: 0 is full int8 (the default), 3 dynamic, 4 float16; 1 and 2 are refused, naming every level", (t) => {
  t.notThrows(() => jobFromJson({ ...minimalJob(), quantization: { precision_level: 0 } }, '/jobs'))
  t.is(jobFromJson({ ...minimalJob(), quantization: { precision_level: 3 } }, '/jobs').job.mode, 'dynamic')
  t.is(jobFromJson({ ...minimalJob(), quantization: { precision_level: 4 } }, '/jobs').job.mode, 'fp16')
  t.is(jobFromJson({ ...minimalJob(), quantization: { mode: 'weight-only', param_bitwidth: 4 } }, '/jobs').job.mode, 'weight-only')
  t.regex(parseError(t, { ...minimalJob(), quantization: { precision_level: 3, mode: 'fp16' } }).message, /precision_level 3 means mode "dynamic" but quantization\.mode is "fp16"/)
  for (const [level, what] of [[1, /some sensitive ops/], [2, /most ops/]]) {
    const err = parseError(t, { ...minimalJob(), quantization: { precision_level: level } })
    t.is(err.path, 'quantization.precision_level')
    t.regex(err.message, new RegExp(`: ${level} means`))
    t.regex(err.message, what)
    t.regex(err.message, /not supported yet; supported: 0 \(full int8 with calibration.*3 \(dynamic.*4 \(float16/)
    t.regex(err.message, /0 = full int8.*3 = dynamic quantization.*4 = float16 conversion/)
  }
  t.regex(parseError(t, { ...minimalJob(), quantization: { precision_level: 7 } }).message, /expected one of 0 \(full int8.*3 \(dynamic.*got 7/)
})

test('conversion: snake_case to the DataSourceSpec, paths against the job folder, defaults', (t) => {
  const { job, warnings } = jobFromJson({
    model: 'models/m.onnx',
    calibration: { path: 'imgs', kind: 'images', batch_size: 8, count: 100, preprocess: { resize: 256, center_crop: [224, 224], channel_order: 'bgr', mean: [0.485, 0.456, 0.406], std: 0.25, scale: 1, layout: 'nhwc', dtype: 'float32', interpolation: 'bicubic' } },
    evaluation: '/data/eval.npz',
    labels: 'labels.txt',
    working_dir: 'work',
    quantization: { preset: 'htp_v73', param_type: 'int4', activation_bitwidth: 16, percentile: 99.9, overrides: [{ tensor: '/Conv/i', enabled: false, symmetric: true }] },
    analysis: { layers: 3 },
  }, '/jobs')
  t.deepEqual(job, {
    model: '/jobs/models/m.onnx',
    calibration: { path: '/jobs/imgs', baseDir: '/jobs', kind: 'images', batchSize: 8, count: 100, preprocess: { resize: 256, centerCrop: [224, 224], channelOrder: 'bgr', mean: [0.485, 0.456, 0.406], std: 0.25, scale: 1, layout: 'nhwc', dtype: 'float32', interpolation: 'bicubic' } },
    evaluation: '/data/eval.npz',
    labels: '/jobs/labels.txt',
    sim: { config: 'htp_v73', paramType: 'int4', activationBitwidth: 16, percentile: 99.9 },
    overrides: [{ match: '/Conv/i', enabled: false, symmetric: true }],
    analysis: { enabled: true, layers: 3 },
    output: { dir: '/jobs/work', prefix: 'm', formats: ['encodings', 'qdq'] },
  })
  t.deepEqual(warnings, ['job.json: quantization.percentile: ignored, it applies to scheme "percentile" only (scheme is "min_max")'])
  const camel = (k) => k.replace(/_([a-z])/g, (_m, c) => c.toUpperCase())
  t.deepEqual(Object.keys(JOB_FILE_FORMAT.properties.calibration.options[1].properties.preprocess.properties).map(camel), [...IMAGE_PREPROCESS_KEYS])
  const d = jobFromJson(minimalJob(), '/jobs').job
  t.deepEqual([d.analysis, d.output, d.sim, d.overrides], [{ enabled: true }, { dir: '/jobs/out', prefix: 'm', formats: ['encodings', 'qdq'] }, {}, []])
})

test('schemas/job.schema.json is the format table as JSON Schema, and accepts the example', (t) => {
  const shipped = JSON.parse(readFileSync(schemaPath, 'utf8'))
  // Regenerate: node -e "…writeFileSync('schemas/job.schema.json', JSON.stringify(require('./dist/cli/jobFile.js').jobFileSchema(), null, 2) + '\n')"
  t.deepEqual(shipped, jobFileSchema())
  t.is(shipped.$schema, 'https://json-schema.org/draft/2020-12/schema')
  t.deepEqual(Object.keys(shipped.properties), Object.keys(JOB_FILE_FORMAT.properties))
  t.notThrows(() => jobFromJson(exampleJob(), example))
})

const python = process.env.AIMET_VENV ? join(process.env.AIMET_VENV, 'bin', 'python') : '/tmp/aimet-venv/bin/python'
const venvTest = existsSync(python) ? test : test.skip
venvTest('(venv) the schema is valid draft 2020-12 and agrees with the validator on the example and on bad files', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qk-jobschema-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bad = { a: { ...minimalJob(), quantization: { overides: [] } }, b: { ...minimalJob(), quantization: { precision_level: 2 } }, c: { ...minimalJob(), calibration: { path: 'x', preprocess: { resize: [1] } } } }
  const files = [join(example, 'job.json')]
  for (const [k, v] of Object.entries(bad)) {
    files.push(join(dir, `${k}.json`))
    writeFileSync(files.at(-1), JSON.stringify(v))
    t.throws(() => jobFromJson(v, dir))
  }
  const script = [
    'import json, sys',
    'from jsonschema import Draft202012Validator',
    'schema = json.load(open(sys.argv[1])); Draft202012Validator.check_schema(schema); v = Draft202012Validator(schema)',
    'print(json.dumps([len(list(v.iter_errors(json.load(open(f))))) for f in sys.argv[2:]]))',
  ].join('\n')
  const { spawnSync } = require('node:child_process')
  const r = spawnSync(python, ['-c', script, schemaPath, ...files], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  const errors = JSON.parse(r.stdout)
  t.is(errors[0], 0, 'the example validates')
  for (const n of errors.slice(1)) t.true(n > 0)
})

// ---- Exit codes -------------------------------------------------------------------------------

test('exit codes: 2 for a bad job file (path and nearest key on stderr), bad JSON, a missing job file or no argument; 1 for a missing model', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qk-jobexit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const write = (name, body) => { writeFileSync(join(dir, name), body); return join(dir, name) }

  const typo = await run(['run', write('typo.json', JSON.stringify({ ...minimalJob(), quantization: { overides: [] } }))])
  t.is(typo.status, 2)
  t.regex(typo.stderr, /typo\.json: quantization\.overides: unknown key "overides"; the nearest valid key is "overrides"/)
  t.is(typo.stdout, '')

  const level = await run(['run', write('level.json', JSON.stringify({ ...minimalJob(), quantization: { precision_level: 1 } })), '--json'])
  t.is(level.status, 2)
  t.regex(level.stderr, /quantization\.precision_level: 1 means int8 with some sensitive ops/)

  const json = await run(['run', write('broken.json', '{\n  "model": "m.onnx",\n  "calibration": "c.npy",,\n}')])
  t.is(json.status, 2)
  t.regex(json.stderr, /broken\.json: not valid JSON \(line 3, column \d+\)/)

  t.is((await run(['run', join(dir, 'nonexistent.json')])).status, 2)
  t.is((await run(['run'])).status, 2)
  t.is((await run(['run', 'a.json', '--bogus'])).status, 2)

  const missing = await run(['run', write('missing.json', JSON.stringify({ model: 'missing.onnx', calibration: join(example, 'calibration.npy') }))])
  t.is(missing.status, 1)
  t.true(missing.stderr.includes(join(dir, 'missing.onnx')), missing.stderr)
})
