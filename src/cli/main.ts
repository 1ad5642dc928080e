#!/usr/bin/env node
// quantkit command line. Exit codes: 0 success, 1 failure, 2 usage error.
import { demo } from './demo.js'
import { inspect } from './inspect.js'

const USAGE = `usage: quantkit <command>
  demo [model.onnx] [--json]   weight quantization statistics (int8/int4, per-tensor/per-channel)
  inspect <model.onnx> [--json] opsets, inputs/outputs, ops, parameters, external data, what preparation folds
  inspect <model.onnx> --quantizers [--config <preset|file>] [--json]   the quantizer table QuantSim places
  version                      print quantkit's version`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'demo':
      return demo(rest)
    case 'inspect':
      return inspect(rest)
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

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code },
  (err) => {
    console.error(`quantkit: ${err instanceof Error ? err.message : String(err)}`)
    process.exitCode = 1
  },
)
