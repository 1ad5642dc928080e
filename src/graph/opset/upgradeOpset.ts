// upgradeOpset: rewrites a model's default-domain (ai.onnx) nodes for a newer opset, so that
// per-axis QuantizeLinear/DequantizeLinear (opset 13) and int4/int16/blocked ones (opset 21) can be
// added to models exported at opset 9–11.
//
// Each node walks its op's row of opsetTable.ts from the version it is at to the version it has at
// the target, applying every conversion on the way; nodes a conversion creates (Flatten, Reshape,
// Resize from Upsample, …) continue from the version they were written for. Subgraphs (If/Loop
// bodies) share the model's opset and are upgraded with it. Other domains keep their opsets.
//
// All or nothing: when some node cannot be converted (its op has no row, or a conversion refuses),
// the model comes back unchanged with `upgradable: false` and the blockers; the caller then uses
// ONNX Runtime's com.microsoft QuantizeLinear/DequantizeLinear instead (see docs/opset-upgrade.md).
import { QuantkitError } from '../../errors.js'
import { minIrVersion } from '../../onnx/versionTable.js'
import { graphIndex } from '../graphIndex.js'
import { cloneModel, opsetVersion, type Graph, type Model, type Node } from '../model.js'
import { allValueNames } from '../names.js'
import { subgraphsOf } from '../scope.js'
import { MAX_TABLE_OPSET, OPSET_TABLE, type OpsetStep } from './opsetTable.js'
import { createStepContext } from './stepContext.js'
import { valueFacts, type ValueFacts } from './valueFacts.js'

export interface UpgradeBlocker {
  /** The node's name ('' when it has none) and, for a node inside a subgraph, the graph's name after a '/'. */
  node: string
  opType: string
  reason: string
}

export interface UpgradeStepCount {
  opType: string
  from: number
  to: number
  change: string
  /** Nodes this step rewrote. */
  nodes: number
}

export interface OpsetUpgradeReport {
  /** ai.onnx opset of the input model. */
  fromOpset: number
  /** The opset asked for. */
  targetOpset: number
  /** False when some node blocks the upgrade; the model is then returned unchanged. */
  upgradable: boolean
  blockers: UpgradeBlocker[]
  irVersionBefore: number
  irVersionAfter: number
  /** Conversions applied (steps without a conversion are not listed), per op type and step. */
  conversions: UpgradeStepCount[]
  /** Nodes added by rewrites (Softmax → Shape/Flatten/Softmax/Reshape adds three). */
  addedNodes: number
  /** Initializers added (attributes that became inputs). */
  addedInitializers: number
}

export interface OpsetUpgradeResult {
  model: Model
  report: OpsetUpgradeReport
}

/** The lowest opset the pass writes: never 10 (onnxruntime rejects QDQ models at opset 10, see DECISIONS). */
export const MIN_TARGET_OPSET = 11

const isDefaultDomain = (d: string) => d === '' || d === 'ai.onnx'

/** The step a node of `opType` at opset `at` takes next on the way to `target`, undefined when none is left, or a blocker message. */
function nextStep(opType: string, at: number, target: number): OpsetStep | undefined | string {
  const steps = OPSET_TABLE[opType]
  if (!steps) return `${opType} is not in the opset upgrade table (src/graph/opset/opsetTable.ts)`
  const step = steps.find((s) => s.to > at)
  if (!step || step.to > target) return undefined
  if (step.from > at) return `${opType} before version ${step.from} is not handled (the node is at opset ${at})`
  return step
}

/** What a conversion may change on a node, to tell a rewrite from a node it left as it was. */
function signature(node: Node): string {
  const attrs = [...node.attributes].map(([k, v]) => [k, v.type, v.type === 'graph' || v.type === 'graphs' || v.type === 'raw' ? '' : String(v.value)])
  return JSON.stringify([node.opType, node.inputs, node.outputs, attrs])
}

interface Work {
  node: Node
  at: number
}

interface Totals {
  blockers: UpgradeBlocker[]
  conversions: Map<string, UpgradeStepCount>
  addedNodes: number
  addedInitializers: number
}

