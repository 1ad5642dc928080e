// What convertFloat16 tells the caller: which nodes run in float16, which stay float32 and why,
// the Casts it inserted, and the size of the model before and after.

export type Float16BlockReason =
  /** The node's op type is in `blockList` (the default list or the caller's). */
  | 'blockList'
  /** The node's name is in `nodeBlockList`. */
  | 'nodeBlockList'
  /** If/Loop/Scan: bodies stay float32; the node reads and writes float32. */
  | 'subgraph'
  /** An op outside the default ONNX domain (contrib, custom): its type constraints are unknown. */
  | 'domain'
  /** Its output (or a weight it reads) exceeds float16's range (|x| > 65504) on the data given. */
  | 'overflow'
  /** It reads a value that exceeds float16's range (the direct consumers of an overflowing op). */
  | 'overflowConsumer'
  /** A Constant whose value is read in float32 (Resize scales, a float32 region): kept exact. */
  | 'float32Readers'

export interface Float16BlockedNode {
  node: string
  opType: string
  reason: Float16BlockReason
  /** Why, in words (for blockList: the default list's reason when the op is on it). */
  detail: string
  /** For overflow reasons: the tensor and the largest |x| seen. */
  tensor?: string
  maxAbs?: number
}

export interface Float16Overflow {
  /** The float32 tensor whose magnitude exceeds 65504 (a node output, graph input or weight). */
  tensor: string
  /** Its producer (undefined for graph inputs and weights). */
  node?: string
  opType?: string
  /** Largest |x| seen (over the data for activations, over the values for weights). */
  maxAbs: number
  /** Where the value came from. */
  source: 'data' | 'weight'
}

export interface Float16Cast {
  /** The value cast. */
  from: string
  /** The new value the Cast writes. */
  to: string
  /** 'float16', 'float32' (or, for bfloat16 storage, 'float32' from 'bfloat16'). */
  type: 'float16' | 'float32'
  /** Why the Cast is there. */
  at: 'graph input' | 'graph output' | 'region boundary' | 'subgraph input' | 'bfloat16 weight'
}

export interface Float16Report {
  /** 'float16' (weights and compute) or 'bfloat16' (weights stored, computed in float32). */
  storage: 'float16' | 'bfloat16'
  keepIoTypes: boolean
  nodes: {
    /** Nodes of the main graph before conversion. */
    total: number
    /** Nodes that now compute in float16. */
    converted: number
    /** Nodes kept in float32 (see `blocked`). */
    blocked: number
    /** Nodes with no float32 input or output (shape arithmetic, integer ops): left as they were. */
    untouched: number
  }
  /** Converted nodes by op type. */
  convertedOps: Record<string, number>
  /** Blocked nodes by op type. */
  blockedOps: Record<string, number>
  blocked: Float16BlockedNode[]
  /** Values beyond float16's range found by the range check (empty when nothing overflowed). */
  overflow: Float16Overflow[]
  /** Whether the range check ran on data (`data` given); weights are always checked. */
  rangeCheckedOnData: boolean
  initializers: {
    /** float32 initializers now stored in float16 (or bfloat16). */
    converted: number
    /** float32 initializers kept (read in float32, too small for bfloat16 storage, graph inputs). */
    kept: number
    /** float32 initializers kept and also copied in float16 for float16 readers (shared weights). */
    copied: number
  }
  casts: Float16Cast[]
  castsInserted: number
  /** Serialized model size (ModelProto bytes), before and after. */
  bytes: { before: number; after: number; ratio: number }
}
