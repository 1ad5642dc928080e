// Progress on long steps: a bar with rate and ETA when stderr is a TTY, plain lines otherwise
// (at most one every few seconds), nothing with --quiet. Always on stderr: stdout is for results.

export interface Progress {
  update(done: number, total?: number): void
  done(message?: string): void
}

export function progress(label: string, opts: { quiet?: boolean; unit?: string } = {}): Progress {
  const unit = opts.unit ?? 'samples'
  const tty = process.stderr.isTTY === true
  const start = Date.now()
  let lastLine = 0
  let last = ''
  const format = (done: number, total?: number) => {
    const secs = (Date.now() - start) / 1000
    const rate = secs > 0 ? done / secs : 0
    const eta = total !== undefined && rate > 0 ? ` ETA ${Math.max(0, (total - done) / rate).toFixed(0)} s` : ''
    if (tty && total !== undefined) {
      const width = 24
      const filled = Math.round((Math.min(done, total) / Math.max(total, 1)) * width)
      return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ${unit} ${rate.toFixed(1)}/s${eta}`
    }
    return `${label}: ${done}${total !== undefined ? `/${total}` : ''} ${unit} (${rate.toFixed(1)}/s${eta})`
  }
  return {
    update(done, total) {
      if (opts.quiet) return
      last = format(done, total)
      if (tty) process.stderr.write(`\r${last}\x1b[K`)
      else if (Date.now() - lastLine > 2000) {
        process.stderr.write(`${last}\n`)
        lastLine = Date.now()
      }
    },
    done(message) {
      if (opts.quiet) return
      if (tty && last) process.stderr.write('\r\x1b[K')
      process.stderr.write(`${label}: ${message ?? 'done'} in ${((Date.now() - start) / 1000).toFixed(1)} s\n`)
    },
  }
}
