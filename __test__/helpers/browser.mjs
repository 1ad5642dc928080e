// Headless Chromium for the tests that look at rendered pages: Debian's chromium package (which
// .ci/run installs where missing) driven by playwright-core; never a browser download.
// Without Chromium the tests fail with a clear message, unless QUANTKIT_SKIP_BROWSER=1 says to
// skip them (then they log why and pass).
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export const CHROMIUM = process.env.QUANTKIT_CHROMIUM ?? '/usr/bin/chromium'

// The flags this machine needs (see the polyglot machine notes): no sandbox as root, no GPU, and
// none of Chromium's own background connections, which the closed network refuses.
export const CHROMIUM_ARGS = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
])

/**
 * Launches Chromium, or returns `{ skipped }` (a reason) when it is absent and
 * QUANTKIT_SKIP_BROWSER=1; throws when it is absent otherwise.
 */
export async function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    const why = `Chromium not found at ${CHROMIUM}`
    if (process.env.QUANTKIT_SKIP_BROWSER === '1') return { skipped: `${why}; browser checks skipped (QUANTKIT_SKIP_BROWSER=1)` }
    throw new Error(`${why}. Install Debian's chromium (apt-get install -y --no-install-recommends chromium; .ci/run does this), ` +
      'point QUANTKIT_CHROMIUM at another Chromium, or set QUANTKIT_SKIP_BROWSER=1 to skip the browser tests.')
  }
  const { chromium } = require('playwright-core')
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS], timeout: 60_000 })
  return { browser }
}

/**
 * Opens `html` in a new page with no network: every request other than about: and data: is
 * recorded and aborted. Console errors and uncaught page errors are collected in `problems`.
 */
export async function openHtml(browser, html, { width = 1200, height = 900 } = {}) {
  const page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 1 })
  const problems = []
  const requests = []
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console.error: ${m.text()}`) })
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  page.on('request', (r) => requests.push(r.url()))
  await page.route('**/*', (route) => {
    const url = route.request().url()
    return url.startsWith('about:') || url.startsWith('data:') ? route.continue() : route.abort()
  })
  await page.setContent(html, { waitUntil: 'load' })
  const offline = () => requests.filter((u) => !u.startsWith('about:') && !u.startsWith('data:'))
  return { page, problems, requests, offline }
}

/**
 * Every chart box (`[data-chart]`) in the page with its canvas size and how many pixels are not
 * fully transparent: a chart that drew has some.
 */
export function paintedCharts(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-chart]')].map((box) => {
    const canvas = box.querySelector('canvas')
    if (!canvas || canvas.width === 0 || canvas.height === 0) return { chart: box.dataset.chart, width: 0, height: 0, painted: 0 }
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data
    let painted = 0
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted++
    return { chart: box.dataset.chart, width: canvas.width, height: canvas.height, painted }
  }))
}
