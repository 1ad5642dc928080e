// `npm test`: the Rust core's tests (cargo test -p quantkit-core; test binaries that link the
// napi crate cannot link on Linux) and the package's ava tests, then one summary line that CI
// reads: `N passed, N failed`.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

function run(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d) })
    child.stderr.on('data', (d) => { out += d; process.stderr.write(d) })
    child.on('error', (err) => resolve({ code: 127, out: String(err) }))
    child.on('close', (code) => resolve({ code: code ?? 1, out }))
  })
}

let passed = 0
let failed = 0

// Rust: one "test result:" line per test binary (unit tests, integration tests, doc tests).
const cargo = await run('cargo', ['test', '--release', '-p', 'quantkit-core'])
for (const m of cargo.out.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
  passed += Number(m[1])
  failed += Number(m[2])
}
if (cargo.code !== 0 && !/test result: FAILED/.test(cargo.out)) failed += 1 // did not build or crashed

// JavaScript: ava's TAP summary. ORT gets explicit small thread counts through the tests' helper.
const ava = await run(process.execPath, [join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), '--tap'],
  { QUANTKIT_TEST: '1' })
const pass = ava.out.match(/^# pass (\d+)/m)
const fail = ava.out.match(/^# fail (\d+)/m)
passed += pass ? Number(pass[1]) : 0
failed += fail ? Number(fail[1]) : 0
if (ava.code !== 0 && !fail) failed += 1

console.log(`${passed} passed, ${failed} failed`)
process.exit(failed > 0 || cargo.code !== 0 || ava.code !== 0 ? 1 : 0)
