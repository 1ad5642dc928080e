// Quantsim configs: AIMET's JSON format, quantkit's presets, resolution for placement, and the
// rules aimet-onnx applies in code to every config.
export { validateQuantsimConfig, formatPath, type ValidatedConfig } from './validate.js'
export { resolveConfig, readConfigFile, type ResolvedConfig, type ResolvedConfigSummary, type OpRule, type ParamRule } from './resolve.js'
export { PRESET_NAMES, PRESET_AIMET_FILES, PRESET_QUANTIZER_DEFAULTS, presetConfig, presetQuantizerDefaults, isPresetName, type PresetName } from './presets/index.js'
export { resolveQuantizerDefaults, QUANT_TYPES, type QuantType, type QuantizerDtype, type QuantizerDefaultsOptions } from './quantizerDefaults.js'
export { editDistance, nearest, suggestionDistance } from './nearest.js'
export * as aimetRules from './aimetRules.js'
export type * from './format.js'
export { CONFIG_KEYS } from './format.js'
