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

/** Calibration failed: no data, non-finite values reaching a tensor, a tensor that cannot be observed. */
export class CalibrationError extends QuantkitError {
  override name = 'CalibrationError'
  constructor(message: string, readonly tensor?: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/**
 * A quantsim config (an AIMET-format JSON file, a preset name or a config object) that cannot be
 * read or breaks the format: unknown key, bad value, missing section, unknown preset or pass.
 */
export class ConfigError extends QuantkitError {
  override name = 'ConfigError'
  /** The JSON path of the offending key or value, e.g. `op_type.Conv.per_channel_quantization`; '' for the whole config. */
  readonly path: string
  /** Where the config came from: a file path, `preset:<name>` or `<object>`. */
  readonly source: string
  /** The nearest valid key or name, when the error is an unknown or misspelled one. */
  readonly suggestion?: string

  constructor(message: string, details: { path: string; source: string; suggestion?: string }) {
    super(message)
    this.path = details.path
    this.source = details.source
    this.suggestion = details.suggestion
  }
}

/** An operation stopped because its AbortSignal fired; `cause` is the signal's reason. */
export class AbortError extends QuantkitError {
  override name = 'AbortError'
}

/**
 * Calibration or evaluation data (`--calib` / `--data`, job files, `openDataSource`) that cannot be
 * read or does not fit the model: the message names the file and what the model expects.
 */
export class DataSourceError extends QuantkitError {
  override name = 'DataSourceError'
  /** The file or folder at fault (for an image folder, the image when one is to blame). */
  readonly file: string
  /** The model input concerned, when there is one. */
  readonly input?: string

  constructor(message: string, details: { file: string; input?: string }, options?: ErrorOptions) {
    super(message, options)
    this.file = details.file
    this.input = details.input
  }
}

/**
 * A model transform found nothing it could apply to (e.g. dynamic quantization of a model with no
 * MatMul/Gemm/Conv of a constant weight): the message names the model, the op types looked for and
 * why each candidate was passed over. The CLI exits 1 on it.
 */
export class NothingToQuantizeError extends QuantkitError {
  override name = 'NothingToQuantizeError'
}
