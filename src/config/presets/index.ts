// The preset names quantkit accepts for `config`, each an AIMET config written out as data.
// Names are aimet-onnx 2.42's aliases (`common/quantsim_config/quantsim_config.py`
// `_config_file_aliases`) plus quantkit's `per_channel` and `per_tensor` (DECISIONS.md), and
// quantkit's ONNX Runtime CPU presets `ort_x86`, `ort_x86_vnni`, `ort_arm` (docs/ort-cpu.md).

import type { QuantsimConfigJson } from '../format.js'
import { PER_CHANNEL, PER_TENSOR } from './defaultConfigs.js'
import { ENPU_V6, ENPU_V7 } from './enpu.js'
import { HTP_V66, HTP_V68, HTP_V69, HTP_V73, HTP_V75, HTP_V79, HTP_V81, HTP_V85 } from './htp.js'
import { ORT_ARM, ORT_X86, ORT_X86_VNNI } from './ortCpu.js'

export const PRESET_NAMES = [
  'default', 'per_channel', 'per_tensor',
  'htp_v66', 'htp_v68', 'htp_v69', 'htp_v73', 'htp_v75', 'htp_v79', 'htp_v81', 'htp_v85',
  'enpu_v6', 'enpu_v7',
  'ort_x86', 'ort_x86_vnni', 'ort_arm',
] as const

export type PresetName = (typeof PRESET_NAMES)[number]

const PRESETS: Record<PresetName, QuantsimConfigJson> = {
  default: PER_CHANNEL,
  per_channel: PER_CHANNEL,
  per_tensor: PER_TENSOR,
  htp_v66: HTP_V66,
  htp_v68: HTP_V68,
  htp_v69: HTP_V69,
  htp_v73: HTP_V73,
  htp_v75: HTP_V75,
  htp_v79: HTP_V79,
  htp_v81: HTP_V81,
  htp_v85: HTP_V85,
  enpu_v6: ENPU_V6,
  enpu_v7: ENPU_V7,
  ort_x86: ORT_X86,
  ort_x86_vnni: ORT_X86_VNNI,
  ort_arm: ORT_ARM,
}

/**
 * The aimet-onnx 2.42 file each preset stands for (relative to
 * `aimet_onnx/common/quantsim_config/`). AIMET also resolves these bare file names, and so does
 * quantkit, to the same preset. quantkit's own ONNX Runtime presets have no AIMET file.
 */
export const PRESET_AIMET_FILES: Readonly<Partial<Record<PresetName, string>>> = {
  default: 'default_config_per_channel.json',
  per_channel: 'default_config_per_channel.json',
  per_tensor: 'default_config.json',
  htp_v66: 'htp_quantsim_config_v66.json',
  htp_v68: 'htp_quantsim_config_v68.json',
  htp_v69: 'htp_quantsim_config_v69.json',
  htp_v73: 'htp_quantsim_config_v73.json',
  htp_v75: 'htp_quantsim_config_v75.json',
  htp_v79: 'htp_quantsim_config_v79.json',
  htp_v81: 'htp_quantsim_config_v81.json',
  htp_v85: 'htp_quantsim_config_v85.json',
  enpu_v6: 'enpu_quantsim_config_v6.json',
  enpu_v7: 'enpu_quantsim_config_v7.json',
}

/** AIMET file names that resolve to a preset: each preset's file, and the byte-identical `_per_channel_linear` copies. */
export const AIMET_FILE_NAME_TO_PRESET: ReadonlyMap<string, PresetName> = new Map<string, PresetName>([
  ...(Object.entries(PRESET_AIMET_FILES) as [PresetName, string][])
    .filter(([name, file]) => name !== 'per_channel' && file !== undefined)
    .map(([name, file]) => [file, name] as [string, PresetName]),
  ...(['69', '73', '75', '79', '81'] as const).map((v) => [`htp_quantsim_config_v${v}_per_channel_linear.json`, `htp_v${v}` as PresetName] as [string, PresetName]),
])

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name)
}

/**
 * A preset as an AIMET config file would hold it ("True"/"False" strings): write it with
 * JSON.stringify and aimet-onnx reads it. A fresh copy each call.
 */
export function presetConfig(name: PresetName): QuantsimConfigJson {
  return structuredClone(PRESETS[name])
}

/**
 * Quantizer defaults a preset implies beyond what AIMET's format can say. `ort_x86` means ONNX
 * Runtime's `reduce_range`: 7-bit weights (grid [-64, 63] in an int8 tensor), so that the u8×s8
 * pair sums of VPMADDUBSW on AVX2/AVX-512 without VNNI cannot saturate int16 (255·64·2 = 32640).
 * QuantSim applies these only when the caller sets neither `paramType` nor `paramBitwidth`.
 */
export const PRESET_QUANTIZER_DEFAULTS: Readonly<Partial<Record<PresetName, { paramBitwidth?: number; activationBitwidth?: number }>>> = {
  ort_x86: { paramBitwidth: 7 },
}

/** What a preset implies for QuantSim's quantizer defaults (empty for most presets). */
export function presetQuantizerDefaults(name: PresetName | undefined): { paramBitwidth?: number; activationBitwidth?: number } {
  return name === undefined ? {} : { ...PRESET_QUANTIZER_DEFAULTS[name] }
}
