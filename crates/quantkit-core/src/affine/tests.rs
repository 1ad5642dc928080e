//! Kernels against an independent scalar reference, hand-computed cases, the qdq identity and
//! every error. The reference follows AIMET's formula order (round, subtract offset, clamp) in
//! f64 with `round_ties_even`; only the quotient x / scale is an f32 division, because that is the
//! defined semantics (ONNX Runtime divides in f32).

use super::*;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

fn ref_quantize(x: f32, s: f32, off: i32, qmin: i64, qmax: i64) -> i64 {
    let v = (x / s) as f64;
    if v.is_nan() {
        return qmin;
    }
    let q = v.round_ties_even() - off as f64;
    let q = if q < qmin as f64 {
        qmin as f64
    } else if q > qmax as f64 {
        qmax as f64
    } else {
        q
    };
    q as i64
}

fn ref_dequantize(q: i64, s: f32, off: i32) -> f32 {
    // One rounding to f32 for the integer, then the f64 product of two 24-bit mantissas is exact,
    // so one more rounding gives the correctly rounded f32 product.
    let a = (q + off as i64) as f32;
    (a as f64 * s as f64) as f32
}

/// Parameter index of flat element i, from its multi-index: independent of the layout walk.
fn ref_param_index(shape: &[usize], g: Granularity, i: usize) -> usize {
    let (axis, block) = match g {
        Granularity::PerTensor => return 0,
        Granularity::PerChannel { axis } => (axis, None),
        Granularity::PerBlock { axis, block_size } => (axis, Some(block_size)),
    };
    let mut idx = vec![0usize; shape.len()];
    let mut rem = i;
    for d in (0..shape.len()).rev() {
        idx[d] = rem % shape[d];
        rem /= shape[d];
    }
    match block {
        None => idx[axis],
        Some(b) => {
            let mut sshape = shape.to_vec();
            sshape[axis] = shape[axis].div_ceil(b);
            idx[axis] /= b;
            idx.iter().zip(&sshape).fold(0, |acc, (&k, &n)| acc * n + k)
        }
    }
}

fn n_params(shape: &[usize], g: Granularity) -> usize {
    match g {
        Granularity::PerTensor => 1,
        Granularity::PerChannel { axis } => shape[axis],
        Granularity::PerBlock { axis, block_size } => {
            let mut s = shape.to_vec();
            s[axis] = s[axis].div_ceil(block_size);
            s.iter().product()
        }
    }
}

/// Data spread over the grid and beyond, with exact ties, specials and huge values.
fn gen_data(rng: &mut XorShift, n: usize, span: f64, specials: bool) -> Vec<f32> {
    (0..n)
        .map(|_| match rng.below(if specials { 40 } else { 30 }) {
            0 => (rng.range(-40, 40) as f64 + 0.5) as f32, // a tie when scale is 1 or 2^k
            1 => 0.0,
            2 => -0.0,
            3 => f32::from_bits(rng.range(1, 1000) as u32), // subnormal
            4 => 1e30 * if rng.below(2) == 0 { 1.0 } else { -1.0 },
            30 => f32::NAN,
            31 => f32::INFINITY,
            32 => f32::NEG_INFINITY,
            _ => ((rng.unit() * 2.0 - 1.0) * span) as f32,
        })
        .collect()
}

fn gen_scales(rng: &mut XorShift, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let e = rng.range(-12, 1) as i32;
            if rng.below(3) == 0 {
                2f32.powi(e) // power of two: ties in the data stay ties
            } else {
                (2f64.powi(e) * (1.0 + rng.unit())) as f32
            }
        })
        .collect()
}

/// Offsets whose zero points mostly lie on the grid, sometimes off it.
fn gen_offsets(rng: &mut XorShift, n: usize, qmin: i64, qmax: i64) -> Vec<i32> {
    (0..n)
        .map(|_| {
            let w = qmax - qmin;
            (-rng.range(qmin - w / 4, qmax + w / 4)) as i32
        })
        .collect()
}

