// quantkit's public API.
export * from './errors.js'
export { native as _native } from './native.js'
