import test from 'ava'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

test('the package root loads the native addon', (t) => {
  const q = require('../dist/index.js')
  t.is(typeof q._native.coreVersion(), 'string')
})
