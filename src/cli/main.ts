#!/usr/bin/env node
// quantkit command line. Exit codes: 0 success, 1 failure, 2 usage error.
import { demo } from './demo.js'
import { configCommand } from './configShow.js'
import { inspect } from './inspect.js'
import { QUANTIZE_USAGE, quantizeCommand } from './quantize.js'
import { RUN_USAGE, runCommand } from './run.js'
import { EVAL_USAGE, evalCommand } from './evalCommand.js'
import { ANALYZE_USAGE, analyzeCommand } from './analyzeCommand.js'
import { COMPRESS_USAGE, compressCommand } from './compressCommand.js'
import { UsageError } from './usageError.js'

const USAGE = `usage: quantkit <command>
  demo [model.onnx] [--json]   weight quantization statistics (int8/int4, per-tensor/per-channel)
  inspect <model.onnx> [--json] opsets, inputs/outputs, ops, parameters, external data, what preparation folds
  quantize <model.onnx> --calib <source> [options]   quantize, export QDQ + AIMET encodings (quantkit quantize --help)
  eval <fp32.onnx> <quantized.onnx> --data <source> [--labels <file>]   compare two models' outputs
  analyze <model.onnx> --calib <source> [--data <source>]   per-layer sensitivity, SQNR, weight ranges → report
  inspect <model.onnx> --quantizers [--config <preset|file>] [--json]   the quantizer table QuantSim places
  inspect <model.onnx> --kernels [--optimized-model <out.onnx>] [--json]   integer kernels ONNX Runtime's CPU EP runs (from its optimised graph)
  compress <model.onnx> --scheme <s> --target <ratio> --eval <module> --out <dir>   weight/spatial SVD or channel pruning with greedy per-layer ratios
  run <job.json> [--json] [--quiet]   the quantize job a job file describes (docs/job-file.md)
  config show <preset|file> [--json]  the rules a config preset or AIMET config file resolves to
  version                      print quantkit's version`

// Commands with their own usage text (printed for --help) that take the interrupt signal.
const COMMANDS: Record<string, { usage: string; run: (argv: string[], signal: AbortSignal) => Promise<number> }> = {
  eval: { usage: EVAL_USAGE, run: evalCommand },
  analyze: { usage: ANALYZE_USAGE, run: analyzeCommand },
  quantize: { usage: QUANTIZE_USAGE, run: quantizeCommand },
  compress: { usage: COMPRESS_USAGE, run: compressCommand },
  run: { usage: RUN_USAGE, run: runCommand },
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  const entry = command !== undefined && Object.hasOwn(COMMANDS, command) ? COMMANDS[command]! : undefined
  if (entry) {
    if (rest.includes('--help')) {
      console.log(entry.usage)
      return 0
    }
    return entry.run(rest, interrupt.signal)
  }
  switch (command) {
    case 'demo':
      return demo(rest)
    case 'inspect':
      return inspect(rest)
    case 'config':
      return configCommand(rest)
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

// Ctrl-C stops long steps between batches (outputs are written atomically, so nothing is left
// half-written); a second Ctrl-C exits at once.
const interrupt = new AbortController()
process.on('SIGINT', () => {
  if (interrupt.signal.aborted) process.exit(130)
  process.stderr.write('\nquantkit: stopping (Ctrl-C again to exit at once)\n')
  interrupt.abort()
})

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code },
  (err) => {
    if (err instanceof UsageError) {
      console.error(`quantkit: ${err.message}`)
      process.exitCode = 2
      return
    }
    const name = err instanceof Error && err.name !== 'Error' ? `${err.name}: ` : ''
    console.error(`quantkit: ${name}${err instanceof Error ? err.message : String(err)}`)
    process.exitCode = 1
  },
)