fn check_against_reference<T: QInt + Into<i64>>(
    rng: &mut XorShift,
    shape: &[usize],
    g: Granularity,
    qmin: i64,
    qmax: i64,
    what: &str,
) {
    let len: usize = shape.iter().product();
    let np = n_params(shape, g);
    let scale = gen_scales(rng, np);
    let offset = if rng.below(2) == 0 {
        gen_offsets(rng, 1, qmin, qmax)
    } else {
        gen_offsets(rng, np, qmin, qmax)
    };
    let spec = AffineSpec {
        shape,
        granularity: g,
        scale: &scale,
        offset: &offset,
        qmin,
        qmax,
    };
    let span = (qmax - qmin) as f64 * 1.3 * 2.0f64.powi(-4);
    let x = gen_data(rng, len, span, true);

    let mut q = vec![T::default(); len];
    quantize(&x, &spec, &mut q).unwrap();
    let mut dq = vec![0f32; len];
    dequantize(&q, &spec, &mut dq).unwrap();
    let mut qdq = vec![0f32; len];
    quantize_dequantize(&x, &spec, &mut qdq).unwrap();
    let mut inplace = x.clone();
    quantize_dequantize_in_place(&mut inplace, &spec).unwrap();

    for i in 0..len {
        let p = ref_param_index(shape, g, i);
        let (s, o) = (
            scale[p],
            if offset.len() == 1 {
                offset[0]
            } else {
                offset[p]
            },
        );
        let rq = ref_quantize(x[i], s, o, qmin, qmax);
        let rdq = ref_dequantize(rq, s, o);
        let ctx = || {
            format!(
                "{what} {shape:?} {g:?} grid [{qmin},{qmax}] i={i} x={:e} s={s:e} off={o}",
                x[i]
            )
        };
        assert_eq!(q[i].into(), rq, "quantize {}", ctx());
        assert_eq!(dq[i].to_bits(), rdq.to_bits(), "dequantize {}", ctx());
        assert_eq!(qdq[i].to_bits(), rdq.to_bits(), "qdq {}", ctx());
        assert_eq!(
            inplace[i].to_bits(),
            rdq.to_bits(),
            "qdq in place {}",
            ctx()
        );
    }
}

fn check_dispatch(
    rng: &mut XorShift,
    t: IntType,
    shape: &[usize],
    g: Granularity,
    qmin: i64,
    qmax: i64,
    what: &str,
) {
    match t {
        IntType::I8 => check_against_reference::<i8>(rng, shape, g, qmin, qmax, what),
        IntType::U8 => check_against_reference::<u8>(rng, shape, g, qmin, qmax, what),
        IntType::I16 => check_against_reference::<i16>(rng, shape, g, qmin, qmax, what),
        IntType::U16 => check_against_reference::<u16>(rng, shape, g, qmin, qmax, what),
        IntType::I32 => check_against_reference::<i32>(rng, shape, g, qmin, qmax, what),
    }
}

/// (shape, granularity) cases; `big` ones exceed the threading threshold, with rows and blocks
/// that do not divide the chunk size, so chunks start inside rows.
fn layouts(big: bool) -> Vec<(Vec<usize>, Granularity)> {
    let k = if big { 7 } else { 1 };
    vec![
        (vec![1000 * k + 3], Granularity::PerTensor),
        (vec![2, 3, 5 * k], Granularity::PerTensor),
        (vec![7, 13, 11 * k], Granularity::PerChannel { axis: 0 }),
        (vec![3 * k, 17, 19], Granularity::PerChannel { axis: 1 }),
        (vec![37 * k, 29], Granularity::PerChannel { axis: 1 }),
        (vec![5, 1, 41 * k], Granularity::PerChannel { axis: 1 }),
        (
            vec![11 * k, 100],
            Granularity::PerBlock {
                axis: 1,
                block_size: 32,
            },
        ), // partial last block
        (
            vec![13 * k, 96],
            Granularity::PerBlock {
                axis: 1,
                block_size: 32,
            },
        ),
        (
            vec![3, 50, 7 * k],
            Granularity::PerBlock {
                axis: 1,
                block_size: 16,
            },
        ),
        (
            vec![50, 9 * k],
            Granularity::PerBlock {
                axis: 0,
                block_size: 7,
            },
        ),
        (
            vec![2, 5, 3 * k],
            Granularity::PerBlock {
                axis: 1,
                block_size: 64,
            },
        ), // one block
    ]
    .into_iter()
    .map(|(mut shape, g)| {
        if big {
            // Grow the dimension the layout does not key on until the tensor crosses the threshold.
            while shape.iter().product::<usize>() <= layout::PAR_MIN {
                shape[0] *= 2;
                if let Granularity::PerChannel { axis: 0 } | Granularity::PerBlock { axis: 0, .. } =
                    g
                {
                    let last = shape.len() - 1;
                    shape[last] *= 2;
                    shape[0] /= 2;
                }
            }
        }
        (shape, g)
    })
    .collect()
}

