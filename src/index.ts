// quantkit's public API.
export * from './errors.js'
export { affine, type AffineOptions, type AsyncAffineOptions, type IntArray, type Scale, type Offset } from './affine.js'
export { computeEncoding, type Encoding, type EncodingOptions } from './encoding.js'
export {
  MinMaxObserver, HistogramObserver,
  type CalibrationScheme, type HistogramEncodingOptions, type HistogramObserverOptions, type MinMaxObserverOptions,
} from './observers.js'
export { compareTensors, type ErrorStats } from './metrics.js'
