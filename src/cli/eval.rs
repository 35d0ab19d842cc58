//! `idfcodec eval`: the test bits/dim of a training checkpoint (float tch model).

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run folder holding checkpoint.safetensors and checkpoint.json.
    pub run: PathBuf,
    /// Evaluate only the first N test images.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Also print each latent group's share of the bpd (factor-outs and top).
    #[arg(long)]
    pub by_group: bool,
}

#[cfg(not(feature = "train"))]
pub fn run(_: EvalArgs) -> anyhow::Result<()> {
    Err(super::needs_train_feature("eval"))
}

#[cfg(feature = "train")]
pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    use crate::train::{self, checkpoint};
    let device = crate::device::select(&a.device).map_err(anyhow::Error::msg)?;
    let state = checkpoint::read_state(&a.run)?;
    let (mut vs, model) = train::build_model(&state.config, device);
    checkpoint::load(&a.run, &mut vs, None)?;
    let data = train::load_data(&state.config)?;
    let n = a
        .limit
        .map_or(data.test.size()[0], |l| (l as i64).min(data.test.size()[0]));
    let t = std::time::Instant::now();
    let groups =
        crate::metrics::bpd::dataset_bpd_by_group(&model, &data.test.narrow(0, 0, n), 500, device);
    let bpd: f64 = groups.iter().sum();
    if a.by_group {
        // one share per prior, named by its tensors (`level0.prior`, `level0.prior1`, `top.params`,
        // `top.group1`, …: each level's factor-out groups, then the top's)
        let names = state.config.model.prior_names();
        for (what, share) in names.iter().zip(&groups) {
            println!("  {what}: {share:.4} of the bpd");
        }
    }
    println!(
        "{}: test bpd {bpd:.4} on {n} {} test images (step {}, {:.1} s)",
        a.run.display(),
        state.config.data.dataset,
        state.step,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
