// `npm run bench`: runs each benchmark in its own process (single-threaded, then with both cores)
// and writes bench/results/<name>.json. Figures are ratios measured in one run.
import { spawnSync } from 'node:child_process'
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import os from 'node:os'

const here = dirname(fileURLToPath(import.meta.url))
const configs = [
  { name: '1 thread', env: { RAYON_NUM_THREADS: '1', ORT_THREADS: '1' } },
  { name: `${os.availableParallelism()} threads`, env: { RAYON_NUM_THREADS: String(os.availableParallelism()), ORT_THREADS: String(os.availableParallelism()) } },
]
const results = []
for (const c of configs) {
  const child = spawnSync(process.execPath, ['--expose-gc', join(here, 'affine.bench.mjs')], { env: { ...process.env, ...c.env }, encoding: 'utf8', maxBuffer: 1 << 24 })
  if (child.status !== 0) {
    process.stderr.write(child.stderr)
    process.exit(1)
  }
  const result = { config: c.name, ...JSON.parse(child.stdout.trim().split('\n').pop()) }
  results.push(result)
  const f = (v) => v.toFixed(2)
  const r = result.ratios
  console.log(`affine, ${c.name}: copy ${f(result.copyGBps)} GB/s; qdq into an array ×${f(r.qdqIntoVsCopy)} of copy, in place ×${f(r.qdqInPlaceVsCopy)}, ` +
    `per-channel ×${f(r.qdqPerChannelVsCopy)}, per-block int4 ×${f(r.qdqPerBlockInt4VsCopy)}; allocating qdq ×${f(r.qdqVsAllocCopy)} of an allocating copy; ` +
    `histogram update ×${f(r.histogramVsCopy)} of copy; ORT Q→DQ ${f(result.ortQdqGBps)} GB/s, quantkit's allocating qdq ×${f(r.qdqSpeedupVsOrt)} faster`)
}
mkdirSync(join(here, 'results'), { recursive: true })
const out = join(here, 'results', 'affine.json')
const doc = { date: new Date().toISOString(), cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version, results }
writeFileSync(out + '.tmp', JSON.stringify(doc, null, 2) + '\n')
renameSync(out + '.tmp', out)
console.log(`wrote ${out}`)

// QuantSim: calibration time, peak RSS, QDQ latency (writes bench/results/quantsim.json itself).
const quantsim = spawnSync(process.execPath, [join(here, 'quantsim.bench.mjs')], { stdio: 'inherit' })
if (quantsim.status !== 0) process.exit(1)

// SVD against numpy's LAPACK SVD, 1 thread and all cores (writes bench/results/svd.json itself).
const svd = spawnSync(process.execPath, [join(here, 'svd.bench.mjs')], { stdio: 'inherit' })
if (svd.status !== 0) process.exit(1)
