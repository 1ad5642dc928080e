// The one place that loads the generated napi-rs binding (../index.js). Everything else imports
// from here, so a missing binary is reported once, clearly.
import { createRequire } from 'node:module'
import { NativeBindingError } from './errors.js'

// Types come from the napi-generated declaration file at the package root.
import type * as Binding from '../index.js'

const requireBinding = createRequire(__filename)

function platformPackage(): string {
  const { platform, arch } = process
  if (platform === 'linux') {
    const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime
    return `quantkit-linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `quantkit-win32-${arch}-msvc`
  return `quantkit-${platform}-${arch}`
}

function load(): typeof Binding {
  try {
    return requireBinding("../index.js") as typeof Binding
  } catch (err) {
    const cause = err instanceof Error ? err.message : String(err)
    throw new NativeBindingError(
      `quantkit's native addon did not load for ${process.platform}-${process.arch}: the package ` +
        `${platformPackage()} is not installed and no locally built quantkit.*.node was found. ` +
        `Reinstall without --omit=optional, or build from source (needs Rust): clone the repository ` +
        `and run \`npm install\`, or \`npm run build\`. Cause: ${cause}`,
      { cause: err },
    )
  }
}

export const native: typeof Binding = load()

// The binding marks errors with a class prefix (crates/quantkit-node/src/errors.rs); rethrow
// them as the JS class a caller would check with `instanceof`.
function translate(err: unknown): unknown {
  if (!(err instanceof Error)) return err
  const m = /^\[(RangeError|TypeError)\] ([\s\S]*)$/.exec(err.message)
  if (!m) return err
  const Cls = m[1] === 'RangeError' ? RangeError : TypeError
  return new Cls(m[2])
}

/** Calls into the binding, translating its errors. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    throw translate(err)
  }
}

/** Awaits an async binding call, translating its errors. */
export async function callNativeAsync<T>(promise: () => Promise<T>): Promise<T> {
  try {
    return await promise()
  } catch (err) {
    throw translate(err)
  }
}
