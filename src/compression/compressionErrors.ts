// Errors model compression throws (beside EvaluationError from src/evaluation/ and AbortError).
import { QuantkitError } from '../errors.js'

/** Bad compression options or a model compression cannot work on; the message names the node or option. */
export class CompressionError extends QuantkitError {
  override name = 'CompressionError'
}

/** The target cost ratio cannot be reached; `bestRatio` is the lowest ratio the scheme can reach. */
export class UnreachableTargetError extends CompressionError {
  override name = 'UnreachableTargetError'
  constructor(message: string, readonly bestRatio: number, readonly targetRatio: number) {
    super(message)
  }
}
