// Builds quantkit in a source checkout: the native addon (when no binary for this platform is
// present, or with --force) and the TypeScript. Runs as the root package's `prepare` script,
// so `npm install` in a fresh clone leaves a working package.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const force = process.argv.includes('--force')

function run(cmd, args) {
  console.error(`[quantkit build] ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
  if (r.error) throw r.error
  if (r.status !== 0) process.exit(r.status ?? 1)
}

function newestMtime(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p))
    else newest = Math.max(newest, statSync(p).mtimeMs)
  }
  return newest
}

// A binary is up to date when it is newer than every Rust source file.
function nativeIsFresh() {
  const binaries = readdirSync(root).filter((f) => /^quantkit\..+\.node$/.test(f))
  if (binaries.length === 0) return false
  const built = Math.max(...binaries.map((f) => statSync(join(root, f)).mtimeMs))
  const sources = Math.max(newestMtime(join(root, 'crates')), statSync(join(root, 'Cargo.toml')).mtimeMs, statSync(join(root, 'Cargo.lock')).mtimeMs)
  return built >= sources
}

if (force || !nativeIsFresh()) {
  const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8', shell: process.platform === 'win32' })
  if (cargo.status !== 0) {
    console.error('[quantkit build] Building the native addon needs Rust (cargo). Install it from https://rustup.rs and run `npm run build`.')
    process.exit(1)
  }
  run(process.execPath, [join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js'), 'build', '--platform', '--release',
    '--manifest-path', 'crates/quantkit-node/Cargo.toml', '--output-dir', '.', '--js', 'index.js', '--dts', 'index.d.ts'])
} else {
  console.error('[quantkit build] native addon is up to date')
}
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'])
if (!existsSync(join(root, 'dist', 'index.js'))) {
  console.error('[quantkit build] tsc produced no dist/index.js')
  process.exit(1)
}
