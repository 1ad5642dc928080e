// SQNR over many batches: the ratio of summed signal to summed noise, Σx² / Σ(x − x̂)², not a mean
// of per-batch dB values (a batch of near-silence would otherwise weigh as much as a loud one).
// The sums come from compareTensors (Rust, f64 accumulation): noise = mse · n, and the signal from
// the batch's dB value, or, when the batch is exact (infinite dB), from comparing against zeros.
import { compareTensors } from '../metrics.js'

export class SqnrAccumulator {
  signal = 0
  noise = 0
  /** Elements compared (finite on both sides). */
  count = 0
  /** Elements left out because either side was NaN or ±inf. */
  nonFinite = 0

  add(reference: Float32Array, other: Float32Array): void {
    const s = compareTensors(reference, other)
    const n = reference.length - s.nonFinite
    const noise = s.mse * n
    const signal = noise === 0
      ? (n > 0 ? compareTensors(reference, new Float32Array(reference.length)).mse * n : 0)
      : noise * 10 ** (s.sqnrDb / 10)
    this.signal += signal
    this.noise += noise
    this.count += n
    this.nonFinite += s.nonFinite
  }

  /** 10·log10(Σx² / Σ(x − x̂)²); Infinity when the two never differed. */
  get sqnrDb(): number {
    return this.noise === 0 ? Infinity : 10 * Math.log10(this.signal / this.noise)
  }
}