#[test]
fn matches_reference_all_bitwidths_and_layouts() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for big in [false, true] {
        for bits in 2..=16u32 {
            for signed in [true, false] {
                let (qmin, qmax) = if signed {
                    (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
                } else {
                    (0, (1i64 << bits) - 1)
                };
                let t = int_type_for(qmin, qmax).unwrap();
                for (shape, g) in layouts(big) {
                    if big && bits % 5 != 0 && !matches!(bits, 4 | 8 | 16) {
                        continue; // the large cases for a representative set of bitwidths
                    }
                    check_dispatch(&mut rng, t, &shape, g, qmin, qmax, "smallest type");
                    if !big {
                        // The same grid stored in the widest type.
                        check_dispatch(&mut rng, IntType::I32, &shape, g, qmin, qmax, "as i32");
                    }
                }
            }
        }
    }
}

#[test]
fn matches_reference_int32_grid() {
    let mut rng = XorShift(42);
    let (qmin, qmax) = (i32::MIN as i64, i32::MAX as i64);
    for big in [false, true] {
        for (shape, g) in layouts(big) {
            let len: usize = shape.iter().product();
            let np = n_params(&shape, g);
            let scale = gen_scales(&mut rng, np);
            let offset = [0];
            let spec = AffineSpec {
                shape: &shape,
                granularity: g,
                scale: &scale,
                offset: &offset,
                qmin,
                qmax,
            };
            // Values spanning the whole int32 range after division, plus specials.
            let mut x = gen_data(&mut rng, len, 3e9 * 2f64.powi(-12), true);
            for v in x.iter_mut().step_by(3) {
                *v = ((rng.unit() * 2.0 - 1.0) * 2.2e9) as f32;
            }
            let mut q = vec![0i32; len];
            quantize(&x, &spec, &mut q).unwrap();
            let mut dq = vec![0f32; len];
            dequantize(&q, &spec, &mut dq).unwrap();
            let mut qdq = vec![0f32; len];
            quantize_dequantize(&x, &spec, &mut qdq).unwrap();
            for i in 0..len {
                let s = scale[ref_param_index(&shape, g, i)];
                let rq = ref_quantize(x[i], s, 0, qmin, qmax);
                assert_eq!(q[i] as i64, rq, "i={i} x={} s={s}", x[i]);
                assert_eq!(dq[i].to_bits(), ref_dequantize(rq, s, 0).to_bits(), "i={i}");
                assert_eq!(qdq[i].to_bits(), dq[i].to_bits(), "i={i}");
            }
        }
    }
}

#[test]
fn wide_offsets_take_the_exact_path() {
    // An 8-bit grid with an offset far beyond 2^22 must still be exact (f64 path).
    let mut rng = XorShift(7);
    for &(qmin, qmax, off) in &[
        (0i64, 255i64, -100_000_000i32),
        (-128, 127, 50_000_000),
        (0, 65535, 4_194_300),
    ] {
        let shape = [5000usize];
        let scale = [0.37f32];
        let offset = [off];
        let spec = AffineSpec {
            shape: &shape,
            granularity: Granularity::PerTensor,
            scale: &scale,
            offset: &offset,
            qmin,
            qmax,
        };
        let centre = -(off as f64) * 0.37;
        let x: Vec<f32> = gen_data(&mut rng, 5000, 300.0 * 0.37, true)
            .into_iter()
            .map(|v| {
                if v.is_finite() && v.abs() < 1e6 {
                    (centre + v as f64) as f32
                } else {
                    v
                }
            })
            .collect();
        let mut q = vec![0i32; 5000];
        quantize(&x, &spec, &mut q).unwrap();
        let mut dq = vec![0f32; 5000];
        dequantize(&q, &spec, &mut dq).unwrap();
        let mut qdq = vec![0f32; 5000];
        quantize_dequantize(&x, &spec, &mut qdq).unwrap();
        for i in 0..5000 {
            let rq = ref_quantize(x[i], 0.37, off, qmin, qmax);
            assert_eq!(q[i] as i64, rq, "x={}", x[i]);
            assert_eq!(dq[i].to_bits(), ref_dequantize(rq, 0.37, off).to_bits());
            assert_eq!(qdq[i].to_bits(), dq[i].to_bits());
        }
    }
}

