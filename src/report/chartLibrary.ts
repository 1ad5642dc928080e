// The charting library the HTML report inlines: Chart.js (MIT licence, © Chart.js Contributors,
// https://www.chartjs.org), read from its UMD bundle in node_modules at render time so the
// report needs no network. The package's `exports` map does not list the UMD file, so it is
// found beside the resolved CommonJS entry.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { QuantkitError } from '../errors.js'

export interface ChartLibrary {
  version: string
  /** The bundle's source, ready to sit inside a <script> element. */
  source: string
}

let cached: ChartLibrary | undefined

export function chartLibrary(): ChartLibrary {
  if (cached) return cached
  let file: string
  try {
    file = join(dirname(require.resolve('chart.js')), 'chart.umd.min.js')
  } catch (err) {
    throw new QuantkitError('The HTML report needs the chart.js package (a dependency of quantkit); it could not be resolved from quantkit\'s folder', { cause: err })
  }
  const raw = readFileSync(file, 'utf8')
  const version = /Chart\.js v(\d+\.\d+\.\d+)/.exec(raw)?.[1] ?? 'unknown'
  // The source map is not shipped inside the report; a map reference would be a request.
  const source = raw.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n')
  if (/<\/script|<!--/i.test(source)) throw new QuantkitError(`${file} contains "</script" or "<!--" and cannot be inlined in a <script> element`)
  cached = {
    version,
    source: `/* Chart.js ${version}, MIT licence, (c) Chart.js Contributors, https://www.chartjs.org; inlined from node_modules/chart.js/dist/chart.umd.min.js */\n${source}`,
  }
  return cached
}
