// The conversions opsetTable.ts refers to: each takes a node written for an op's older version
// and returns the nodes that compute the same thing under the op's next version (or the reason
// it cannot). A conversion may edit the node it is given (it belongs to the pass's clone) and
// may add constants through the context; it must keep the node's output names, so that nothing
// downstream changes. Sources: the ONNX operator changelog (onnx 1.19 docs/Changelog.md) for what
// changed, and ONNX Runtime's CPU kernels where the old behaviour was only defined by them.
import { DataType, elementType } from '../../onnx/elementType.js'
import { attrFloat, attrInt, attrString } from '../attributes.js'
import type { Node } from '../model.js'
import { floatScalar, intAttr, stringAttr, type StepContext } from './stepContext.js'

/** Replacement nodes, or why the node cannot be converted. */
export type StepResult = Node[] | string

export type Convert = (node: Node, ctx: StepContext) => StepResult

const q = JSON.stringify

/** An INTS attribute as written (a bigint where the number is not exact, e.g. INT64_MAX ends). */
function rawInts(node: Node, key: string): (number | bigint)[] | undefined {
  const a = node.attributes.get(key)
  if (a === undefined) return undefined
  if (a.type !== 'ints') throw new TypeError(`node ${q(node.name)} (${node.opType}) attribute ${q(key)}: expected ints, found ${a.type}`)
  return a.value
}

function typeName(t: number): string {
  try {
    return elementType(t).name
  } catch {
    return String(t)
  }
}

/** Drops trailing omitted ('') optional inputs, which ONNX allows but some readers trip on. */
function trimInputs(inputs: string[]): string[] {
  const out = [...inputs]
  while (out.length > 0 && out[out.length - 1] === '') out.pop()
  return out
}

/**
 * Moves an INTS attribute to an int64 input at `index` (Squeeze/Unsqueeze/ReduceSum/Split at 13,
 * the other Reduce ops at 18, Slice's starts/ends/axes at 10, TopK's k at 10). An absent attribute
 * becomes an omitted input, which every one of these ops defines the same way as the absent attribute.
 */
export function attributeToInput(key: string, index: number, opts: { scalarAsList?: boolean } = {}): Convert {
  return (node, ctx) => {
    const a = node.attributes.get(key)
    node.attributes.delete(key)
    const inputs = [...node.inputs]
    while (inputs.length < index) inputs.push('')
    if (a !== undefined) {
      let values: (number | bigint)[]
      if (a.type === 'ints') values = a.value
      else if (a.type === 'int' && opts.scalarAsList) values = [a.value]
      else return `attribute ${q(key)} is ${a.type}, expected ${opts.scalarAsList ? 'int' : 'ints'}`
      inputs[index] = ctx.int64s(`${node.name || node.opType}_${key}`, values)
    } else if (inputs.length === index) {
      inputs.push('')
    }
    node.inputs = trimInputs(inputs)
    return [node]
  }
}

/** Slice-10: starts, ends and axes attributes become inputs 1, 2, 3 (steps stays omitted = all 1). */
export const sliceInputs: Convert = (node, ctx) => {
  const starts = rawInts(node, 'starts')
  const ends = rawInts(node, 'ends')
  const axes = rawInts(node, 'axes')
  if (!starts || !ends) return 'Slice-1 needs its starts and ends attributes'
  for (const k of ['starts', 'ends', 'axes']) node.attributes.delete(k)
  const base = node.name || 'Slice'
  node.inputs = [
    node.inputs[0]!,
    ctx.int64s(`${base}_starts`, starts),
    ctx.int64s(`${base}_ends`, ends),
    ...(axes ? [ctx.int64s(`${base}_axes`, axes)] : []),
  ]
  return [node]
}

/**
 * Softmax/LogSoftmax/Hardmax-13: the op now works along one axis (default −1) instead of
 * coercing the input to 2-D at `axis` (default 1). The two agree when `axis` is the last
 * dimension; otherwise the old result is Flatten(axis) → op over axis 1 → Reshape to the input's
 * shape, which computes the same numbers in the same order.
 */
