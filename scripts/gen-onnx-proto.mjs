#!/usr/bin/env node
// Regenerates generated/onnx.js and generated/onnx.d.ts from proto/onnx.proto (ONNX 1.19.0's
// onnx-ml.proto, see the header of that file). This is the only way those two files are made:
// run `npm run gen:onnx-proto` after changing the .proto or upgrading protobufjs-cli, and commit
// the result.
//
// Choices, and why:
// - static-module + commonjs wrapper: no runtime .proto parsing, plain require('protobufjs/minimal'),
//   and the output sits outside src/ so tsc only reads its .d.ts and never re-emits it (src/onnx/*
//   imports it as '../../generated/onnx.js', which resolves the same from src/onnx and dist/onnx).
// - --force-long: every int64/uint64 field (dims, int64_data, uint64_data, ir_version, opset
//   versions, AttributeProto.i/ints, external-data offsets) decodes as a Long, never as a JS number,
//   so values beyond 2^53 stay exact. src/onnx/ converts Longs to BigInt (tensor data) or to
//   number after checking it is safe (dims, versions). protobufjs has no BigInt mode.
// - default camelCase field names (raw_data → rawData), as TypeScript code expects.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const cliDir = dirname(require.resolve('protobufjs-cli/package.json'))
const cliVersion = JSON.parse(readFileSync(join(cliDir, 'package.json'), 'utf8')).version
const protoPath = join(root, 'proto', 'onnx.proto')
const outDir = join(root, 'generated')
const jsPath = join(outDir, 'onnx.js')
const dtsPath = join(outDir, 'onnx.d.ts')

function run(bin, args) {
  const r = spawnSync(process.execPath, [join(cliDir, 'bin', bin), ...args], { cwd: root, stdio: 'inherit' })
  if (r.status !== 0) {
    console.error(`gen-onnx-proto: ${bin} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`)
    process.exit(1)
  }
}

mkdirSync(outDir, { recursive: true })
const rel = (p) => relative(root, p).split('\\').join('/')
run('pbjs', ['-t', 'static-module', '-w', 'commonjs', '--force-long', '-o', rel(jsPath), rel(protoPath)])
run('pbts', ['-o', rel(dtsPath), rel(jsPath)])

const header = [
  '// GENERATED FILE: do not edit. Regenerate with `npm run gen:onnx-proto` (scripts/gen-onnx-proto.mjs)',
  `// from proto/onnx.proto (ONNX 1.19.0 onnx-ml.proto) with protobufjs-cli ${cliVersion}:`,
  '// pbjs -t static-module -w commonjs --force-long; int64 fields are Long (see the script for why).',
  '',
].join('\n')
for (const p of [jsPath, dtsPath]) {
  writeFileSync(p, header + readFileSync(p, 'utf8').replace(/\r\n/g, '\n'))
}
console.log(`gen-onnx-proto: wrote ${rel(jsPath)} and ${rel(dtsPath)} (protobufjs-cli ${cliVersion})`)
