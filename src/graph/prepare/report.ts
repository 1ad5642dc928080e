// What prepareModel did, in numbers a user (and a test) can check.

/** One BatchNormalization folded into a Conv, ConvTranspose, Gemm or MatMul (which becomes a Gemm). */
export interface FoldedBatchNorm {
  /** The BatchNormalization node's name (it is gone from the prepared model). */
  bn: string
  /** The layer's node name in the prepared model. */
  into: string
  /** Where the BatchNorm sat: 'after' the layer (AIMET's usual case) or 'before' it. */
  position: 'after' | 'before'
  /** Initializer names of the layer's (rescaled) weight and bias in the prepared model. */
  weight: string
  bias: string
  /**
   * The BatchNorm's γ (scale) and β (bias), one per channel, as float32: what AIMET keeps
   * (`BNLayer.gamma/beta`) for the high-bias fold of cross-layer equalization.
   */
  gamma: Float32Array
  beta: Float32Array
  /** Running mean and variance and ε, for anyone who needs to undo or redo the fold. */
  mean: Float32Array
  variance: Float32Array
  epsilon: number
}

export interface PrepareReport {
  /** Constant nodes turned into initializers. */
  constantsToInitializers: number
  /** Nodes evaluated ahead of time because they only compute weights from other constants. */
  foldedConstants: number
  /** Identity and inference-mode Dropout nodes removed. */
  removedIdentities: number
  foldedBatchNorms: FoldedBatchNorm[]
  /** Elementwise Mul/Add/Sub/Div by a per-channel constant absorbed into the preceding layer. */
  foldedMulAdd: number
  /** Node count before minus node count after: every node any pass removed. */
  removedNodes: number
  /** Initializers deleted because preparation left them unread (folded BN parameters, absorbed constants). */
  removedInitializers: number
  /** Op-type histograms of the main graph before and after. */
  opsBefore: Record<string, number>
  opsAfter: Record<string, number>
  /** What was left alone and why (shared weights, non-exact cases, unsupported forms). */
  notes: string[]
}

export function emptyReport(): PrepareReport {
  return {
    constantsToInitializers: 0,
    foldedConstants: 0,
    removedIdentities: 0,
    foldedBatchNorms: [],
    foldedMulAdd: 0,
    removedNodes: 0,
    removedInitializers: 0,
    opsBefore: {},
    opsAfter: {},
    notes: [],
  }
}
