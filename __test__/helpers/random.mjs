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
