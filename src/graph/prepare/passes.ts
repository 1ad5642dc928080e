// The preparation passes in the order prepareModel runs them. The first three run once; the folds
// repeat until neither changes anything, since each can expose work for the other
// (ConvTranspose → Add → BatchNormalization in PP-OCRv4 det: the Add folds, then the BN can).
import { foldBatchNorms } from './bnFold.js'
import { constantsToInitializers } from './constantsToInitializers.js'
import { foldConstants } from './foldConstants.js'
import { foldMulAdd } from './mulAddFold.js'
import type { PreparePass } from './pass.js'
import { removeIdentities } from './removeIdentities.js'

export const SETUP_PASSES: readonly PreparePass[] = [constantsToInitializers, removeIdentities, foldConstants]
export const FOLD_PASSES: readonly PreparePass[] = [foldBatchNorms, foldMulAdd]

export type PreparePassName = 'constantsToInitializers' | 'removeIdentities' | 'foldConstants' | 'foldBatchNorms' | 'foldMulAdd'

export const PREPARE_PASS_NAMES: readonly PreparePassName[] = [...SETUP_PASSES, ...FOLD_PASSES].map((p) => p.name as PreparePassName)
