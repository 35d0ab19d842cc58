//! Fréchet distance between two sets of features seen as Gaussians (FID when the features are an
//! Inception network's; here any feature net's, which every printed score names):
//!
//! `FID = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2})`
//!
//! In f64. The trace of the matrix square root comes from `nalgebra`'s symmetric
//! eigendecomposition, not from an iteration written here: `Σ₁Σ₂` is not symmetric, but it is
//! similar to `S = Σ₁^{1/2} Σ₂ Σ₁^{1/2}` (`Σ₁^{1/2}` from the eigendecomposition of `Σ₁`), which is
//! symmetric positive semi-definite, so `Tr (Σ₁Σ₂)^{1/2} = Σᵢ √λᵢ(S)`. Eigenvalues that rounding makes
//! slightly negative (singular covariances: fewer images than features, dead ReLU units) count as 0.

use nalgebra::{DMatrix, DVector};

/// Mean and covariance of a set of feature vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianStats {
    /// Mean, `d`.
    pub mean: DVector<f64>,
    /// Covariance, `d × d`, with the unbiased `1/(n−1)` normalisation (as NumPy's `np.cov` in the
    /// reference FID code).
    pub cov: DMatrix<f64>,
    /// How many vectors they were computed from.
    pub count: usize,
}

impl GaussianStats {
    /// The statistics of the rows of `features` (`n × d`, `n ≥ 2`).
    pub fn of(features: &DMatrix<f64>) -> Result<Self, String> {
        let n = features.nrows();
        if n < 2 {
            return Err(format!(
                "a covariance needs at least 2 feature vectors, not {n}"
            ));
        }
        let mean = features.row_mean().transpose();
        let mut centred = features.clone();
        for mut row in centred.row_iter_mut() {
            row -= mean.transpose();
        }
        let cov = centred.tr_mul(&centred) / (n as f64 - 1.0);
        Ok(GaussianStats {
            mean,
            cov,
            count: n,
        })
    }
}

/// The Fréchet distance between `N(a.mean, a.cov)` and `N(b.mean, b.cov)`; never below 0 (a
/// rounding error below 0, as for a set against itself, gives 0).
/// Panics if the dimensions differ (callers check).
pub fn frechet_distance(a: &GaussianStats, b: &GaussianStats) -> f64 {
    assert_eq!(a.mean.len(), b.mean.len(), "feature dimensions differ");
    let mean_term = (&a.mean - &b.mean).norm_squared();
    let d = mean_term + a.cov.trace() + b.cov.trace() - 2.0 * trace_sqrt_product(&a.cov, &b.cov);
    d.max(0.0)
}

/// `Tr (Σ₁Σ₂)^{1/2}` for symmetric positive semi-definite `Σ₁`, `Σ₂` (see the module's note).
pub fn trace_sqrt_product(s1: &DMatrix<f64>, s2: &DMatrix<f64>) -> f64 {
    let root1 = psd_sqrt(s1);
    let inner = symmetric(&(&root1 * s2 * &root1));
    inner
        .symmetric_eigenvalues()
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum()
}

/// The square root of a symmetric positive semi-definite matrix, by its eigendecomposition
/// (negative eigenvalues from rounding clamped to 0).
pub fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eig = symmetric(m).symmetric_eigen();
    let roots = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eig.eigenvectors * DMatrix::from_diagonal(&roots) * eig.eigenvectors.transpose()
}

/// `(m + mᵀ)/2`: removes the rounding asymmetry of products meant to be symmetric.
fn symmetric(m: &DMatrix<f64>) -> DMatrix<f64> {
    (m + m.transpose()) * 0.5
}

/// FID between two feature sets (rows are feature vectors, same width, at least 2 rows each).
pub fn fid(a: &DMatrix<f64>, b: &DMatrix<f64>) -> Result<f64, String> {
    if a.ncols() != b.ncols() {
        return Err(format!(
            "feature dimensions differ: {} and {}",
            a.ncols(),
            b.ncols()
        ));
    }
    Ok(frechet_distance(
        &GaussianStats::of(a)?,
        &GaussianStats::of(b)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqrt_of_a_psd_matrix_squares_back() {
        let a = DMatrix::from_row_slice(3, 3, &[2.0, 0.5, 0.1, 0.5, 1.0, 0.2, 0.1, 0.2, 0.7]);
        let r = psd_sqrt(&a);
        assert!((&r * &r - &a).abs().max() < 1e-12);
    }

    #[test]
    fn stats_of_known_rows() {
        let x = DMatrix::from_row_slice(3, 2, &[1.0, 0.0, 2.0, 2.0, 3.0, 4.0]);
        let s = GaussianStats::of(&x).unwrap();
        assert_eq!(s.mean.as_slice(), &[2.0, 2.0]);
        // var of (1,2,3) = 1, of (0,2,4) = 4, covariance 2 (n − 1 normalisation)
        assert_eq!(s.cov.as_slice(), &[1.0, 2.0, 2.0, 4.0]);
        assert!(GaussianStats::of(&x.rows(0, 1).into_owned()).is_err());
    }

    #[test]
    fn one_dimensional_case_is_the_wasserstein_formula() {
        // 1-D: (μ₁−μ₂)² + (σ₁−σ₂)²
        let a = GaussianStats {
            mean: DVector::from_element(1, 1.0),
            cov: DMatrix::from_element(1, 1, 4.0),
            count: 2,
        };
        let b = GaussianStats {
            mean: DVector::from_element(1, -2.0),
            cov: DMatrix::from_element(1, 1, 9.0),
            count: 2,
        };
        assert!((frechet_distance(&a, &b) - (9.0 + 1.0)).abs() < 1e-12);
    }
}
