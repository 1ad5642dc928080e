// Which ONNX integer type carries a quantizer's grid, and what QuantizeLinear/DequantizeLinear
// need for it (opset, packing). DECISIONS: QDQ expresses 4, 8 and 16 bits; other grids are
// simulation-only (a float Clip before QuantizeLinear narrows the range).
import { DataType } from '../onnx/elementType.js'

export interface GridType {
  dataType: number
  name: 'int4' | 'uint4' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32'
  /** The full range of the type (QuantizeLinear saturates to it). */
  min: number
  max: number
  /** Lowest ai.onnx opset with QuantizeLinear/DequantizeLinear for the type. */
  opset: number
}

const TYPES: GridType[] = [
  { dataType: DataType.INT4, name: 'int4', min: -8, max: 7, opset: 21 },
  { dataType: DataType.UINT4, name: 'uint4', min: 0, max: 15, opset: 21 },
  { dataType: DataType.INT8, name: 'int8', min: -128, max: 127, opset: 13 },
  { dataType: DataType.UINT8, name: 'uint8', min: 0, max: 255, opset: 13 },
  { dataType: DataType.INT16, name: 'int16', min: -32768, max: 32767, opset: 21 },
  { dataType: DataType.UINT16, name: 'uint16', min: 0, max: 65535, opset: 21 },
  { dataType: DataType.INT32, name: 'int32', min: -2147483648, max: 2147483647, opset: 13 },
]

/** The smallest type holding [qmin, qmax], signed for grids with negative values. */
export function gridType(qmin: number, qmax: number): GridType | undefined {
  return TYPES.find((t) => t.min <= qmin && qmax <= t.max && (qmin < 0) === (t.min < 0))
}

/** True when the grid is the whole type: QuantizeLinear's saturation then equals the grid's clamp. */
export function gridIsWholeType(qmin: number, qmax: number): boolean {
  const t = gridType(qmin, qmax)
  return t !== undefined && t.min === qmin && t.max === qmax
}
