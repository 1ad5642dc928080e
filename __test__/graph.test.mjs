// src/graph/: topological order, the producer/consumer index, editing helpers and validation, on
// IR objects built by hand (If bodies included, since subgraphs may read outer values).
import test from 'ava'
import { createRequire } from 'node:module'
import { built, f32, T } from './helpers/prepare.mjs'

const require = createRequire(import.meta.url)
const { topologicalOrder } = require('../dist/graph/topologicalOrder.js')
const { graphIndex } = require('../dist/graph/graphIndex.js')
const { insertNodeOnEdge, replaceInitializer, removeNode, renameValue, addGraphOutput, pruneUnusedInitializers } = require('../dist/graph/graphEdits.js')
const { validateGraph, findGraphProblems } = require('../dist/graph/validateGraph.js')
const { GraphError } = require('../dist/errors.js')

const node = (name, opType, inputs, outputs, attrs = {}, domain = '') => ({
  name, opType, domain, inputs, outputs, attributes: new Map(Object.entries(attrs)),
})
const graph = (nodes, { inputs = ['x'], outputs = ['y'], initializers = [], name = 'g' } = {}) => ({
  name,
  nodes,
  inputs: inputs.map((n) => ({ name: n, elemType: T.FLOAT, shape: [2] })),
  outputs: outputs.map((n) => ({ name: n, elemType: T.FLOAT, shape: [2] })),
  valueInfo: [],
  initializers: new Map(initializers.map((t) => [t.name, t])),
})
const model = (g, opsets = [{ domain: '', version: 13 }]) => ({ irVersion: 7, opsetImports: opsets, metadataProps: [], graph: g })

// x → a → b → y, and an If whose branch reads the outer value `a`.
function withIf() {
  const thenBranch = graph([node('inner', 'Neg', ['a'], ['t'])], { inputs: [], outputs: ['t'], name: 'then' })
  const elseBranch = graph([node('inner2', 'Identity', ['a'], ['e'])], { inputs: [], outputs: ['e'], name: 'else' })
  return graph([
    node('A', 'Relu', ['x'], ['a']),
    node('cond', 'ReduceMax', ['x'], ['c'], { keepdims: { type: 'int', value: 0 } }),
    node('B', 'Sigmoid', ['a'], ['b']),
    node('IF', 'If', ['c'], ['y'], { then_branch: { type: 'graph', value: thenBranch }, else_branch: { type: 'graph', value: elseBranch } }),
  ])
}

test('topologicalOrder is stable and counts subgraph reads as dependencies', (t) => {
  const g = withIf()
  t.deepEqual(topologicalOrder(g).map((n) => n.name), ['A', 'cond', 'B', 'IF'])
  // IF placed before A in the file: it must move after A (its branch reads a), others keep file order.
  g.nodes = [g.nodes[3], g.nodes[1], g.nodes[2], g.nodes[0]]
  t.deepEqual(topologicalOrder(g).map((n) => n.name), ['cond', 'A', 'IF', 'B'])
})

test('topologicalOrder names the nodes of a cycle', (t) => {
  const g = graph([node('P', 'Relu', ['x'], ['p']), node('Q', 'Add', ['p', 'r'], ['q']), node('R', 'Neg', ['q'], ['r']), node('S', 'Neg', ['q'], ['y'])])
  const e = t.throws(() => topologicalOrder(g), { instanceOf: GraphError })
  t.regex(e.message, /cycle through node "(Q|R)"/)
  t.regex(e.message, /"Q" → "R" → "Q"|"R" → "Q" → "R"/)
  const self = graph([node('Z', 'Add', ['x', 'y'], ['y'])])
  t.throws(() => topologicalOrder(self), { instanceOf: GraphError, message: /"Z".*reads its own output/ })
})

test('graphIndex: producers, consumers (subgraph reads as input -1), inputs and initializers', (t) => {
  const g = withIf()
  g.initializers.set('w', f32('w', [2], 1))
  const ix = graphIndex(g)
  t.is(ix.producer('a').node.name, 'A')
  t.is(ix.producer('x'), undefined)
  t.deepEqual(ix.consumers('a').map((u) => [u.node.name, u.inputIndex]), [['B', 0], ['IF', -1]])
  t.deepEqual(ix.consumerNodes('x').map((n) => n.name), ['A', 'cond'])
  t.true(ix.isGraphInput('x'))
  t.true(ix.isInitializer('w'))
  t.true(ix.isGraphOutput('y'))
  t.true(ix.isDefined('w'))
  t.false(ix.isDefined('nope'))
  t.is(ix.position(g.nodes[2]), 2)
})

