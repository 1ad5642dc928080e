// The post-training techniques' reports as plain JSON for report.json and the HTML report
// (ReportData.techniques): what each technique did per layer, numbers only (typed arrays become
// arrays). Built from the techniques' own report objects by `techniquesReportData`.
import type { AdaroundReport } from '../techniques/adaround.js'
import type { BiasCorrectionReport } from '../techniques/biasCorrection.js'
import type { EqualizeReport } from '../techniques/equalizeModel.js'
import type { SeqMseReport } from '../techniques/seqMse.js'

export interface SkippedLayer {
  node: string
  reason: string
}

export interface CleReportData {
  /** Every scaled pair: layer 1's output channels were divided by `scales`, layer 2's inputs multiplied. */
  pairs: { layer1: string; layer2: string; activations: string[]; scales: number[]; scaleMin: number; scaleMedian: number; scaleMax: number }[]
  highBiasFold: {
    applied: boolean
    skippedBecause?: string
    /** Per pair: c per channel of layer 1 (what its bias lost and layer 2 absorbed), in brief. */
    pairs: { layer1: string; layer2: string; batchNorm: string; rule: 'relu' | 'linear'; channels: number; maxAbsorbed: number; meanAbsorbed: number; absorbed: number[] }[]
  }
  skipped: { layers: string[]; reason: string }[]
  notes: string[]
}

export interface SeqMseReportData {
  numCandidates: number
  /** Per layer: chosen fraction of the min-max range per channel, output MSE with min-max and with the chosen ranges. */
  layers: { node: string; opType: string; weight: string; fractions: number[]; lossBefore: number; lossAfter: number; candidateLosses: number[]; samples: number }[]
  skipped: SkippedLayer[]
}

export interface BiasCorrectionReportData {
  mode: 'empirical' | 'analytical' | 'auto'
  /** Per layer: what was added to the bias per output channel, and how it was found. */
  layers: { node: string; opType: string; method: 'empirical' | 'analytical'; batchNorm?: string; activation?: 'none' | 'relu' | 'clip'; bias: string; addedBias: boolean; shift: number[]; meanAbsShift: number }[]
  skipped: SkippedLayer[]
}

export interface AdaroundReportData {
  /** Per layer: weights whose rounding differs from nearest, and the reconstruction loss with nearest and with AdaRound's rounding. */
  layers: { node: string; opType: string; weight: string; flips: number; weights: number; lossBefore: number; lossAfter: number; samples: number }[]
  skipped: SkippedLayer[]
}

export interface TechniquesReportData {
  cle?: CleReportData
  seqMse?: SeqMseReportData
  biasCorrection?: BiasCorrectionReportData
  adaround?: AdaroundReportData
}

const arr = (a: ArrayLike<number>): number[] => Array.from(a)

export function techniquesReportData(parts: { cle?: EqualizeReport; seqMse?: SeqMseReport; biasCorrection?: BiasCorrectionReport; adaround?: AdaroundReport }): TechniquesReportData {
  const out: TechniquesReportData = {}
  const { cle, seqMse, biasCorrection: bc, adaround } = parts
  if (cle) {
    out.cle = {
      pairs: cle.sets.flatMap((s) => s.pairs.map((p) => ({
        layer1: p.layer1, layer2: p.layer2, activations: [...p.activations], scales: arr(p.scaleFactors),
        scaleMin: p.scale.min, scaleMedian: p.scale.median, scaleMax: p.scale.max,
      }))),
      highBiasFold: {
        applied: cle.highBiasFold.applied,
        ...(cle.highBiasFold.skippedBecause ? { skippedBecause: cle.highBiasFold.skippedBecause } : {}),
        pairs: cle.highBiasFold.pairs.map((p) => ({
          layer1: p.layer1, layer2: p.layer2, batchNorm: p.batchNorm, rule: p.rule, channels: p.channels,
          maxAbsorbed: p.maxAbsorbed, meanAbsorbed: p.meanAbsorbed, absorbed: arr(p.absorbed),
        })),
      },
      skipped: cle.skipped.map((s) => ({ layers: [...s.layers], reason: s.reason })),
      notes: [...cle.notes],
    }
  }
  if (seqMse) {
    out.seqMse = {
      numCandidates: seqMse.numCandidates,
      layers: seqMse.layers.map((l) => ({
        node: l.node, opType: l.opType, weight: l.weight, fractions: [...l.fractions], lossBefore: l.lossBefore,
        lossAfter: l.lossAfter, candidateLosses: [...l.candidateLosses], samples: l.samples,
      })),
      skipped: seqMse.skipped.map((s) => ({ ...s })),
    }
  }
  if (bc) {
    out.biasCorrection = {
      mode: bc.mode,
      layers: bc.layers.map((l) => ({
        node: l.node, opType: l.opType, method: l.method, ...(l.batchNorm ? { batchNorm: l.batchNorm } : {}), ...(l.activation ? { activation: l.activation } : {}),
        bias: l.bias, addedBias: l.addedBias, shift: [...l.shift], meanAbsShift: l.meanAbsShift,
      })),
      skipped: bc.skipped.map((s) => ({ ...s })),
    }
  }
  if (adaround) {
    out.adaround = {
      layers: adaround.layers.map((l) => ({
        node: l.node, opType: l.opType, weight: l.weight, flips: l.flips, weights: l.weights,
        lossBefore: l.lossNearest, lossAfter: l.lossAdaround, samples: l.samples,
      })),
      skipped: adaround.skipped.map((s) => ({ ...s })),
    }
  }
  return out
}
