// The error classes quantkit throws. Every message names the file, tensor, node, argument or
// config key at fault and what was expected.

export class QuantkitError extends Error {
  override name = 'QuantkitError'
}

/** The native addon for this platform is missing or failed to load. */
export class NativeBindingError extends QuantkitError {
  override name = 'NativeBindingError'
}

/** A malformed or unsupported ONNX file or tensor. */
export class OnnxFormatError extends QuantkitError {
  override name = 'OnnxFormatError'
}

/** A graph that breaks ONNX's rules (dangling input, duplicate value, cycle, missing opset) or an edit that would. */
export class GraphError extends QuantkitError {
  override name = 'GraphError'
}
