// Typed reads of node attributes with ONNX's defaults, so passes do not switch on AttributeValue.
import type { AttributeValue, Node } from './model.js'

function describe(node: Node, key: string): string {
  return `node ${JSON.stringify(node.name)} (${node.opType}) attribute ${JSON.stringify(key)}`
}

function mismatch(node: Node, key: string, expected: string, a: AttributeValue): Error {
  return new TypeError(`${describe(node, key)}: expected ${expected}, found ${a.type}`)
}

export function attrInt(node: Node, key: string, fallback: number): number
export function attrInt(node: Node, key: string): number | undefined
export function attrInt(node: Node, key: string, fallback?: number): number | undefined {
  const a = node.attributes.get(key)
  if (a === undefined) return fallback
  if (a.type !== 'int') throw mismatch(node, key, 'int', a)
  return Number(a.value)
}

export function attrFloat(node: Node, key: string, fallback: number): number
export function attrFloat(node: Node, key: string): number | undefined
export function attrFloat(node: Node, key: string, fallback?: number): number | undefined {
  const a = node.attributes.get(key)
  if (a === undefined) return fallback
  if (a.type !== 'float') throw mismatch(node, key, 'float', a)
  return a.value
}

export function attrInts(node: Node, key: string): number[] | undefined {
  const a = node.attributes.get(key)
  if (a === undefined) return undefined
  if (a.type !== 'ints') throw mismatch(node, key, 'ints', a)
  return a.value.map(Number)
}

export function attrString(node: Node, key: string): string | undefined {
  const a = node.attributes.get(key)
  if (a === undefined) return undefined
  if (a.type !== 'string') throw mismatch(node, key, 'string', a)
  return Buffer.from(a.value).toString('utf8')
}
