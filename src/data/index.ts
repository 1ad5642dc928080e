// Calibration and evaluation data sources: see dataSource.ts.
export { openDataSource, type DataSource, type DataSourceKind, type DataSourceOptions, type DataSourceSpec } from './dataSource.js'
export type { ImagePreprocessOptions } from './imagePreprocess.js'
export { IMAGE_EXTENSIONS, listImages } from './imageSource.js'
export type { DataModuleContext } from './moduleSource.js'
export type { ModelInputs, PlainFeeds } from './modelInputs.js'
export { parseNpyHeader, type NpyHeader } from './npy.js'
export { readLabels } from './labels.js'