test('renameValue renames producer, readers, subgraph reads, graph outputs and value_info', (t) => {
  const g = withIf()
  g.valueInfo.push({ name: 'a', elemType: T.FLOAT })
  renameValue(g, 'a', 'a2')
  t.deepEqual(g.nodes[0].outputs, ['a2'])
  t.deepEqual(g.nodes[2].inputs, ['a2'])
  const branches = [...g.nodes[3].attributes.values()].map((a) => a.value)
  t.deepEqual(branches.map((b) => b.nodes[0].inputs[0]), ['a2', 'a2'])
  t.is(g.valueInfo[0].name, 'a2')
  renameValue(g, 'y', 'out')
  t.deepEqual(g.outputs.map((o) => o.name), ['out'])
  t.throws(() => renameValue(g, 'b', 'x'), { instanceOf: GraphError, message: /"x" already exists/ })
  // An initializer keeps its tensor under the new name.
  g.initializers.set('w', f32('w', [2], 1))
  renameValue(g, 'w', 'w2')
  t.is(g.initializers.get('w2').name, 'w2')
  t.false(g.initializers.has('w'))
  t.deepEqual(findGraphProblems(model(g)), [])
})

test('insertNodeOnEdge: all or some consumers, placed after its inputs\' producers', (t) => {
  const g = graph([node('A', 'Relu', ['x'], ['a']), node('B', 'Neg', ['a'], ['b']), node('C', 'Add', ['a', 'b'], ['y'])])
  insertNodeOnEdge(g, 'a', node('Q', 'Sigmoid', ['a'], ['a_q']), { consumers: [g.nodes[2]] })
  t.deepEqual(g.nodes.map((n) => n.name), ['A', 'Q', 'B', 'C'])
  t.deepEqual(g.nodes[3].inputs, ['a_q', 'b'])
  t.deepEqual(g.nodes[2].inputs, ['a'])
  insertNodeOnEdge(g, 'x', node('P', 'Abs', ['x'], ['x_p']))
  t.deepEqual(g.nodes[0].name, 'P')
  t.deepEqual(g.nodes[1].inputs, ['x_p'])
  t.throws(() => insertNodeOnEdge(g, 'a', node('Z', 'Neg', ['a'], ['b'])), { instanceOf: GraphError, message: /"b" already exists/ })
  t.throws(() => insertNodeOnEdge(g, 'a', node('Z', 'Neg', ['x_p'], ['z'])), { instanceOf: GraphError, message: /must read "a"/ })
  t.deepEqual(findGraphProblems(model(g)), [])
})

test('insertNodeOnEdge reaches subgraph readers', (t) => {
  const g = withIf()
  insertNodeOnEdge(g, 'a', node('Q', 'Abs', ['a'], ['a_q']), { consumers: [g.nodes[3]] })
  const branches = [...g.nodes.find((n) => n.name === 'IF').attributes.values()].map((a) => a.value)
  t.deepEqual(branches.map((b) => b.nodes[0].inputs[0]), ['a_q', 'a_q'])
  t.deepEqual(g.nodes.find((n) => n.name === 'B').inputs, ['a'])
  t.deepEqual(findGraphProblems(model(g)), [])
})

test('removeNode rewires readers, or hands a graph output\'s name to the value it read', (t) => {
  const g = graph([node('A', 'Relu', ['x'], ['a']), node('I', 'Identity', ['a'], ['i']), node('B', 'Neg', ['i'], ['y']), node('J', 'Identity', ['y'], ['z'])], { outputs: ['z'] })
  removeNode(g, g.nodes[1])
  t.deepEqual(g.nodes.map((n) => n.name), ['A', 'B', 'J'])
  t.deepEqual(g.nodes[1].inputs, ['a'])
  removeNode(g, g.nodes[2]) // J's output z is the graph output: B now writes z
  t.deepEqual(g.nodes[1].outputs, ['z'])
  t.deepEqual(g.outputs.map((o) => o.name), ['z'])
  t.deepEqual(findGraphProblems(model(g)), [])
  // An Identity from a graph input straight to a graph output cannot go: the input name is the interface.
  const h = graph([node('I', 'Identity', ['x'], ['y'])])
  t.throws(() => removeNode(h, h.nodes[0]), { instanceOf: GraphError, message: /graph output.*"x"/ })
  // A second output still in use blocks removal.
  const d = graph([node('D', 'Dropout', ['x'], ['d', 'mask']), node('C', 'Cast', ['mask'], ['y'], { to: { type: 'int', value: 1 } })])
  t.throws(() => removeNode(d, d.nodes[0]), { instanceOf: GraphError, message: /"mask" is still used/ })
})

