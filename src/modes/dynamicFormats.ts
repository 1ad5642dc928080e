// The nodes a dynamically quantized layer becomes, one writer per format:
// - fused (MatMul/Gemm): one com.microsoft.DynamicQuantizeMatMul(A, B int8, b_scale, b_zero_point,
//   bias?) — ONNX Runtime's contrib op; b_scale and b_zero_point are a scalar or one per column,
//   bias a 1-D [N] float.
// - standard: DynamicQuantizeLinear(A) → (A_q uint8, A_scale, A_zp); MatMulInteger(A_q, B, A_zp,
//   B_zp) or ConvInteger(…) → int32; Cast to float; Mul(A_scale, B_scale) → scale; Mul(int, scale);
//   then Add(bias) when there is one. The same graph ONNX Runtime's Python quantize_dynamic writes,
//   and any ONNX runtime with opset ≥ 11 runs it. One DynamicQuantizeLinear per activation, shared
//   by every layer reading it (q, k and v of an attention block read one LayerNorm output).
// Conv has no fused form: it is always written the standard way.
import type { AttributeValue, Node } from '../graph/model.js'
import type { DynamicFormat } from './dynamicReport.js'
import { MS_DOMAIN } from './weightOnlyFormats.js'

/** Initializer names of one quantized weight. */
export interface WeightNames {
  codes: string
  scale: string
  zeroPoint: string
}

export interface LayerSpec {
  /** The source node: its name derives the new nodes' names; Conv's attributes are copied from it. */
  node: Node
  label: string
  kind: 'matmul' | 'conv'
  /** The activation input and the layer's output. */
  input: string
  output: string
  weight: WeightNames
  /** A float initializer added after the product (already shaped to broadcast), if any. */
  bias?: string
  /** The bias is a 1-D [N] initializer DynamicQuantizeMatMul can take as its `bias` input. */
  biasFusable?: boolean
}

export interface QuantizedActivation {
  q: string
  scale: string
  zeroPoint: string
}

export interface WriteContext {
  fresh(base: string): string
  /** DynamicQuantizeLinear's outputs for an activation; pushes the node onto `into` the first time. */
  quantizeActivation(input: string, into: Node[]): QuantizedActivation
}

function node(name: string, opType: string, inputs: string[], outputs: string[], attributes: Map<string, AttributeValue> = new Map(), domain = ''): Node {
  return { name, opType, domain, inputs, outputs, attributes }
}

/** The DynamicQuantizeLinear node for an activation (the caller shares it; see WriteContext). */
export function dynamicQuantizeLinear(input: string, fresh: (base: string) => string): { node: Node; out: QuantizedActivation } {
  const out = { q: fresh(`${input}_quantized`), scale: fresh(`${input}_scale`), zeroPoint: fresh(`${input}_zero_point`) }
  return { node: node(fresh(`${input}_QuantizeLinear`), 'DynamicQuantizeLinear', [input], [out.q, out.scale, out.zeroPoint]), out }
}

const CONV_ATTRIBUTES = ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides']

function writeStandard(s: LayerSpec, ctx: WriteContext): Node[] {
  const nodes: Node[] = []
  const a = ctx.quantizeActivation(s.input, nodes)
  const integer = ctx.fresh(`${s.output}_output_quantized`)
  if (s.kind === 'conv') {
    const attrs = new Map([...s.node.attributes].filter(([k]) => CONV_ATTRIBUTES.includes(k)))
    nodes.push(node(`${s.label}_quant`, 'ConvInteger', [a.q, s.weight.codes, a.zeroPoint, s.weight.zeroPoint], [integer], attrs))
  } else {
    nodes.push(node(`${s.label}_quant`, 'MatMulInteger', [a.q, s.weight.codes, a.zeroPoint, s.weight.zeroPoint], [integer]))
  }
  const cast = ctx.fresh(`${integer}_cast_output`)
  nodes.push(node(`${s.label}_cast`, 'Cast', [integer], [cast], new Map([['to', { type: 'int', value: 1 }]])))
  const scale = ctx.fresh(`${s.output}_scale`)
  nodes.push(node(`${s.label}_scales_mul`, 'Mul', [a.scale, s.weight.scale], [scale]))
  const scaled = s.bias ? ctx.fresh(`${s.output}_scaled`) : s.output
  nodes.push(node(`${s.label}_output_scale_mul`, 'Mul', [cast, scale], [scaled]))
  if (s.bias) nodes.push(node(`${s.label}_bias_add`, 'Add', [scaled, s.bias], [s.output]))
  return nodes
}

function writeFused(s: LayerSpec, ctx: WriteContext): Node[] {
  const fuseBias = s.bias !== undefined && s.biasFusable === true
  const inputs = [s.input, s.weight.codes, s.weight.scale, s.weight.zeroPoint, ...(fuseBias ? [s.bias!] : [])]
  const product = s.bias && !fuseBias ? ctx.fresh(`${s.output}_matmul`) : s.output
  const nodes = [node(`${s.label}_quant`, 'DynamicQuantizeMatMul', inputs, [product], new Map(), MS_DOMAIN)]
  if (s.bias && !fuseBias) nodes.push(node(`${s.label}_bias_add`, 'Add', [product, s.bias], [s.output]))
  return nodes
}

/** The nodes computing `spec.output` from `spec.input` with the quantized weight. */
export function writeLayer(format: DynamicFormat, spec: LayerSpec, ctx: WriteContext): Node[] {
  return format === 'fused' && spec.kind === 'matmul' ? writeFused(spec, ctx) : writeStandard(spec, ctx)
}