fn per_tensor<'a>(
    shape: &'a [usize],
    scale: &'a [f32],
    offset: &'a [i32],
    qmin: i64,
    qmax: i64,
) -> AffineSpec<'a> {
    AffineSpec {
        shape,
        granularity: Granularity::PerTensor,
        scale,
        offset,
        qmin,
        qmax,
    }
}

fn q8(x: &[f32], scale: f32, offset: i32) -> Vec<i8> {
    let shape = [x.len()];
    let (s, o) = ([scale], [offset]);
    let mut q = vec![0i8; x.len()];
    quantize(x, &per_tensor(&shape, &s, &o, -128, 127), &mut q).unwrap();
    q
}

#[test]
fn ties_round_half_to_even() {
    assert_eq!(
        q8(&[0.5, 1.5, 2.5, -0.5, -2.5, 3.5, -3.5, -1.5], 1.0, 0),
        [0, 2, 2, 0, -2, 4, -4, -2]
    );
    // The same ties after an exact division by a power of two.
    assert_eq!(
        q8(&[0.25, 0.75, 1.25, -0.25, -1.25], 0.5, 0),
        [0, 2, 2, 0, -2]
    );
    // -0.5 rounds to 0; the dequantized value is +0.0, not -0.0.
    let shape = [3];
    let (s, o) = ([1.0f32], [0i32]);
    let mut out = [9.0f32; 3];
    quantize_dequantize(
        &[-0.5, -0.0, -0.4],
        &per_tensor(&shape, &s, &o, -128, 127),
        &mut out,
    )
    .unwrap();
    assert_eq!(out.map(f32::to_bits), [0, 0, 0]);
}

#[test]
fn saturation_specials_and_zero_point() {
    // int8, scale 0.1: 12.7 → 127, anything beyond saturates.
    assert_eq!(
        q8(&[12.7, 12.8, 13.0, 1e30, f32::INFINITY], 0.1, 0),
        [127; 5]
    );
    assert_eq!(
        q8(&[-12.8, -12.9, -1e30, f32::NEG_INFINITY], 0.1, 0),
        [-128; 4]
    );
    // NaN gives the type's minimum, as ORT's kernels do.
    assert_eq!(q8(&[f32::NAN, -f32::NAN], 0.1, 0), [-128, -128]);

    // uint8 with zero point 128 (AIMET offset −128).
    let shape = [10];
    let (s, o) = ([0.5f32], [-128i32]);
    let spec = per_tensor(&shape, &s, &o, 0, 255);
    let x = [
        0.0,
        -0.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e30,
        -1e30,
        1.0,
        -64.0,
        63.75,
    ];
    let mut q = [0u8; 10];
    quantize(&x, &spec, &mut q).unwrap();
    assert_eq!(q, [128, 128, 0, 255, 0, 255, 0, 130, 0, 255]);
    let mut dq = [0f32; 10];
    dequantize(&q, &spec, &mut dq).unwrap();
    assert_eq!(
        dq,
        [0.0, 0.0, -64.0, 63.5, -64.0, 63.5, -64.0, 1.0, -64.0, 63.5]
    );
    assert_eq!(dq[1].to_bits(), 0, "-0.0 dequantizes to +0.0");

    // Subnormal data and a subnormal scale.
    let tiny = f32::from_bits(1); // 1.4e-45
    assert_eq!(
        q8(&[tiny, -tiny, f32::from_bits(0x007f_ffff)], 1.0, 0),
        [0, 0, 0]
    );
    let (s, o) = ([tiny], [-128i32]);
    let shape = [4];
    let spec = per_tensor(&shape, &s, &o, 0, 255);
    let x = [
        f32::from_bits(2),
        f32::from_bits(3),
        -f32::from_bits(5),
        f32::from_bits(1000),
    ];
    let mut q = [0u8; 4];
    quantize(&x, &spec, &mut q).unwrap();
    assert_eq!(q, [130, 131, 123, 255]);
    let mut dq = [0f32; 4];
    dequantize(&q, &spec, &mut dq).unwrap();
    assert_eq!(dq.map(f32::to_bits), [2, 3, 0x8000_0005, 127]);
}

