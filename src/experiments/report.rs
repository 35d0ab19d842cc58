//! A sweep's table: `table.md` (with the features and budgets it was measured with) and
//! `table.csv`, one row per run, pending runs marked.

use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;

use super::{Row, RunResult, Sweep};

/// The VAE's evaluation parts shown in the table, when a run has them.
const PARTS: [&str; 3] = ["neg_elbo_nats", "reconstruction_nats", "kl_nats"];

const HEADER: [&str; 13] = [
    "dataset",
    "variant",
    "model",
    "parameters",
    "steps",
    "batch",
    "train_s",
    "test_figure",
    "test_value",
    "neg_elbo_nats",
    "reconstruction_nats",
    "kl_nats",
    "fid",
];

/// A finished run in one line (for progress output).
pub fn summary(r: &RunResult) -> String {
    let mut s = format!(
        "test {} {:.4} after {} steps ({:.0} s)",
        r.test_name, r.test_value, r.steps, r.train_seconds
    );
    if let (Some(f), Some((k, sd))) = (r.fid, r.kid) {
        let _ = write!(s, ", FID {f:.2}, KID {k:.4} ± {sd:.4}");
    }
    s
}

fn part(r: &RunResult, name: &str) -> Option<f64> {
    r.parts.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

/// The cells of a row, as in [`HEADER`] then `kid`, `kid_std` (empty where not measured;
/// `pending` in the test figure's place for a run not yet done).
fn cells(row: &Row) -> Vec<String> {
    let num = |v: Option<f64>, digits: usize| v.map_or(String::new(), |v| format!("{v:.digits$}"));
    match &row.result {
        None => {
            let mut c = vec![row.dataset.clone(), row.variant.clone()];
            c.resize(7, String::new());
            c.push("pending".into());
            c.resize(HEADER.len() + 2, String::new());
            c
        }
        Some(r) => {
            let mut c = vec![
                r.dataset.clone(),
                r.variant.clone(),
                r.model.clone(),
                r.parameters.to_string(),
                r.steps.to_string(),
                r.batch_size.to_string(),
                format!("{:.0}", r.train_seconds),
                r.test_name.clone(),
                format!("{:.4}", r.test_value),
            ];
            c.extend(PARTS.iter().map(|p| num(part(r, p), 2)));
            c.push(num(r.fid, 2));
            c.push(num(r.kid.map(|k| k.0), 4));
            c.push(num(r.kid.map(|k| k.1), 4));
            c
        }
    }
}

/// Writes `table.md` and `table.csv` into `out`.
pub fn write(sweep: &Sweep, out: &Path, rows: &[Row]) -> Result<()> {
    let mut csv = HEADER.join(",") + ",kid,kid_std\n";
    for row in rows {
        csv += &cells(row).join(",");
        csv.push('\n');
    }
    let mut md = format!(
        "# {}\n\nSweep `{}`. Test figures on the whole test split; `neg_elbo_nats` = \
         reconstruction + KL (nats per image). FID/KID: samples of each run against as many \
         test images, features below.\n\n",
        sweep.title,
        sweep.path.display()
    );
    md += "| dataset | variant | model | params | steps | batch | train s | test figure | \
           −ELBO nats | recon nats | KL nats | FID | KID |\n";
    md += "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n";
    for row in rows {
        let c = cells(row);
        let test = if row.result.is_some() {
            format!("{} {}", c[7], c[8])
        } else {
            "pending".into()
        };
        let kid = if c[13].is_empty() {
            String::new()
        } else {
            format!("{} ± {}", c[13], c[14])
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {test} | {} | {} | {} | {} | {kid} |",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[9], c[10], c[11], c[12]
        );
    }
    let mut notes: Vec<String> = rows
        .iter()
        .filter_map(|r| r.result.as_ref())
        .map(|r| format!("- {}: {}", r.dataset, r.features))
        .collect();
    notes.dedup();
    if !notes.is_empty() {
        md += "\nFeatures of FID/KID:\n";
        for n in notes {
            md += &n;
            md.push('\n');
        }
    }
    for (name, text) in [("table.md", md), ("table.csv", csv)] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
