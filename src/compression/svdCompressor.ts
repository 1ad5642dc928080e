// What weight SVD and spatial SVD share: turning a ratio into a rank, factoring each layer's
// weight once, and building models with some layers replaced. Each scheme supplies a plan per
// layer (svdPlan.ts): which matrix to factor, the cost at a rank, and how to rewrite the node.
import { AbortError } from '../errors.js'
import { pruneUnusedInitializers } from '../graph/graphEdits.js'
import { cloneModel, type Model } from '../graph/model.js'
import { allValueNames } from '../graph/names.js'
import { topologicalOrder } from '../graph/topologicalOrder.js'
import { lowRankFactors, type SvdFactors } from '../linalg.js'
import type { CompressibleLayer, CompressionSchemeName, Cost, CostMetric, LayerCompressionDetail, LayerCompressor } from './layerCompressor.js'
import { addCost } from './layerCost.js'
import type { SvdPlan } from './svdPlan.js'

const q = JSON.stringify

export interface SvdCompressorOptions {
  /** Ranks are rounded up to a multiple of this (capped at the full rank). Default 1, as AIMET's `multiplicity`. */
  rankMultiple?: number
  /** The metric a ratio is measured in when picking a rank. Default 'mac'. */
  costMetric?: CostMetric
}

/** The rank a ratio keeps, and whether the layer is left as it is. */
export interface RankChoice {
  rank: number
  /** True when the layer stays untouched: ratio ≥ 1, or the rank's cost is no better than the layer's. */
  untouched: boolean
  cost: Cost
}

/**
 * AIMET's rank for a ratio (cost_calculator.calculate_rank_given_comp_ratio, then RankRounder):
 * the largest rank whose cost is within `ratio` × the layer's cost (at least 1), rounded up to a
 * multiple of `multiple`, capped at the full rank. Ratio 1 (or a rank that saves nothing) keeps
 * the layer as it is.
 */
export function rankForRatio(plan: Pick<SvdPlan, 'maxRank' | 'costAt' | 'layer'>, ratio: number, metric: CostMetric, multiple: number): RankChoice {
  const original = plan.layer.cost
  if (!(ratio < 1)) return { rank: plan.maxRank, untouched: true, cost: original }
  const target = ratio * original[metric]
  // Costs grow linearly with the rank, so the largest rank within the target is one division away;
  // the loop only corrects rounding at the boundary.
  const perRank = plan.costAt(1)[metric] - plan.costAt(0)[metric]
  let r = Math.min(plan.maxRank, Math.max(1, Math.floor((target - plan.costAt(0)[metric]) / perRank)))
  while (r < plan.maxRank && plan.costAt(r + 1)[metric] <= target) r++
  while (r > 1 && plan.costAt(r)[metric] > target) r--
  const rounded = Math.min(plan.maxRank, Math.ceil(r / multiple) * multiple)
  const cost = plan.costAt(rounded)
  if (cost[metric] >= original[metric]) return { rank: plan.maxRank, untouched: true, cost: original }
  return { rank: rounded, untouched: false, cost }
}

/** The first `rank` columns of a rows×full row-major matrix. */
function leadingColumns(m: Float32Array, rows: number, full: number, rank: number): Float32Array {
  if (rank === full) return m
  const out = new Float32Array(rows * rank)
  for (let i = 0; i < rows; i++) out.set(m.subarray(i * full, i * full + rank), i * rank)
  return out
}

export class SvdCompressor implements LayerCompressor {
  readonly layers: readonly CompressibleLayer[]
  readonly #plans: Map<string, SvdPlan>
  readonly #factors = new Map<string, Promise<SvdFactors>>()
  readonly #metric: CostMetric
  readonly #multiple: number

  constructor(
    readonly scheme: CompressionSchemeName,
    readonly model: Model,
    plans: readonly SvdPlan[],
    readonly skipped: readonly { node: string; reason: string }[],
    /** Cost of the costed layers no plan covers (they count towards the model's cost, unchanged). */
    readonly fixedCost: Cost,
    opts: SvdCompressorOptions = {},
  ) {
    this.#plans = new Map(plans.map((p) => [p.layer.node, p]))
    this.layers = plans.map((p) => p.layer)
    this.#metric = opts.costMetric ?? 'mac'
    const m = opts.rankMultiple ?? 1
    if (!Number.isInteger(m) || m < 1) throw new RangeError(`rankMultiple: expected a positive integer, got ${m}`)
    this.#multiple = m
  }