function upgradeGraph(
  graph: Graph,
  from: number,
  target: number,
  outer: ValueFacts | undefined,
  taken: Set<string>,
  nodeNames: Set<string>,
  where: string,
  totals: Totals,
): void {
  const facts = valueFacts(graph, outer)
  const index = graphIndex(graph)
  const isUsed = (name: string) => index.consumers(name).length > 0 || index.isGraphOutput(name)
  const initializersBefore = graph.initializers.size
  const out: Node[] = []
  for (const original of graph.nodes) {
    for (const g of subgraphsOf(original)) upgradeGraph(g, from, target, facts, taken, nodeNames, `${where}${g.name}/`, totals)
    if (!isDefaultDomain(original.domain)) {
      out.push(original)
      continue
    }
    const queue: Work[] = [{ node: original, at: from }]
    while (queue.length > 0) {
      const { node, at } = queue.shift()!
      const step = nextStep(node.opType, at, target)
      if (step === undefined) {
        out.push(node)
        continue
      }
      if (typeof step === 'string') {
        totals.blockers.push({ node: `${where}${node.name}`, opType: node.opType, reason: step })
        out.push(node)
        continue
      }
      if (!step.convert) {
        queue.unshift({ node, at: step.to })
        continue
      }
      const opType = node.opType
      const before = signature(node)
      const ctx = createStepContext(graph, facts, taken, nodeNames, isUsed, step.to, target)
      const result = step.convert(node, ctx)
      if (typeof result === 'string') {
        totals.blockers.push({ node: `${where}${node.name}`, opType, reason: `${opType}-${step.from} → ${step.to}: ${result}` })
        out.push(node)
        continue
      }
      if (result.length === 1 && result[0] === node && signature(node) === before) {
        queue.unshift({ node, at: step.to })
        continue
      }
      const key = `${opType}\u0000${step.from}\u0000${step.to}`
      const count = totals.conversions.get(key) ?? { opType, from: step.from, to: step.to, change: step.change, nodes: 0 }
      count.nodes++
      totals.conversions.set(key, count)
      totals.addedNodes += result.length - 1
      // Replacements come in execution order; each continues from the version it was written for.
      queue.unshift(...result.map((n) => ({ node: n, at: step.to })))
    }
  }
  graph.nodes = out
  totals.addedInitializers += graph.initializers.size - initializersBefore
}

/**
 * The model rewritten for ai.onnx opset `target` (11–21, never 10), with the IR version that
 * opset needs. Does not change `model`. When the model is already at or above `target` it is
 * returned as is (the pass never downgrades). When some node cannot be converted, the returned
 * model is an unchanged copy and `report.upgradable` is false with the reasons in `blockers`.
 */
export function upgradeOpset(model: Model, target: number): OpsetUpgradeResult {
  if (!Number.isInteger(target) || target < MIN_TARGET_OPSET || target > MAX_TABLE_OPSET) {
    throw new RangeError(
      `upgradeOpset: target opset ${target} is outside ${MIN_TARGET_OPSET}–${MAX_TABLE_OPSET}` +
        (target === 10 ? ' (opset 10 is never written: ONNX Runtime rejects its QDQ models)' : ''),
    )
  }
  const from = opsetVersion(model, '')
  const irBefore = model.irVersion
  const report: OpsetUpgradeReport = {
    fromOpset: from ?? 0,
    targetOpset: target,
    upgradable: true,
    blockers: [],
    irVersionBefore: irBefore,
    irVersionAfter: irBefore,
    conversions: [],
    addedNodes: 0,
    addedInitializers: 0,
  }
  if (from === undefined) {
    throw new QuantkitError(`upgradeOpset: ${model.path ?? 'the model'} does not import the ai.onnx domain`)
  }
  if (from >= target) return { model: cloneModel(model), report }

  const upgraded = cloneModel(model)
  const nodeNames = new Set<string>()
  const collectNames = (g: Graph) => {
    for (const n of g.nodes) {
      if (n.name) nodeNames.add(n.name)
      subgraphsOf(n).forEach(collectNames)
    }
  }
  collectNames(upgraded.graph)
  const totals: Totals = { blockers: [], conversions: new Map(), addedNodes: 0, addedInitializers: 0 }
  upgradeGraph(upgraded.graph, from, target, undefined, allValueNames(upgraded.graph), nodeNames, '', totals)

  if (totals.blockers.length > 0) {
    return { model: cloneModel(model), report: { ...report, upgradable: false, blockers: totals.blockers } }
  }
  upgraded.opsetImports = upgraded.opsetImports.map((o) => (isDefaultDomain(o.domain) ? { ...o, version: target } : o))
  upgraded.irVersion = Math.max(irBefore, minIrVersion(upgraded.opsetImports))
  return {
    model: upgraded,
    report: {
      ...report,
      irVersionAfter: upgraded.irVersion,
      conversions: [...totals.conversions.values()],
      addedNodes: totals.addedNodes,
      addedInitializers: totals.addedInitializers,
    },
  }
}
