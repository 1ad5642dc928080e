#!/usr/bin/env node
// quantkit command line.
import { native } from '../native.js'

function main(argv: string[]): number {
  const [command] = argv
  if (command === 'version' || command === '--version') {
    console.log(native.coreVersion())
    return 0
  }
  console.error(`quantkit: unknown command '${command ?? ''}'. Commands: version`)
  return 2
}

process.exitCode = main(process.argv.slice(2))
