#!/usr/bin/env node
// quantkit command line. Exit codes: 0 success, 1 failure, 2 usage error.
import { demo } from './demo.js'

const USAGE = `usage: quantkit <command>
  demo [model.onnx] [--json]   weight quantization statistics (int8/int4, per-tensor/per-channel)
  version                      print quantkit's version`

function main(argv: string[]): number {
  const [command, ...rest] = argv
  switch (command) {
    case 'demo':
      return demo(rest)
    case 'version':
    case '--version':
      console.log(require('../../package.json').version)
      return 0
    case undefined:
    case 'help':
    case '--help':
      console.log(USAGE)
      return command === undefined ? 2 : 0
    default:
      console.error(`quantkit: unknown command '${command}'\n${USAGE}`)
      return 2
  }
}

try {
  process.exitCode = main(process.argv.slice(2))
} catch (err) {
  console.error(`quantkit: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
}
