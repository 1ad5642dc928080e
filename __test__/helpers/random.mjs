// mulberry32: a small seeded PRNG, uniform in [0, 1). Tests and benches use it so that a failure
// can be reproduced from its seed.
export function random(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** n values uniform in [−scale, scale). */
export function randoms(n, seed, scale = 1) {
  const r = random(seed)
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale)
}

/**
 * `n` batches `{ x }` of `samples`×`channels`×`size`×`size` images whose channels share a smooth
 * component (as real images do), so that rounding weights to nearest is not optimal (AdaRound tests).
 */
export function correlatedImageBatches(n, seed, { samples, channels, size }) {
  const g = random(seed)
  const [N, C, H] = [samples, channels, size]
  return Array.from({ length: n }, () => {
    const data = new Float32Array(N * C * H * H)
    for (let s = 0; s < N; s++) {
      const base = Float32Array.from({ length: (H + 1) * (H + 1) }, () => g() * 2 - 1)
      for (let c = 0; c < C; c++) {
        const k = 0.5 + g()
        for (let y = 0; y < H; y++) for (let x = 0; x < H; x++) {
          const smooth = (base[y * (H + 1) + x] + base[y * (H + 1) + x + 1] + base[(y + 1) * (H + 1) + x] + base[(y + 1) * (H + 1) + x + 1]) / 4
          data[((s * C + c) * H + y) * H + x] = k * smooth + 0.2 * (g() * 2 - 1)
        }
      }
    }
    return { x: { type: 'float32', data, dims: [N, C, H, H] } }
  })
}