export const softmaxAxis: Convert = (node, ctx) => {
  const axis = attrInt(node, 'axis', 1)
  const x = node.inputs[0]!
  const rank = ctx.rank(x)
  if (rank !== undefined) {
    const a = axis < 0 ? axis + rank : axis
    if (a === rank - 1) {
      node.attributes.set('axis', intAttr(a))
      return [node]
    }
  }
  const y = node.outputs[0]!
  const shape = ctx.freshName(`${x}_shape`)
  const flat = ctx.freshName(`${x}_flat_${axis}`)
  const y2d = ctx.freshName(`${y}_2d`)
  const op = ctx.makeNode(node, node.opType, [flat], [y2d], { axis: intAttr(1) })
  op.name = node.name
  return [
    ctx.makeNode(node, 'Shape', [x], [shape]),
    ctx.makeNode(node, 'Flatten', [x], [flat], { axis: intAttr(axis) }),
    op,
    ctx.makeNode(node, 'Reshape', [y2d, shape], [y]),
  ]
}

/** Clip-11: min and max attributes become inputs of the input's type (Clip-6 took float types only). */
export const clipInputs: Convert = (node, ctx) => {
  const min = attrFloat(node, 'min')
  const max = attrFloat(node, 'max')
  node.attributes.delete('min')
  node.attributes.delete('max')
  if (min === undefined && max === undefined) return [node]
  const x = node.inputs[0]!
  const t = ctx.elemType(x)
  if (t === undefined) return `cannot tell the element type of ${q(x)}, which Clip-11's min/max inputs must match`
  const lo = min === undefined ? undefined : floatScalar(t, min)
  const hi = max === undefined ? undefined : floatScalar(t, max)
  if ((min !== undefined && !lo) || (max !== undefined && !hi)) return `Clip on ${typeName(t)} is not handled (float only)`
  const base = node.name || 'Clip'
  node.inputs = trimInputs([x, lo ? ctx.addConstant(`${base}_min`, lo) : '', hi ? ctx.addConstant(`${base}_max`, hi) : ''])
  return [node]
}

/** Pad-11: pads and value attributes become the pads and constant_value inputs. */
export const padInputs: Convert = (node, ctx) => {
  const pads = rawInts(node, 'pads')
  if (!pads) return 'Pad-2 needs its pads attribute'
  const mode = attrString(node, 'mode') ?? 'constant'
  const value = attrFloat(node, 'value', 0)
  node.attributes.delete('pads')
  node.attributes.delete('value')
  const base = node.name || 'Pad'
  const inputs = [node.inputs[0]!, ctx.int64s(`${base}_pads`, pads)]
  if (mode === 'constant' && value !== 0) {
    const x = node.inputs[0]!
    const t = ctx.elemType(x)
    if (t === undefined) return `cannot tell the element type of ${q(x)}, which Pad-11's constant_value must match`
    const v = floatScalar(t, value)
    if (!v) return `Pad on ${typeName(t)} is not handled (float only)`
    inputs.push(ctx.addConstant(`${base}_value`, v))
  }
  node.inputs = inputs
  return [node]
}

/** Split-18: with no split sizes, the number of outputs must be given as num_outputs. */
export const splitNumOutputs: Convert = (node) => {
  if (!node.inputs[1]) {
    node.inputs = [node.inputs[0]!]
    node.attributes.set('num_outputs', intAttr(node.outputs.length))
  }
  return [node]
}

/** Dropout-12: ratio becomes an input (a float scalar); at inference the op is an identity either way. */
export const dropoutRatio: Convert = (node, ctx) => {
  const ratio = attrFloat(node, 'ratio')
  node.attributes.delete('ratio')
  if (ratio !== undefined) {
    node.inputs = [node.inputs[0]!, ctx.addConstant(`${node.name || 'Dropout'}_ratio`, { dataType: DataType.FLOAT, dims: [], data: Float32Array.of(ratio) })]
  }
  return [node]
}