#[test]
fn int32_grid_near_the_edges() {
    let shape = [9];
    let (s, o) = ([1.0f32], [0i32]);
    let spec = per_tensor(&shape, &s, &o, i32::MIN as i64, i32::MAX as i64);
    let below = 2147483520.0f32; // the largest f32 below 2^31
    let x = [
        2147483648.0,
        -2147483648.0,
        below,
        -below,
        1e30,
        f32::NAN,
        2.5,
        -3.5,
        -1e30,
    ];
    let mut q = [0i32; 9];
    quantize(&x, &spec, &mut q).unwrap();
    assert_eq!(
        q,
        [
            i32::MAX,
            i32::MIN,
            2147483520,
            -2147483520,
            i32::MAX,
            i32::MIN,
            2,
            -4,
            i32::MIN
        ]
    );
    let mut dq = [0f32; 9];
    dequantize(&q, &spec, &mut dq).unwrap();
    // i32::MAX has no f32: it rounds to 2^31.
    assert_eq!(
        dq,
        [
            2147483648.0,
            -2147483648.0,
            below,
            -below,
            2147483648.0,
            -2147483648.0,
            2.0,
            -4.0,
            -2147483648.0
        ]
    );
    let mut qdq = [0f32; 9];
    quantize_dequantize(&x, &spec, &mut qdq).unwrap();
    assert_eq!(qdq.map(f32::to_bits), dq.map(f32::to_bits));
    // Bias-like: x / (s_in · s_w), scale 2^-20.
    let (s, o) = ([2f32.powi(-20)], [0i32]);
    let spec = per_tensor(&shape[..1], &s, &o, i32::MIN as i64, i32::MAX as i64);
    let shape1 = [1];
    let spec = AffineSpec {
        shape: &shape1,
        ..spec
    };
    let mut q = [0i32; 1];
    quantize(&[1000.0f32], &spec, &mut q).unwrap();
    assert_eq!(q, [1000 << 20]);
    quantize(&[3000.0f32], &spec, &mut q).unwrap();
    assert_eq!(q, [i32::MAX]);
}

#[test]
fn qdq_equals_dequantize_of_quantize_bitwise() {
    let mut rng = XorShift(0xDEAD_BEEF);
    let grids: [(i64, i64); 6] = [
        (-128, 127),
        (0, 255),
        (-8, 7),
        (0, 65535),
        (-32768, 32767),
        (i32::MIN as i64, i32::MAX as i64),
    ];
    for big in [false, true] {
        for (shape, g) in layouts(big) {
            for &(qmin, qmax) in &grids {
                let len: usize = shape.iter().product();
                let np = n_params(&shape, g);
                let scale = gen_scales(&mut rng, np);
                let offset = if qmax - qmin > 1 << 20 {
                    vec![0]
                } else {
                    gen_offsets(&mut rng, np, qmin, qmax)
                };
                let spec = AffineSpec {
                    shape: &shape,
                    granularity: g,
                    scale: &scale,
                    offset: &offset,
                    qmin,
                    qmax,
                };
                let x = gen_data(&mut rng, len, (qmax - qmin) as f64 * 0.1, true);
                let mut q = vec![0i32; len];
                quantize(&x, &spec, &mut q).unwrap();
                let mut dq = vec![0f32; len];
                dequantize(&q, &spec, &mut dq).unwrap();
                let mut qdq = vec![0f32; len];
                quantize_dequantize(&x, &spec, &mut qdq).unwrap();
                let mut inplace = x.clone();
                quantize_dequantize_in_place(&mut inplace, &spec).unwrap();
                for i in 0..len {
                    assert_eq!(
                        qdq[i].to_bits(),
                        dq[i].to_bits(),
                        "{shape:?} {g:?} [{qmin},{qmax}] i={i} x={}",
                        x[i]
                    );
                    assert_eq!(inplace[i].to_bits(), dq[i].to_bits(), "in place, i={i}");
                }
            }
        }
    }
}

