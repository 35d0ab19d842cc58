//! How well a score separates out-of-distribution images from in-distribution ones: the area
//! under the ROC curve, the area under the precision–recall curve and the false-positive rate
//! at 95 % true-positive rate. Out-of-distribution images are the positive class, and a
//! *higher* score means *more* out of distribution (an NLL, a code length).
//!
//! Ties are handled exactly: the ROC's AUROC counts a tied pair as half a win (the Mann–Whitney
//! statistic); precision and recall move by whole groups of tied scores (a threshold cannot split
//! a tie), so identical score sets give AUROC 0.5 and AUPR the share of positives.

use std::cmp::Ordering;

/// The three separation figures of one score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Separation {
    /// Probability that a random OOD image scores above a random in-distribution one (ties
    /// count half): 1 separates perfectly, 0.5 is chance.
    pub auroc: f64,
    /// Average precision with OOD images as the positives (the area under the step-wise
    /// precision–recall curve): 1 separates perfectly; chance is the share of OOD images.
    pub aupr: f64,
    /// Share of in-distribution images flagged at the highest threshold that flags at least 95 %
    /// of the OOD images (0 is perfect, 1 is useless).
    pub fpr_at_95_tpr: f64,
}

/// Why the figures cannot be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SeparationError {
    #[error("no {0} scores: separation needs at least one image on each side")]
    Empty(&'static str),
    #[error("{side} score {index} is {value}: every score must be a finite number")]
    NotFinite {
        side: &'static str,
        index: usize,
        value: f64,
    },
}

/// The separation of `ood` scores from `in_dist` scores (higher = more out of distribution).
pub fn separation(in_dist: &[f64], ood: &[f64]) -> Result<Separation, SeparationError> {
    check(in_dist, "in-distribution")?;
    check(ood, "out-of-distribution")?;
    // every score with its class (true: OOD), highest first
    let mut all: Vec<(f64, bool)> = in_dist
        .iter()
        .map(|&s| (s, false))
        .chain(ood.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(Ordering::Equal));
    let (negatives, positives) = (in_dist.len() as f64, ood.len() as f64);
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    let (mut auroc, mut aupr) = (0.0, 0.0);
    let mut fpr_at_95 = None;
    let mut i = 0;
    while i < all.len() {
        // one threshold: the whole group of tied scores
        let (mut group_tp, mut group_fp) = (0.0, 0.0);
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].1 {
                group_tp += 1.0;
            } else {
                group_fp += 1.0;
            }
            j += 1;
        }
        // trapezoid of the ROC step: positives of the group beat the negatives below it, and
        // tie with the group's negatives (half each)
        auroc += group_fp * (tp + group_tp / 2.0);
        let (recall_before, new_tp, new_fp) = (tp / positives, tp + group_tp, fp + group_fp);
        let recall = new_tp / positives;
        aupr += (recall - recall_before) * new_tp / (new_tp + new_fp);
        tp = new_tp;
        fp = new_fp;
        if fpr_at_95.is_none() && recall >= 0.95 {
            fpr_at_95 = Some(fp / negatives);
        }
        i = j;
    }
    // auroc counts, per in-distribution image, the OOD images above it (ties half)
    Ok(Separation {
        auroc: auroc / (negatives * positives),
        aupr,
        fpr_at_95_tpr: fpr_at_95.expect("recall reaches 1 at the lowest threshold"),
    })
}

