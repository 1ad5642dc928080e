// What each Hexagon (HTP) generation runs: quantkit's own rules, not AIMET's (aimet-onnx 2.42's
// htp_quantsim_config_vNN.json files carry no `supported_kernels`, and aimet-onnx accepts any
// param/activation type with any alias). One row per generation, each with its source.
//
// Qualcomm's QNN / SNPE documentation is not reachable from where this table was written, so every
// row is 'unverified' (taken from the facts sheet, ../shared/reference/aimet-facts.md §5: int8
// everywhere; W8A16 on v68+; int4 weights and LPBQ on v73+; float16 on v69+). DECISIONS.md: only
// rules citable from Qualcomm's docs may become errors; so a request outside a row is a warning,
// and an error only with the opt-in `strictTarget`. When a row is verified against Qualcomm's
// docs, set `verified` and `source` to the page.
import type { ResolvedConfig } from './resolve.js'

export interface HtpTarget {
  /** hw_version as written in AIMET's files ('V73'). */
  hwVersion: string
  /** Integer bitwidths the generation runs for weights (and other params). */
  paramBitwidths: readonly number[]
  /** Integer bitwidths for activations. */
  activationBitwidths: readonly number[]
  float16: boolean
  /** Per-block weights (ONNX blocked DequantizeLinear; AIMET's PER_BLOCK). */
  blockwise: boolean
  /** Low-power blockwise quantization (AIMET's LPBQ). */
  lpbq: boolean
  verified: boolean
  source: string
}

const UNVERIFIED = 'unverified: aimet-facts.md §5 (from Qualcomm QNN HTP docs, not reachable here to check)'

const row = (hwVersion: string, gen: number): HtpTarget => ({
  hwVersion,
  paramBitwidths: gen >= 73 ? [4, 8, 16] : [8],
  activationBitwidths: gen >= 68 ? [8, 16] : [8],
  float16: gen >= 69,
  blockwise: gen >= 73,
  lpbq: gen >= 73,
  verified: false,
  source: UNVERIFIED,
})

/** Keyed by hw_version ('V66' … 'V85'), the generations aimet-onnx 2.42 ships presets for. */
export const HTP_TARGETS: Readonly<Record<string, HtpTarget>> = Object.fromEntries(
  [66, 68, 69, 73, 75, 79, 81, 85].map((g) => [`V${g}`, row(`V${g}`, g)]),
)

/** The row for a config (by its hw_version; presets htp_v66 … htp_v85 and files that set one). */
export function htpTarget(config: Pick<ResolvedConfig, 'hwVersion'>): HtpTarget | undefined {
  const v = config.hwVersion?.toUpperCase()
  return v ? HTP_TARGETS[v] : undefined
}

/** What a quantizer asks of the target, in the terms the table uses. */
export interface TargetRequest {
  tensor: string
  opType: string
  kind: 'param' | 'activation'
  dtype: 'int' | 'float'
  bitwidth: number
  blockwise: boolean
  lpbq: boolean
}

/**
 * Messages for every request the target does not run, one per op type and rule, naming the
 * tensors (empty when all fit, or when the config has no row).
 */
export function checkTarget(target: HtpTarget | undefined, preset: string, requests: readonly TargetRequest[]): string[] {
  if (!target) return []
  const name = `${preset} (hw_version ${target.hwVersion})`
  const tag = target.verified ? '' : ' [rule unverified]'
  const found = new Map<string, { head: string; tail: string; tensors: string[] }>()
  const add = (r: TargetRequest, rule: string, tail: string) => {
    const what = `${r.opType} ${r.kind === 'param' ? 'params' : 'activations'}`
    const key = `${what}\0${rule}`
    const f = found.get(key) ?? { head: what, tail: `${rule} is not supported by ${name}, ${tail}${tag}`, tensors: [] }
    if (!f.tensors.includes(r.tensor)) f.tensors.push(r.tensor)
    found.set(key, f)
  }
  for (const r of requests) {
    const allowed = r.kind === 'param' ? target.paramBitwidths : target.activationBitwidths
    if (r.dtype === 'float') {
      if (!target.float16) add(r, 'float16', `which supports ${allowed.join(', ')}-bit integers only`)
      continue
    }
    if (r.lpbq && !target.lpbq) add(r, 'LPBQ', 'which supports per-tensor and per-channel weights only (LPBQ: v73 and later)')
    else if (!r.lpbq && r.blockwise && !target.blockwise) add(r, 'blockwise quantization', 'which supports per-tensor and per-channel weights only (blockwise: v73 and later)')
    if (!allowed.includes(r.bitwidth)) add(r, `${r.bitwidth}-bit`, `which supports ${allowed.join(', ')}-bit ${r.kind === 'param' ? 'params' : 'activations'}`)
  }
  return [...found.values()].map((f) => {
    const list = f.tensors.slice(0, 3).map((t) => JSON.stringify(t)).join(', ') + (f.tensors.length > 3 ? `, … (${f.tensors.length} tensors)` : '')
    return `${f.head} (${list}): ${f.tail}`
  })
}
