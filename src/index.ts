// quantkit's public API.
export * from './errors.js'
export {
  affine, type AffineOptions, type AsyncAffineOptions, type QuantizeDequantizeOptions, type AsyncQuantizeDequantizeOptions, type IntArray, type Scale, type Offset } from './affine.js'
export { computeEncoding, type Encoding, type EncodingOptions } from './encoding.js'
export {
  MinMaxObserver, HistogramObserver,
  type CalibrationScheme, type HistogramEncodingOptions, type HistogramObserverOptions, type MinMaxObserverOptions,
} from './observers.js'
export { compareTensors, type ErrorStats } from './metrics.js'
export { loadModel, loadModelSync, type LoadOptions } from './onnx/loadModel.js'
export { saveModel, modelToBytes, type SaveOptions } from './onnx/saveModel.js'
export { resolveModelSource, isModel, type ModelSource } from './onnx/modelSource.js'
export type { Model, Graph, Node, ValueInfo, AttributeValue, Dim, OpsetId } from './graph/model.js'
export type { Tensor } from './onnx/tensor.js'
export { prepareModel, type PrepareOptions, type PrepareResult } from './graph/prepare/prepareModel.js'
export type { PrepareReport, FoldedBatchNorm } from './graph/prepare/report.js'
export { PREPARE_PASS_NAMES, type PreparePassName } from './graph/prepare/passes.js'
export { topologicalOrder } from './graph/topologicalOrder.js'
export { graphIndex, type GraphIndex, type ValueUse, type ValueProducer } from './graph/graphIndex.js'
export { insertNodeOnEdge, replaceInitializer, removeNode, renameValue, addGraphOutput, pruneUnusedInitializers, type InsertOptions, type RemoveOptions } from './graph/graphEdits.js'
export { validateGraph, findGraphProblems } from './graph/validateGraph.js'
export { opHistogram } from './graph/opHistogram.js'
export { cloneModel, opsetVersion } from './graph/model.js'
export * from './config/index.js'
