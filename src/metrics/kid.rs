//! Kernel distance (KID when the features are an Inception network's; Bińkowski et al. 2018): the
//! unbiased estimate of the squared maximum mean discrepancy with the cubic polynomial kernel
//! `k(x, y) = (x·y/d + 1)³` (`d` the feature dimension), averaged over random subsets, with its
//! spread over them.
//!
//! Per subset pair (`m` rows of each set, drawn without replacement, the two sets independently):
//!
//! `MMD²ᵤ = Σ_{i≠j} k(xᵢ,xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/m²`
//!
//! Its expectation is the population MMD², 0 when both sets come from one distribution, so single
//! estimates can be negative. The defaults follow the reference code: 100 subsets of 1000; with
//! fewer images the subset size becomes the smaller set's size (the subsets of that set then
//! differ only in order, and the spread shrinks accordingly). When both sets are no larger than
//! the subset size every subset pair is the whole sets in another order, with the same value: it
//! is computed once (`subsets` 1, `std` 0; a smaller subset size gives a spread).

use nalgebra::DMatrix;
use rand::seq::index;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// How the subsets are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KidOptions {
    /// Number of subset pairs.
    pub subsets: usize,
    /// Rows per subset; capped at the smaller set's size.
    pub subset_size: usize,
    /// Seed of the subset draws.
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        KidOptions {
            subsets: 100,
            subset_size: 1000,
            seed: 0,
        }
    }
}

/// The estimate: mean and standard deviation (population, `1/s`, as `np.std` in the reference
/// code) of the per-subset MMD², with what it was computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kid {
    pub mean: f64,
    pub std: f64,
    pub subsets: usize,
    pub subset_size: usize,
}

/// The polynomial kernel matrix `(X Yᵀ/d + 1)³` between the rows of `x` and of `y`.
pub fn polynomial_kernel(x: &DMatrix<f64>, y: &DMatrix<f64>) -> DMatrix<f64> {
    let d = x.ncols() as f64;
    (x * y.transpose()).map(|v| (v / d + 1.0).powi(3))
}

/// The unbiased MMD² between the rows of `x` and of `y` (at least 2 rows each, same width).
pub fn mmd2_unbiased(x: &DMatrix<f64>, y: &DMatrix<f64>) -> f64 {
    let (m, n) = (x.nrows() as f64, y.nrows() as f64);
    let off_diagonal_mean = |k: DMatrix<f64>, r: f64| (k.sum() - k.trace()) / (r * (r - 1.0));
    off_diagonal_mean(polynomial_kernel(x, x), m) + off_diagonal_mean(polynomial_kernel(y, y), n)
        - 2.0 * polynomial_kernel(x, y).sum() / (m * n)
}

/// KID between the rows of `a` and of `b`: [`mmd2_unbiased`] over `options.subsets` pairs of
/// random subsets.
pub fn kid(a: &DMatrix<f64>, b: &DMatrix<f64>, options: KidOptions) -> Result<Kid, String> {
    if a.ncols() != b.ncols() {
        return Err(format!(
            "feature dimensions differ: {} and {}",
            a.ncols(),
            b.ncols()
        ));
    }
    let m = options.subset_size.min(a.nrows()).min(b.nrows());
    if m < 2 {
        return Err(format!(
            "KID needs subsets of at least 2 images (sets of {} and {}, subset size {})",
            a.nrows(),
            b.nrows(),
            options.subset_size
        ));
    }
    if options.subsets == 0 {
        return Err("KID needs at least one subset".into());
    }
    let subsets = if m == a.nrows() && m == b.nrows() {
        1
    } else {
        options.subsets
    };
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut draw = |set: &DMatrix<f64>| {
        let rows: Vec<usize> = index::sample(&mut rng, set.nrows(), m).into_vec();
        set.select_rows(rows.iter())
    };
    let values: Vec<f64> = (0..subsets)
        .map(|_| {
            let x = draw(a);
            let y = draw(b);
            mmd2_unbiased(&x, &y)
        })
        .collect();
    let s = values.len() as f64;
    let mean = values.iter().sum::<f64>() / s;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / s;
    Ok(Kid {
        mean,
        std: var.sqrt(),
        subsets,
        subset_size: m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition written out with loops, nothing shared with [`mmd2_unbiased`].
    fn mmd2_by_loops(x: &DMatrix<f64>, y: &DMatrix<f64>) -> f64 {
        let d = x.ncols() as f64;
        let k = |u: nalgebra::DVectorView<f64>, v: nalgebra::DVectorView<f64>| {
            (u.dot(&v) / d + 1.0).powi(3)
        };
        let (m, n) = (x.nrows(), y.nrows());
        let (mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0);
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    xx += k(
                        x.row(i).transpose().as_view(),
                        x.row(j).transpose().as_view(),
                    );
                }
            }
        }
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    yy += k(
                        y.row(i).transpose().as_view(),
                        y.row(j).transpose().as_view(),
                    );
                }
            }
        }
        for i in 0..m {
            for j in 0..n {
                xy += k(
                    x.row(i).transpose().as_view(),
                    y.row(j).transpose().as_view(),
                );
            }
        }
        let (m, n) = (m as f64, n as f64);
        xx / (m * (m - 1.0)) + yy / (n * (n - 1.0)) - 2.0 * xy / (m * n)
    }

    #[test]
    fn matrix_form_equals_the_loops() {
        let x = DMatrix::from_fn(7, 3, |i, j| ((i * 3 + j) as f64 * 0.37).sin());
        let y = DMatrix::from_fn(5, 3, |i, j| ((i * 5 + j) as f64 * 0.11).cos() + 0.2);
        let (a, b) = (mmd2_unbiased(&x, &y), mmd2_by_loops(&x, &y));
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn small_or_mismatched_sets_are_errors() {
        let x = DMatrix::from_element(1, 3, 1.0);
        let y = DMatrix::from_element(4, 3, 1.0);
        assert!(kid(&x, &y, KidOptions::default()).is_err());
        assert!(kid(&y, &DMatrix::from_element(4, 2, 1.0), KidOptions::default()).is_err());
    }
}