  #plan(node: string): SvdPlan {
    const p = this.#plans.get(node)
    if (!p) {
      const skip = this.skipped.find((s) => s.node === node)
      throw new RangeError(`${this.scheme}: ${q(node)} is not a compressible layer${skip ? ` (${skip.reason})` : ''}`)
    }
    return p
  }

  #checkRatio(node: string, ratio: number): void {
    if (!(typeof ratio === 'number' && ratio > 0 && ratio <= 1)) throw new RangeError(`${this.scheme}: ratio for ${q(node)} must be in (0, 1], got ${ratio}`)
  }

  /** The rank a ratio gives a layer (no model is built). */
  rankFor(node: string, ratio: number): RankChoice {
    this.#checkRatio(node, ratio)
    return rankForRatio(this.#plan(node), ratio, this.#metric, this.#multiple)
  }

  cost(ratios: Readonly<Record<string, number>>): Cost {
    let total = this.fixedCost
    for (const p of this.#plans.values()) {
      const ratio = ratios[p.layer.node]
      total = addCost(total, ratio === undefined ? p.layer.cost : this.rankFor(p.layer.node, ratio).cost)
    }
    return total
  }

  /** Factors of the full rank, computed once per layer; every smaller rank is their leading part (balanced split: U√S, √S·Vᵀ). */
  #fullFactors(plan: SvdPlan): Promise<SvdFactors> {
    const cached = this.#factors.get(plan.layer.node)
    if (cached) return cached
    const { data, rows, cols } = plan.matrix()
    const f = lowRankFactors(data, rows, cols, plan.maxRank, { split: 'balanced', method: 'full' })
    f.catch(() => this.#factors.delete(plan.layer.node))
    this.#factors.set(plan.layer.node, f)
    return f
  }

  async #apply(target: Model, names: Set<string>, plan: SvdPlan, ratio: number, choice: RankChoice, signal?: AbortSignal): Promise<LayerCompressionDetail> {
    const costBefore = this.cost({})
    const costAfter = addCost(addCost(costBefore, choice.cost), { mac: -plan.layer.cost.mac, memory: -plan.layer.cost.memory })
    const detail: LayerCompressionDetail = {
      node: plan.layer.node, requestedRatio: ratio, kept: choice.untouched ? plan.maxRank : choice.rank, full: plan.maxRank,
      costBefore, costAfter, notes: [],
    }
    if (choice.untouched) {
      detail.notes.push(ratio >= 1 ? 'ratio 1: left unchanged' : `rank ${choice.rank} would cost no less than the layer itself: left unchanged`)
      return detail
    }
    if (signal?.aborted) throw new AbortError(`${this.scheme}: aborted`, { cause: signal.reason })
    const full = await this.#fullFactors(plan)
    if (signal?.aborted) throw new AbortError(`${this.scheme}: aborted`, { cause: signal.reason })
    const { rows, cols } = plan.matrixShape
    const r = choice.rank
    const left = leadingColumns(full.left, rows, full.rank, r)
    const right = full.right.subarray(0, r * cols)
    const replaced = plan.rewrite(target.graph, { left, right, rank: r }, names)
    detail.notes.push(`replaced by ${replaced.map((n) => q(n)).join(' → ')} at rank ${r} of ${plan.maxRank}`)
    return detail
  }

  #finish(model: Model, oldWeights: string[]): void {
    pruneUnusedInitializers(model.graph, oldWeights)
    model.graph.nodes = topologicalOrder(model.graph)
  }

  async compressOne(node: string, ratio: number, signal?: AbortSignal): Promise<{ model: Model; detail: LayerCompressionDetail }> {
    const plan = this.#plan(node)
    const model = cloneModel(this.model)
    const detail = await this.#apply(model, allValueNames(model.graph), plan, ratio, this.rankFor(node, ratio), signal)
    this.#finish(model, plan.weights)
    return { model, detail }
  }

  /**
   * The original model with the named layers factored at exactly these ranks (1 … full rank; the
   * full rank reproduces the weight exactly even where it costs more than the layer). Not part of
   * the LayerCompressor contract: for tests and for users who pick ranks themselves.
   */
  async compressRanks(ranks: Readonly<Record<string, number>>, signal?: AbortSignal): Promise<{ model: Model; details: LayerCompressionDetail[] }> {
    const model = cloneModel(this.model)
    const names = allValueNames(model.graph)
    const details: LayerCompressionDetail[] = []
    const weights: string[] = []
    for (const [node, rank] of Object.entries(ranks)) {
      const plan = this.#plan(node)
      if (!Number.isInteger(rank) || rank < 1 || rank > plan.maxRank) throw new RangeError(`${this.scheme}: rank for ${q(node)} must be an integer in [1, ${plan.maxRank}], got ${rank}`)
      const cost = plan.costAt(rank)
      details.push(await this.#apply(model, names, plan, cost[this.#metric] / plan.layer.cost[this.#metric], { rank, untouched: false, cost }, signal))
      weights.push(...plan.weights)
    }
    this.#finish(model, weights)
    return { model, details }
  }

  async compressAll(ratios: Readonly<Record<string, number>>, signal?: AbortSignal): Promise<{ model: Model; details: LayerCompressionDetail[] }> {
    for (const [node, ratio] of Object.entries(ratios)) {
      this.#plan(node)
      this.#checkRatio(node, ratio)
    }
    const model = cloneModel(this.model)
    const names = allValueNames(model.graph)
    const details: LayerCompressionDetail[] = []
    const weights: string[] = []
    // Plans are in graph order, which is topological for a valid model.
    for (const plan of this.#plans.values()) {
      const ratio = ratios[plan.layer.node]
      if (ratio === undefined) continue
      const d = await this.#apply(model, names, plan, ratio, this.rankFor(plan.layer.node, ratio), signal)
      // Each detail prices its own layer alone; the whole model's cost is in costAfter of the set.
      details.push(d)
      weights.push(...plan.weights)
    }
    this.#finish(model, weights)
    return { model, details }
  }
}
