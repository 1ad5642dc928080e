// `quantkit run job.json [--json] [--quiet]`: a job file (docs/job-file.md) → the same job
// `quantkit quantize` runs. Exit codes: 0 done, 1 failed, 2 a bad command line or job file.
import { parseArgs } from 'node:util'
import { readJobFile } from './jobFile.js'
import { runJob } from './quantize.js'
import { UsageError } from './usageError.js'

export const RUN_USAGE = `usage: quantkit run <job.json> [--json] [--quiet]
  <job.json>   a job file: model, calibration data, quantization settings, analysis, outputs
               (docs/job-file.md; schema: schemas/job.schema.json); relative paths resolve
               against the job file's folder
  --json       print the results as JSON on stdout (logs stay on stderr)
  --quiet      no progress output`

export async function runCommand(argv: string[], signal?: AbortSignal): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: { json: { type: 'boolean' }, quiet: { type: 'boolean' } }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${RUN_USAGE}`)
  }
  const { values: v, positionals } = parsed
  if (positionals.length !== 1) throw new UsageError(`expected one job file\n${RUN_USAGE}`)
  const { job, warnings } = await readJobFile(positionals[0]!)
  for (const w of warnings) process.stderr.write(`quantkit: warning: ${w}\n`)
  return runJob(job, { signal, quiet: v.quiet, json: v.json })
}