#[test]
fn int_type_for_picks_the_smallest() {
    assert_eq!(int_type_for(-128, 127), Ok(IntType::I8));
    assert_eq!(int_type_for(-8, 7), Ok(IntType::I8));
    assert_eq!(int_type_for(0, 255), Ok(IntType::U8));
    assert_eq!(int_type_for(0, 15), Ok(IntType::U8));
    assert_eq!(int_type_for(-129, 0), Ok(IntType::I16));
    assert_eq!(int_type_for(0, 256), Ok(IntType::U16));
    assert_eq!(int_type_for(0, 65535), Ok(IntType::U16));
    assert_eq!(int_type_for(-1, 65535), Ok(IntType::I32));
    assert_eq!(int_type_for(0, 65536), Ok(IntType::I32));
    assert_eq!(
        int_type_for(i32::MIN as i64, i32::MAX as i64),
        Ok(IntType::I32)
    );
    assert!(matches!(
        int_type_for(0, 1 << 32),
        Err(AffineError::GridTooWide { .. })
    ));
    assert!(matches!(
        int_type_for(5, 4),
        Err(AffineError::InvalidGrid { .. })
    ));
}

#[test]
fn empty_and_degenerate_shapes() {
    let (s, o) = ([1.0f32], [0i32]);
    let mut out: [f32; 0] = [];
    quantize_dequantize(&[], &per_tensor(&[0], &s, &o, -128, 127), &mut out).unwrap();
    // Per-channel over a zero-length axis: no scales at all.
    let spec = AffineSpec {
        shape: &[4, 0],
        granularity: Granularity::PerChannel { axis: 1 },
        scale: &[],
        offset: &[],
        qmin: -128,
        qmax: 127,
    };
    quantize_dequantize(&[], &spec, &mut out).unwrap();
    // A scalar (rank 0) tensor, per tensor.
    let mut one = [0f32];
    quantize_dequantize(&[2.6], &per_tensor(&[], &s, &o, -128, 127), &mut one).unwrap();
    assert_eq!(one, [3.0]);
}

