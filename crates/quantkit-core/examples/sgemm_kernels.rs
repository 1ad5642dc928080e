//! The layer kernels' GEMM (`layers::sgemm`, hand-written, cache-blocked) against the `gemm` crate
//! (sarah-quinones/gemm 0.19, faer's kernel) and `matrixmultiply` 0.3 on the products that the
//! cls and MNIST convolutions run in AdaRound's loop (per sample: W[m×k]·col[k×n] forward,
//! dy[m×n]·colᵀ[n×k] weight gradient), single-threaded (the loop parallelises over samples).
//! Usage: cargo run --release -p quantkit-core --example sgemm_kernels
//! Columns: µs per product for the hand-written blocked kernel, the gemm crate, matrixmultiply,
//! their ratios to the blocked kernel, and what `layers::sgemm` now does (dispatch) over blocked.
//! Prints the fastest of 9 rounds (thread CPU time) per product and the ratios; bench/results/sgemm-kernels.txt keeps a run.
use quantkit_core::layers::sgemm::{sgemm_blocked_serial, sgemm_serial, MatRef};
use std::time::Instant;

/// This thread's CPU time in seconds (Linux: clock_gettime(CLOCK_THREAD_CPUTIME_ID)), so that
/// other processes on a shared machine inflate the figures less than wall time would.
#[cfg(target_os = "linux")]
fn cpu_seconds() -> Option<f64> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    let mut t = Timespec { sec: 0, nsec: 0 };
    (unsafe { clock_gettime(3, &mut t) } == 0).then(|| t.sec as f64 + t.nsec as f64 * 1e-9)
}

#[cfg(not(target_os = "linux"))]
fn cpu_seconds() -> Option<f64> {
    None
}

fn time(mut f: impl FnMut(), flops: usize) -> f64 {
    let reps = (50_000_000 / flops.max(1)).clamp(3, 2000);
    f();
    let mut samples = Vec::new();
    for _ in 0..9 {
        let (t, c) = (Instant::now(), cpu_seconds());
        for _ in 0..reps {
            f();
        }
        let secs = match (c, cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => t.elapsed().as_secs_f64(),
        };
        samples.push(secs / reps as f64);
    }
    // The fastest of the rounds: interference only ever adds time.
    samples.into_iter().fold(f64::INFINITY, f64::min)
}

fn main() {
    // (what, m, k, n, B transposed): B stored n×k and read as its transpose (weight gradient).
    let cases: &[(&str, usize, usize, usize, bool)] = &[
        ("cls conv1 fwd 8x27x2304", 8, 27, 2304, false),
        ("cls conv1 dW 8x2304x27", 8, 2304, 27, true),
        ("cls 1x1 8->24 fwd 24x8x1152", 24, 8, 1152, false),
        ("cls 1x1 16->88 fwd 88x16x288", 88, 16, 288, false),
        ("cls 1x1 88->16 fwd 16x88x288", 16, 88, 288, false),
        ("cls 1x1 32->200 fwd 200x32x192", 200, 32, 192, false),
        ("cls 1x1 32->200 dW 200x192x32", 200, 192, 32, true),
        ("cls 1x1 200->32 fwd 32x200x192", 32, 200, 192, false),
        ("mnist conv1 fwd 16x9x784", 16, 9, 784, false),
        ("mnist conv2 fwd 32x144x196", 32, 144, 196, false),
        ("mnist conv2 dW 32x196x144", 32, 196, 144, true),
        ("square 256", 256, 256, 256, false),
    ];
    let threads = rayon::current_num_threads();
    println!("single-threaded; machine threads {threads}");
    println!("{:<34} {:>9} {:>9} {:>9} {:>8} {:>8} {:>10}", "product (m×k×n)", "blocked", "gemm", "mm", "gemm/bl", "mm/bl", "layers/bl");
    for &(what, m, k, n, bt) in cases {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729 % 1000) as f32 / 500.0) - 1.0).collect();
        let mut c = vec![0f32; m * n];
        let (brs, bcs) = if bt { (1, k) } else { (n, 1) };
        let flops = m * k * n;
        let now = time(|| sgemm_serial(MatRef::row_major(&a, m, k), MatRef::new(&b, k, n, brs, bcs), &mut c, n, false), flops);
        let ours = time(|| sgemm_blocked_serial(MatRef::row_major(&a, m, k), MatRef::new(&b, k, n, brs, bcs), &mut c, n, false), flops);
        let c_ours = c.clone();
        let g = time(
            || unsafe {
                gemm::gemm(m, n, k, c.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), 1, k as isize, b.as_ptr(), bcs as isize, brs as isize, 0.0f32, 1.0f32, false, false, false, gemm::Parallelism::None)
            },
            flops,
        );
        let d1 = c.iter().zip(&c_ours).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        let mm = time(
            || unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), brs as isize, bcs as isize, 0.0, c.as_mut_ptr(), n as isize, 1) },
            flops,
        );
        let d2 = c.iter().zip(&c_ours).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(d1 < 1e-2 && d2 < 1e-2, "{what}: results differ ({d1}, {d2})");
        println!("{:<34} {:>9.1} {:>9.1} {:>9.1} {:>8.2} {:>8.2} {:>10.2}", what, ours * 1e6, g * 1e6, mm * 1e6, g / ours, mm / ours, now / ours);
    }
}
