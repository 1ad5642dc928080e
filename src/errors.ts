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

/**
 * A tensor's external data (TensorProto.data_location = EXTERNAL) cannot be read: missing file,
 * a location that is absolute or leaves the model's folder, an offset or length beyond the file
 * or not matching the tensor's dims, or a model given as bytes with no folder to resolve against.
 */
export class ExternalDataError extends OnnxFormatError {
  override name = 'ExternalDataError'
  /** The model file (or a description of the bytes) the tensor belongs to. */
  readonly modelFile: string
  /** The tensor's name. */
  readonly tensor: string
  /** The external-data location as written in the model, when it has one. */
  readonly location?: string

  constructor(message: string, details: { modelFile: string; tensor: string; location?: string }) {
    super(message)
    this.modelFile = details.modelFile
    this.tensor = details.tensor
    this.location = details.location
  }
}
