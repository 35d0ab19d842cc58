//! Inception score (Salimans et al. 2016) from a classifier's logits:
//! `IS = exp(E_x KL(p(y|x) ‖ p(y)))`, with `p(y)` the mean of `p(y|x)` over the images of a split,
//! reported as the mean and standard deviation (population, as the reference code) over splits.
//! It is 1 when every image gets the same prediction, and the number of classes when predictions
//! are confident and the classes balanced. It needs no reference set.

use nalgebra::DMatrix;

/// Mean and standard deviation of the score over `splits` splits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InceptionScore {
    pub mean: f64,
    pub std: f64,
    pub splits: usize,
}

/// Default number of splits (the reference code's 10); capped at the image count.
pub const DEFAULT_SPLITS: usize = 10;

/// Row-wise softmax of `logits` (`n × classes`), in f64, stable for large logits.
pub fn softmax_rows(logits: &DMatrix<f64>) -> DMatrix<f64> {
    let mut p = logits.clone();
    for mut row in p.row_iter_mut() {
        let max = row.max();
        row.apply(|v| *v = (*v - max).exp());
        let sum = row.sum();
        row /= sum;
    }
    p
}

/// The score of one set of class probabilities (`n × classes`, rows summing to 1).
fn score(p: &DMatrix<f64>) -> f64 {
    let marginal = p.row_mean();
    let n = p.nrows() as f64;
    let mut kl = 0.0;
    for row in p.row_iter() {
        for (q, m) in row.iter().zip(marginal.iter()) {
            if *q > 0.0 {
                kl += q * (q.ln() - m.ln());
            }
        }
    }
    (kl / n).exp()
}

/// The inception score of `logits` (`n × classes`) over `splits` consecutive splits of (nearly)
/// equal size; `splits` is capped at `n`.
pub fn inception_score(logits: &DMatrix<f64>, splits: usize) -> Result<InceptionScore, String> {
    let n = logits.nrows();
    if n == 0 || logits.ncols() < 2 {
        return Err(format!(
            "the inception score needs at least one image and two classes ({n} images, {} classes)",
            logits.ncols()
        ));
    }
    if splits == 0 {
        return Err("the inception score needs at least one split".into());
    }
    let splits = splits.min(n);
    let p = softmax_rows(logits);
    let scores: Vec<f64> = (0..splits)
        .map(|k| {
            let (start, end) = (k * n / splits, (k + 1) * n / splits);
            score(&p.rows(start, end - start).into_owned())
        })
        .collect();
    let s = scores.len() as f64;
    let mean = scores.iter().sum::<f64>() / s;
    let var = scores.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / s;
    Ok(InceptionScore {
        mean,
        std: var.sqrt(),
        splits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_and_normalised() {
        let l = DMatrix::from_row_slice(2, 3, &[1000.0, 0.0, -1000.0, 1.0, 2.0, 3.0]);
        let p = softmax_rows(&l);
        assert!((p[(0, 0)] - 1.0).abs() < 1e-12);
        for row in p.row_iter() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn splits_are_capped_and_zero_is_an_error() {
        let l = DMatrix::from_row_slice(3, 2, &[0.0, 1.0, 1.0, 0.0, 0.5, 0.5]);
        assert_eq!(inception_score(&l, 10).unwrap().splits, 3);
        assert!(inception_score(&l, 0).is_err());
        assert!(inception_score(&DMatrix::zeros(3, 1), 1).is_err());
    }
}
