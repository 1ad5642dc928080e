"""numpy's LAPACK SVD on the matrices of bench/svd.bench.mjs (dev-time only; tests never run it).

    node bench/svd.bench.mjs --export /tmp/quantkit-svd        # writes the matrices as .npy
    OPENBLAS_NUM_THREADS=1 python scripts/peers/numpy_svd.py --matrices /tmp/quantkit-svd \
        --threads 1 --out bench/results/svd-numpy.json

`bench/svd.bench.mjs` runs this itself (same matrices, same thread count, one run) when
/tmp/aimet-venv/bin/python exists; the committed bench/results/svd-numpy.json is what it reads
otherwise. Timed, per matrix (float32 on disk, as quantkit receives it):

- full: np.linalg.svd(a.astype(float64), full_matrices=False) - LAPACK dgesdd, f64 like quantkit;
  also on the float32 matrix (sgesdd) for reference;
- values: np.linalg.svd(a64, compute_uv=False);
- randomized: the same Halko-Martinsson-Tropp algorithm as quantkit (Gaussian sketch, ℓ = rank +
  10, 2 power iterations each re-orthonormalised by np.linalg.qr, SVD of Qᵀ·A), in numpy/LAPACK.

Each figure is the fastest of `repeats` (manifest) or `--repeats` runs after one warm-up (the machine is shared).
"""

import argparse
import json
import os
import platform
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--matrices", required=True, help="folder with manifest.json and <name>.npy files")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--out", help="write JSON here (atomically); default stdout")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per figure unless the manifest gives `repeats`")
    args = p.parse_args()

    # BLAS reads its thread count at load time.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(args.threads)
        pools = [{k: i.get(k) for k in ("internal_api", "version", "num_threads", "architecture")} for i in threadpool_info()]
    except ImportError:
        pools = None

    def best_time(fn, repeats):
        """Fastest of `repeats` runs after one warm-up, in ms (the least disturbed by other load)."""
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times) * 1000.0

    def randomized(a, rank, oversampling=10, power_iterations=2, seed=0):
        m, n = a.shape
        l = min(rank + oversampling, m, n)
        omega = np.random.default_rng(seed).standard_normal((n, l))
        q, _ = np.linalg.qr(a @ omega)
        for _ in range(power_iterations):
            z, _ = np.linalg.qr(a.T @ q)
            q, _ = np.linalg.qr(a @ z)
        ub, s, vt = np.linalg.svd(q.T @ a, full_matrices=False)
        return (q @ ub)[:, :rank], s, vt[:rank]

    with open(os.path.join(args.matrices, "manifest.json")) as f:
        manifest = json.load(f)
    results = []
    for entry in manifest["matrices"]:
        a32 = np.load(os.path.join(args.matrices, entry["file"]))
        assert a32.dtype == np.float32 and a32.shape == (entry["rows"], entry["cols"]), entry
        a64 = a32.astype(np.float64)
        reps = entry.get("repeats", args.repeats)
        row = {
            "name": entry["name"],
            "rows": entry["rows"],
            "cols": entry["cols"],
            "fullMs": best_time(lambda: np.linalg.svd(a64, full_matrices=False), reps),
            "fullF32Ms": best_time(lambda: np.linalg.svd(a32, full_matrices=False), reps),
            "valuesMs": best_time(lambda: np.linalg.svd(a64, compute_uv=False), reps),
        }
        if entry.get("randomizedRank"):
            r = entry["randomizedRank"]
            row["randomizedRank"] = r
            row["randomizedMs"] = best_time(lambda: randomized(a64, r), reps)
            s_exact = np.linalg.svd(a64, compute_uv=False)
            s_rand = randomized(a64, r)[1][:r]
            row["randomizedMaxRelErrTopR"] = float(np.max(np.abs(s_rand - s_exact[:r]) / s_exact[:r]))
        results.append(row)
        print(f"numpy {entry['name']} {entry['rows']}x{entry['cols']}: full {row['fullMs']:.1f} ms", file=sys.stderr)

    doc = {
        "tool": "numpy",
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": args.threads,
        "blas": pools,
        "repeats": args.repeats,
        "cpu": platform.processor() or platform.machine(),
        "results": results,
    }
    text = json.dumps(doc, indent=2) + "\n"
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.out)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