test('replaceInitializer keeps the name and updates declared type and shape', (t) => {
  const g = graph([node('A', 'Add', ['x', 'w'], ['y'])], { inputs: ['x', 'w'], initializers: [f32('w', [2], 1)] })
  replaceInitializer(g, 'w', f32('other', [1, 2], 2))
  t.is(g.initializers.get('w').name, 'w')
  t.deepEqual(g.inputs[1].shape, [1, 2])
  t.throws(() => replaceInitializer(g, 'nope', f32('nope', [1], 1)), { instanceOf: GraphError, message: /no initializer "nope"/ })
})

test('addGraphOutput takes type and shape from value_info or initializers; pruneUnusedInitializers', (t) => {
  const g = graph([node('A', 'Relu', ['x'], ['a']), node('B', 'Neg', ['a'], ['y'])], { initializers: [f32('w', [3], 1), f32('v', [2], 1)] })
  g.valueInfo.push({ name: 'a', elemType: T.FLOAT, shape: [2] })
  t.true(addGraphOutput(g, 'a'))
  t.false(addGraphOutput(g, 'a'))
  t.true(addGraphOutput(g, 'w'))
  t.deepEqual(g.outputs.slice(1), [{ name: 'a', elemType: T.FLOAT, shape: [2] }, { name: 'w', elemType: T.FLOAT, shape: [3] }])
  t.throws(() => addGraphOutput(g, 'nope'), { instanceOf: GraphError, message: /"nope"/ })
  t.deepEqual(pruneUnusedInitializers(g), ['v'])
  t.deepEqual([...g.initializers.keys()], ['w'])
})

test('validateGraph names dangling inputs, duplicate writers, cycles and missing opsets', (t) => {
  const g = graph([
    node('A', 'Relu', ['x'], ['a']),
    node('B', 'Neg', ['ghost'], ['a']),
    node('C', 'Custom', ['a'], ['y'], {}, 'com.example'),
  ])
  const problems = findGraphProblems(model(g))
  t.true(problems.some((p) => /node "B" \(Neg\) input 0 reads "ghost"/.test(p)))
  t.true(problems.some((p) => /value "a" is written twice: by node "A" \(Relu\) and by node "B" \(Neg\)/.test(p)))
  t.true(problems.some((p) => /node "C" \(Custom\) has domain "com.example", which the model does not import/.test(p)))
  const e = t.throws(() => validateGraph({ ...model(g), path: 'm.onnx' }), { instanceOf: GraphError })
  t.regex(e.message, /^m\.onnx: invalid graph \(3 problems\)/)
  const cyc = graph([node('P', 'Neg', ['q'], ['p']), node('Q', 'Neg', ['p'], ['q']), node('R', 'Neg', ['x'], ['y'])])
  t.true(findGraphProblems(model(cyc)).some((p) => /cycle through node "(P|Q)"/.test(p)))
  // A subgraph reading an outer value is fine; one reading an unknown name is not, and is named.
  const ok = withIf()
  t.deepEqual(findGraphProblems(model(ok)), [])
  ok.nodes[3].attributes.get('then_branch').value.nodes[0].inputs = ['nowhere']
  t.true(findGraphProblems(model(ok)).some((p) => /subgraph "then": node "inner" \(Neg\) input 0 reads "nowhere"/.test(p)))
  const dangling = graph([node('A', 'Relu', ['x'], ['a'])])
  t.true(findGraphProblems(model(dangling)).some((p) => /graph output "y" is not defined/.test(p)))
})

test('a loaded model validates, and its file order is already topological', async (t) => {
  const m = await built({
    opset: 13,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [2] }],
    outputs: [{ name: 'y', dataType: T.FLOAT, dims: [2] }],
    initializers: [f32('w', [2], 3)],
    nodes: [{ opType: 'Add', inputs: ['x', 'w'], outputs: ['s'] }, { opType: 'Relu', inputs: ['s'], outputs: ['y'] }],
  })
  t.notThrows(() => validateGraph(m))
  t.deepEqual(topologicalOrder(m.graph), m.graph.nodes)
})
