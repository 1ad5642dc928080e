//! Where one AdaRound layer's time goes (forward with the loss, weight gradient, the rest), on
//! random data with the shapes of a few cls and MNIST layers, 32 samples per iteration.
//! Usage: cargo run --release -p quantkit-core --example adaround_profile [iterations]
use quantkit_core::adaround::{adaround, Activation, AdaroundOptions, LayerKind, LayerSpec, Problem, WeightGrid};
use quantkit_core::layers::{ConvAttrs, GemmAttrs};
use std::time::Instant;

fn randoms(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn main() {
    let iterations: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let conv = |pads: usize, strides: [usize; 2], group: usize| ConvAttrs { pads: vec![pads; 4], strides: strides.to_vec(), group, ..Default::default() };
    // (what, kind, sample shape, weight shape, samples)
    let cases: Vec<(&str, LayerKind, Vec<usize>, Vec<usize>, usize)> = vec![
        ("mnist conv1 3x3 1->16 28x28", LayerKind::Conv(conv(1, [1, 1], 1)), vec![1, 28, 28], vec![16, 1, 3, 3], 256),
        ("mnist conv2 3x3 16->32 14x14", LayerKind::Conv(conv(1, [1, 1], 1)), vec![16, 14, 14], vec![32, 16, 3, 3], 256),
        ("mnist fc1 784->128", LayerKind::Gemm { attrs: GemmAttrs { trans_b: true, ..Default::default() }, c_shape: None }, vec![784], vec![128, 784], 256),
        ("cls conv1 3x3 s2 3->8 48x192", LayerKind::Conv(conv(1, [2, 2], 1)), vec![3, 48, 192], vec![8, 3, 3, 3], 64),
        ("cls dw 3x3 s(2,1) 24ch 12x96", LayerKind::Conv(conv(1, [2, 1], 24)), vec![24, 12, 96], vec![24, 1, 3, 3], 64),
        ("cls 1x1 32->200 2x96", LayerKind::Conv(conv(0, [1, 1], 1)), vec![32, 2, 96], vec![200, 32, 1, 1], 64),
        ("cls dw 3x3 200ch 2x96", LayerKind::Conv(conv(1, [1, 1], 200)), vec![200, 2, 96], vec![200, 1, 3, 3], 64),
    ];
    println!("{iterations} iterations, rayon threads {}", rayon::current_num_threads());
    for (what, kind, sample_shape, w_shape, n) in cases {
        let x = randoms(n * sample_shape.iter().product::<usize>(), 1);
        let w: Vec<f32> = randoms(w_shape.iter().product(), 2).iter().map(|v| v * 0.3).collect();
        let m = w_shape[0];
        let per = w.len() / m;
        let scale = (0..m).map(|c| w[c * per..(c + 1) * per].iter().fold(1e-6f32, |a, v| a.max(v.abs())) / 7.0).collect();
        let grid = WeightGrid { scale, offset: vec![-8.0; m], qmin: 0.0, qmax: 15.0, axis: Some(0) };
        let p = Problem { layer: LayerSpec { kind, sample_shape, w_shape }, x: &x, n, w: &w, bias: None, y: None };
        let t = Instant::now();
        let r = adaround(p, &grid, AdaroundOptions { iterations, activation: Activation::Relu, ..Default::default() }, None).unwrap();
        let per_it = |ms: f64| ms * 1e3 / iterations as f64;
        println!(
            "{what:<32} total {:>8.1} ms  per iteration: forward+loss {:>7.1} µs, weight grad {:>7.1} µs, rest {:>6.1} µs  (loop {:.1} ms of {:.1} ms)",
            t.elapsed().as_secs_f64() * 1e3,
            per_it(r.forward_ms),
            per_it(r.backward_ms),
            per_it(r.update_ms),
            r.forward_ms + r.backward_ms + r.update_ms,
            r.millis
        );
    }
}