#[test]
fn every_error_names_its_argument() {
    let x = [0f32; 6];
    let shape = [2usize, 3];
    let ok = AffineSpec {
        shape: &shape,
        granularity: Granularity::PerChannel { axis: 1 },
        scale: &[1.0, 1.0, 1.0],
        offset: &[0],
        qmin: -128,
        qmax: 127,
    };
    validate(&ok, 6).unwrap();
    let mut q8 = [0i8; 6];
    let mut f = [0f32; 6];

    let cases: Vec<(AffineError, &str, AffineErrorKind)> = vec![
        (
            validate(
                &AffineSpec {
                    scale: &[1.0, f32::NAN, 1.0],
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "scale[1]",
            AffineErrorKind::Range,
        ),
        (
            validate(
                &AffineSpec {
                    scale: &[1.0, 1.0, 0.0],
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "scale[2]",
            AffineErrorKind::Range,
        ),
        (
            validate(
                &AffineSpec {
                    scale: &[-1.0, 1.0, 1.0],
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "scale[0]",
            AffineErrorKind::Range,
        ),
        (
            validate(
                &AffineSpec {
                    scale: &[1.0, f32::INFINITY, 1.0],
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "scale[1]",
            AffineErrorKind::Range,
        ),
        (
            validate(
                &AffineSpec {
                    qmin: 1,
                    qmax: 0,
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "qmin",
            AffineErrorKind::Range,
        ),
        (
            validate(
                &AffineSpec {
                    qmin: 0,
                    qmax: 1 << 32,
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "qmin/qmax",
            AffineErrorKind::Range,
        ),
        (
            quantize(
                &x,
                &AffineSpec {
                    qmin: 0,
                    qmax: 255,
                    ..ok
                },
                &mut q8,
            )
            .unwrap_err(),
            "i8",
            AffineErrorKind::Range,
        ),
        (
            dequantize(&[0u8; 6], &ok, &mut f).unwrap_err(),
            "u8",
            AffineErrorKind::Range,
        ),
        (
            validate(
                &AffineSpec {
                    qmin: i32::MIN as i64,
                    qmax: i32::MAX as i64,
                    offset: &[1],
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "offset[0]",
            AffineErrorKind::Range,
        ),
        (
            validate(
                &AffineSpec {
                    offset: &[0, 0, i32::MAX],
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "offset[2]",
            AffineErrorKind::Range,
        ),
        (
            validate(
                &AffineSpec {
                    granularity: Granularity::PerChannel { axis: 2 },
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "axis",
            AffineErrorKind::Range,
        ),
        (
            validate(
                &AffineSpec {
                    granularity: Granularity::PerBlock {
                        axis: 1,
                        block_size: 0,
                    },
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "block_size",
            AffineErrorKind::Range,
        ),
        (
            validate(&ok, 7).unwrap_err(),
            "shape",
            AffineErrorKind::Type,
        ),
        (
            validate(
                &AffineSpec {
                    shape: &[usize::MAX, 3],
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "shape",
            AffineErrorKind::Type,
        ),
        (
            validate(
                &AffineSpec {
                    scale: &[1.0, 1.0],
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "scale has length 2, expected 3",
            AffineErrorKind::Type,
        ),
        (
            validate(
                &AffineSpec {
                    granularity: Granularity::PerBlock {
                        axis: 1,
                        block_size: 2,
                    },
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "scale has length 3, expected 4",
            AffineErrorKind::Type,
        ),
        (
            validate(
                &AffineSpec {
                    offset: &[0, 0],
                    ..ok
                },
                6,
            )
            .unwrap_err(),
            "offset has length 2, expected 1 or 3",
            AffineErrorKind::Type,
        ),
        (
            quantize_dequantize(&x, &ok, &mut [0f32; 5]).unwrap_err(),
            "out has length 5, expected 6",
            AffineErrorKind::Type,
        ),
        (
            quantize(&x, &ok, &mut [0i8; 7]).unwrap_err(),
            "out has length 7",
            AffineErrorKind::Type,
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (err, needle, kind) in cases {
        let msg = err.to_string();
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
        assert_eq!(err.kind(), kind, "{msg}");
        assert_eq!(err.is_range_error(), kind == AffineErrorKind::Range);
        let _: &dyn std::error::Error = &err;
        seen.insert(std::mem::discriminant(&err));
    }
    assert_eq!(seen.len(), 11, "every AffineError variant is triggered");
}

/// `cargo test --release -- --ignored --nocapture bench_qdq_vs_copy`: single-threaded
/// quantize-dequantize of 64M floats against `copy_from_slice` of the same bytes.
#[test]
#[ignore]
fn bench_qdq_vs_copy() {
    use std::time::Instant;
    let n = 64 << 20;
    let mut rng = XorShift(1);
    let x: Vec<f32> = (0..n)
        .map(|_| ((rng.unit() * 2.0 - 1.0) * 3.0) as f32)
        .collect();
    let mut out = vec![0f32; n];
    let mut q = vec![0i8; n];
    let shape = [n];
    let (s, o) = ([0.02f32], [0i32]);
    let spec = per_tensor(&shape, &s, &o, -128, 127);
    let pc_shape = [n / 4096, 4096];
    let pc_scale = gen_scales(&mut rng, 4096);
    let pc_spec = AffineSpec {
        shape: &pc_shape,
        granularity: Granularity::PerChannel { axis: 1 },
        scale: &pc_scale,
        offset: &[0],
        qmin: -128,
        qmax: 127,
    };
    let blk_scale = gen_scales(&mut rng, n / 32);
    let blk_spec = AffineSpec {
        shape: &pc_shape,
        granularity: Granularity::PerBlock {
            axis: 1,
            block_size: 32,
        },
        scale: &blk_scale,
        offset: &[0],
        qmin: -8,
        qmax: 7,
    };
    let best = |f: &mut dyn FnMut()| {
        f();
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let copy = best(&mut || out.copy_from_slice(&x));
        let qdq = best(&mut || quantize_dequantize(&x, &spec, &mut out).unwrap());
        let mut buf = x.clone();
        let inpl = best(&mut || quantize_dequantize_in_place(&mut buf, &spec).unwrap());
        let quant = best(&mut || quantize(&x, &spec, &mut q).unwrap());
        let deq = best(&mut || dequantize(&q, &spec, &mut out).unwrap());
        let pc = best(&mut || quantize_dequantize(&x, &pc_spec, &mut out).unwrap());
        let blk = best(&mut || quantize_dequantize(&x, &blk_spec, &mut out).unwrap());
        println!("64M f32, 1 thread: copy {:.1} ms", copy * 1e3);
        for (name, t) in [
            ("qdq per-tensor", qdq),
            ("qdq in place", inpl),
            ("quantize i8", quant),
            ("dequantize i8", deq),
            ("qdq per-channel last axis", pc),
            ("qdq per-block 32 int4", blk),
        ] {
            println!("  {name}: {:.1} ms, copy/this = {:.2}", t * 1e3, copy / t);
        }
    });
}
