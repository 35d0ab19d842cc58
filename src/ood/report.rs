//! The OOD run's outputs as text: the per-set means and the separation table (Markdown), and one
//! CSV row per image.

use crate::bench::report::quote;
use std::fmt::Write;

use super::roc::Separation;
use super::{MeasuredSet, Score};

/// Mean of `values` (0 for none).
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f64
}

/// Mean bits per sub-pixel of `bytes(m)` over a set's images (`None` if any is missing).
fn mean_bpd(set: &MeasuredSet, bytes: impl Fn(&super::Measured) -> Option<f64>) -> Option<f64> {
    let values: Option<Vec<f64>> = set
        .rows
        .iter()
        .map(|m| bytes(m).map(|b| b / m.dims as f64))
        .collect();
    values.map(|v| mean(v.into_iter()))
}

fn cell(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.3}"))
}

/// One row per set: images, fitting, and mean bits per sub-pixel of the model's NLL, its coded
/// files, the generic coders and the background model.
pub fn means_table(sets: &[&MeasuredSet]) -> String {
    let mut t = String::from(
        "| set | images | NLL bpd | coded bpd | PNG bpd | context bpd | classical bpd | background bpd | fitted |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for set in sets {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            set.name,
            set.rows.len(),
            cell(mean_bpd(set, |m| Some(m.nll_bits))),
            cell(mean_bpd(set, |m| m.coded_bytes.map(|b| b as f64 * 8.0))),
            cell(mean_bpd(set, |m| Some(m.complexity.png as f64 * 8.0))),
            cell(mean_bpd(set, |m| Some(m.complexity.context as f64 * 8.0))),
            cell(mean_bpd(set, |m| m
                .complexity
                .classical
                .as_ref()
                .map(|(b, _)| *b as f64 * 8.0))),
            cell(mean_bpd(set, |m| m.background_bits)),
            set.fitted.as_deref().unwrap_or(""),
        );
    }
    t
}

/// One row per OOD set and score: AUROC, AUPR (OOD positive), FPR at 95 % TPR.
pub fn separation_table(in_dist: &str, results: &[(String, Vec<(Score, Separation)>)]) -> String {
    let mut t = format!(
        "| in-distribution {in_dist} vs | score | AUROC | AUPR | FPR@95%TPR |\n|---|---|---:|---:|---:|\n"
    );
    for (ood, per_score) in results {
        for (score, s) in per_score {
            let _ = writeln!(
                t,
                "| {ood} | {} | {:.3} | {:.3} | {:.3} |",
                score.name(),
                s.auroc,
                s.aupr,
                s.fpr_at_95_tpr
            );
        }
    }
    t
}

/// The CSV of every image: the measurements (bits, bytes) and every score (bpd).
pub fn csv(in_dist: &MeasuredSet, ood: &[MeasuredSet], scores: &[Score]) -> String {
    let mut out = String::from(
        "set,role,index,dims,nll_bits,coded_bytes,png_bytes,context_bytes,classical_bytes,classical_codec,background_bits",
    );
    for s in scores {
        let _ = write!(out, ",{}", s.name());
    }
    out.push('\n');
    let opt = |v: Option<String>| v.unwrap_or_default();
    let sets = std::iter::once((in_dist, "in")).chain(ood.iter().map(|s| (s, "ood")));
    for (set, role) in sets {
        for m in &set.rows {
            let _ = write!(
                out,
                "{},{role},{},{},{:.4},{},{},{},{},{},{}",
                quote(&set.name),
                m.index,
                m.dims,
                m.nll_bits,
                opt(m.coded_bytes.map(|b| b.to_string())),
                m.complexity.png,
                m.complexity.context,
                opt(m.complexity.classical.as_ref().map(|(b, _)| b.to_string())),
                opt(m.complexity.classical.as_ref().map(|(_, n)| n.clone())),
                opt(m.background_bits.map(|b| format!("{b:.4}"))),
            );
            for s in scores {
                let _ = write!(out, ",{}", opt(s.of(m).map(|v| format!("{v:.6}"))));
            }
            out.push('\n');
        }
    }
    out
}