/** Dropout-10: the mask output becomes bool (it had the data's type); fine when nobody reads it. */
export const dropoutMask: Convert = (node, ctx) => {
  const mask = node.outputs[1]
  if (mask && ctx.isUsed(mask)) return `its mask output ${q(mask)} is used, and Dropout-10 changes the mask's type to bool`
  return [node]
}

/** BatchNormalization-9: `spatial` is gone; only spatial = 1 (the default) keeps its meaning. */
export const batchNormSpatial: Convert = (node) => {
  const spatial = attrInt(node, 'spatial', 1)
  if (spatial !== 1) return 'spatial = 0 (per-activation statistics) has no BatchNormalization-9 equivalent'
  node.attributes.delete('spatial')
  return [node]
}

/**
 * BatchNormalization-14: the optional outputs become the running statistics of training_mode = 1.
 * Before 14, a node listing its optional outputs (mean, var, saved_mean, saved_var) is in training
 * mode and normalizes with the batch's statistics (ONNX Runtime does so too), which is not an
 * inference model; only single-output nodes carry over unchanged.
 */
export const batchNormOutputs: Convert = (node) => {
  const extra = node.outputs.slice(1).filter((o) => o !== '')
  if (extra.length > 0) {
    return `it lists the training-mode outputs ${extra.map((o) => q(o)).join(', ')} (normalizes with batch statistics); export the model for inference`
  }
  node.outputs = [node.outputs[0]!]
  return [node]
}

/** Upsample-9: scales attribute becomes an input. */
export const upsampleScalesInput: Convert = (node, ctx) => {
  const a = node.attributes.get('scales')
  if (a?.type !== 'floats') return 'Upsample-7 needs its scales attribute'
  node.attributes.delete('scales')
  node.inputs = [node.inputs[0]!, ctx.addConstant(`${node.name || 'Upsample'}_scales`, { dataType: DataType.FLOAT, dims: [a.value.length], data: Float32Array.from(a.value) })]
  return [node]
}

/** Upsample is deprecated at 10; Resize-10 has the same inputs, attribute and kernel. */
export const upsampleToResize: Convert = (node) => {
  node.opType = 'Resize'
  return [node]
}

/**
 * Resize-11: roi input inserted before scales; coordinate_transformation_mode and nearest_mode
 * appear, with defaults (half_pixel, round_prefer_floor) that differ from Resize-10's fixed
 * behaviour. Resize-10 is `asymmetric`; its nearest rounding (ONNX Runtime's "simple" mode,
 * upsamplebase.h) truncates when upsampling and rounds up when downsampling an axis, so it maps
 * to nearest_mode floor or ceil, which needs constant scales that all go the same way.
 */
export const resizeRoi: Convert = (node, ctx) => {
  const mode = attrString(node, 'mode') ?? 'nearest'
  const [x, scales] = node.inputs
  if (!scales) return 'Resize-10 needs its scales input'
  node.attributes.set('coordinate_transformation_mode', stringAttr('asymmetric'))
  if (mode === 'nearest') {
    const s = ctx.constant(scales)
    if (!s || s.dataType !== DataType.FLOAT) return `nearest rounding depends on the scales ${q(scales)}, which are not a float constant`
    const moving = Array.from(s.data as Float32Array).filter((v) => v !== 1)
    const up = moving.every((v) => v > 1)
    const down = moving.every((v) => v < 1)
    if (!up && !down) return `scales ${q(scales)} up- and downsample different axes; Resize-10's rounding has no single nearest_mode`
    node.attributes.set('nearest_mode', stringAttr(up ? 'floor' : 'ceil'))
  }
  const roi = ctx.addConstant(`${node.name || 'Resize'}_roi`, { dataType: DataType.FLOAT, dims: [0], data: new Float32Array(0) })
  node.inputs = [x!, roi, scales]
  return [node]
}

/** Resize-13 drops coordinate_transformation_mode tf_half_pixel_for_nn. */
export const resizeNoTfHalfPixel: Convert = (node) => {
  if (attrString(node, 'coordinate_transformation_mode') === 'tf_half_pixel_for_nn') {
    return 'coordinate_transformation_mode tf_half_pixel_for_nn was removed at Resize-13'
  }
  return [node]
}
