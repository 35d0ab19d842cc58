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
    let bpd = crate::metrics::bpd::dataset_bpd(&model, &data.test.narrow(0, 0, n), 500, device);
    if a.by_group {
        let x = data
            .test
            .narrow(0, 0, n.min(1000))
            .to_kind(tch::Kind::Float);
        let groups = tch::no_grad(|| model.nll_by_group(&x));
        let dims = x.size()[1..].iter().product::<i64>() as f64
            * x.size()[0] as f64
            * std::f64::consts::LN_2;
        let shapes = state.config.model.level_shapes();
        for (i, g) in groups.iter().enumerate() {
            let what = match shapes.get(i) {
                Some(s) => format!("level {i} factor-out ({} channels)", s.factored),
                None => format!("top ({} channels)", state.config.model.top_channels()),
            };
            let share = g.sum(tch::Kind::Double).double_value(&[]) / dims;
            println!(
                "  {what}: {share:.4} of the bpd (first {} images)",
                x.size()[0]
            );
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
