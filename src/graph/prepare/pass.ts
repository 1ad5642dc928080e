// What a preparation pass sees: the model being prepared (a clone it may edit in place), the
// report it adds to, and a place to say what it refused and why.
import type { Model } from '../model.js'
import type { PrepareReport } from './report.js'

export interface PassContext {
  /** The clone being prepared; passes edit its main graph in place. */
  readonly model: Model
  readonly report: PrepareReport
  /** Records why something that looked foldable was left alone. */
  note(message: string): void
  /** Initializers a pass stopped reading; prepareModel deletes those nobody reads any more. */
  release(...names: string[]): void
}

export interface PreparePass {
  readonly name: string
  /** Returns how many changes it made (prepareModel repeats the folding passes until none changes anything). */
  run(ctx: PassContext): number
}