fn check(scores: &[f64], side: &'static str) -> Result<(), SeparationError> {
    if scores.is_empty() {
        return Err(SeparationError::Empty(side));
    }
    match scores.iter().position(|s| !s.is_finite()) {
        Some(index) => Err(SeparationError::NotFinite {
            side,
            index,
            value: scores[index],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn separable_sets_give_one_and_zero_false_positives() {
        let in_dist = [1.0, 2.0, 3.0, 2.5];
        let ood = [3.5, 10.0, 4.0];
        let s = separation(&in_dist, &ood).unwrap();
        assert_eq!(
            s,
            Separation {
                auroc: 1.0,
                aupr: 1.0,
                fpr_at_95_tpr: 0.0
            }
        );
        // reversed: every OOD image scores below every in-distribution one
        let r = separation(&ood, &in_dist).unwrap();
        assert_eq!(r.auroc, 0.0);
        assert_eq!(r.fpr_at_95_tpr, 1.0);
    }

    #[test]
    fn identical_sets_are_chance() {
        let scores: Vec<f64> = (0..100).map(|i| (i * 37 % 100) as f64 / 7.0).collect();
        let s = separation(&scores, &scores).unwrap();
        assert!(close(s.auroc, 0.5), "{s:?}");
        // at every threshold as many in- as out-of-distribution images: precision 1/2
        assert!(close(s.aupr, 0.5), "{s:?}");
        // 95 of the 100 OOD images flagged: so are 95 of the in-distribution ones
        assert!(close(s.fpr_at_95_tpr, 0.95), "{s:?}");
        // one constant score everywhere: one threshold
        let c = separation(&[2.0; 3], &[2.0; 5]).unwrap();
        assert!(close(c.auroc, 0.5) && close(c.aupr, 5.0 / 8.0) && c.fpr_at_95_tpr == 1.0);
    }

    #[test]
    fn small_cases_by_hand() {
        // scikit-learn's example: labels [0, 0, 1, 1], scores [0.1, 0.4, 0.35, 0.8].
        // Pairs (ood, in): 0.35 > 0.1, 0.35 < 0.4, 0.8 > both: 3 of 4 → AUROC 0.75.
        // Ranked: 0.8 (ood: precision 1, recall 1/2), 0.4 (in), 0.35 (ood: precision 2/3,
        // recall 1) → AP = 1/2 · 1 + 1/2 · 2/3 = 5/6. Recall ≥ 0.95 first at 0.35, where
        // one of the two in-distribution scores is flagged → FPR 1/2.
        let s = separation(&[0.1, 0.4], &[0.35, 0.8]).unwrap();
        assert!(close(s.auroc, 0.75), "{s:?}");
        assert!(close(s.aupr, 5.0 / 6.0), "{s:?}");
        assert!(close(s.fpr_at_95_tpr, 0.5), "{s:?}");
        // with ties: in [1, 2, 3], ood [2, 3, 4]. Pairs: 2 beats 1, ties 2 (1.5); 3 beats 1,
        // 2, ties 3 (2.5); 4 beats all (3) → 7/9. Thresholds: 4 (tp 1, fp 0: P 1, R 1/3),
        // 3 (tp 2, fp 1: P 2/3, R 2/3), 2 (tp 3, fp 2: P 3/5, R 1) →
        // AP = 1/3 + 1/3 · 2/3 + 1/3 · 3/5 = 0.6222…; recall 1 first at 2 → FPR 2/3.
        let t = separation(&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0]).unwrap();
        assert!(close(t.auroc, 7.0 / 9.0), "{t:?}");
        assert!(close(t.aupr, (1.0 + 2.0 / 3.0 + 3.0 / 5.0) / 3.0), "{t:?}");
        assert!(close(t.fpr_at_95_tpr, 2.0 / 3.0), "{t:?}");
    }

    #[test]
    fn empty_and_non_finite_scores_are_errors() {
        assert_eq!(
            separation(&[], &[1.0]),
            Err(SeparationError::Empty("in-distribution"))
        );
        assert_eq!(
            separation(&[1.0], &[]),
            Err(SeparationError::Empty("out-of-distribution"))
        );
        let e = separation(&[1.0, f64::NAN], &[2.0]).unwrap_err();
        assert!(matches!(e, SeparationError::NotFinite { index: 1, .. }));
        assert!(e.to_string().contains("finite"));
    }
}
