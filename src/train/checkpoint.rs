//! Training checkpoints: weights and optimiser state (safetensors, through tch) plus the run's
//! state as JSON. Both are written to temporary files and renamed, so a crash never leaves a
//! half-written checkpoint behind.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{nn::VarStore, Tensor};

use idfcodec_codec::IdfConfig;

use super::config::TrainConfig;
use super::optim::Optimizer;
use super::TrainError;

const WEIGHTS: &str = "checkpoint.safetensors";
const STATE: &str = "checkpoint.json";

/// What a checkpoint records besides tensors.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    /// Optimisation steps completed.
    pub step: usize,
    /// Wall-clock seconds spent training so far, over all resumed chunks.
    pub train_seconds: f64,
    /// Test bpd of the last full evaluation, if any.
    pub test_bpd: Option<f64>,
    pub config: TrainConfig,
    /// Where it was trained (e.g. `cpu x2 threads: <model name>`), per chunk.
    pub hardware: Vec<String>,
}

pub fn exists(dir: &Path) -> bool {
    dir.join(STATE).exists() || dir.join(WEIGHTS).exists()
}

fn tmp_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes weights, optimiser state and `state` into `dir`.
pub fn save(
    dir: &Path,
    vs: &VarStore,
    opt: &Optimizer,
    state: &RunState,
) -> Result<(), TrainError> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (format!("param.{n}"), t))
        .collect();
    named.extend(opt.state());
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let weights = dir.join(WEIGHTS);
    let tmp = tmp_path(&weights);
    Tensor::write_safetensors(&named, &tmp)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", tmp.display())))?;
    let json = serde_json::to_vec_pretty(state).expect("run state serialises");
    let state_path = dir.join(STATE);
    let tmp_state = tmp_path(&state_path);
    std::fs::write(&tmp_state, json).map_err(|e| TrainError::io(&tmp_state, e))?;
    std::fs::rename(&tmp, &weights).map_err(|e| TrainError::io(&weights, e))?;
    std::fs::rename(&tmp_state, &state_path).map_err(|e| TrainError::io(&state_path, e))?;
    Ok(())
}

/// Reads the run state only (e.g. to recover the config before building the model).
pub fn read_state(dir: &Path) -> Result<RunState, TrainError> {
    let p = dir.join(STATE);
    let bytes = std::fs::read(&p).map_err(|e| TrainError::io(&p, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", p.display())))
}

/// Restores weights (and the optimiser state when `opt` is given) from `dir`.
pub fn load(
    dir: &Path,
    vs: &mut VarStore,
    opt: Option<&mut Optimizer>,
) -> Result<RunState, TrainError> {
    let state = read_state(dir)?;
    let (p, saved) = read_weights(dir)?;
    let bad = |m: String| TrainError::Checkpoint(format!("{}: {m}", p.display()));
    tch::no_grad(|| -> Result<(), TrainError> {
        for (name, mut var) in vs.variables() {
            let key = format!("param.{name}");
            let t = saved
                .iter()
                .find(|(n, _)| *n == key)
                .ok_or_else(|| bad(format!("lacks {key}")))?;
            if t.1.size() != var.size() {
                return Err(bad(format!(
                    "{key} has shape {:?}, the model needs {:?}",
                    t.1.size(),
                    var.size()
                )));
            }
            var.copy_(&t.1);
        }
        Ok(())
    })?;
    if let Some(opt) = opt {
        opt.load_state(&saved).map_err(bad)?;
        if opt.steps_taken() as usize != state.step {
            return Err(bad(format!(
                "optimiser step {} != run step {}",
                opt.steps_taken(),
                state.step
            )));
        }
    }
    Ok(state)
}

/// The checkpoint's tensors (parameters under `param.NAME`, optimiser state) and their file.
fn read_weights(dir: &Path) -> Result<(PathBuf, Vec<(String, Tensor)>), TrainError> {
    let p = dir.join(WEIGHTS);
    let saved = Tensor::read_safetensors(&p)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", p.display())))?;
    Ok((p, saved))
}

/// Copies into `vs` every parameter of the checkpoint in `dir` that has the same name and shape
/// (the optimiser state is not taken), and grows a model whose priors were split into groups
/// (`prior_groups`, `top_groups`) so that it starts out computing what the saved one did:
/// - a prior's output rows (`….prior.conv_out.*`, `top.params`) are laid out channel by channel,
///   so the first group keeps the saved leading rows;
/// - a new factor-out group network `level{l}.prior{k}` starts as a copy of the saved
///   `level{l}.prior`: its output rows are those of group `k`'s channels, and its first layer's
///   extra inputs (the groups before `k`) start at zero weight;
/// - a residual block the saved run lacks (`blocks` raised) starts with its second convolution at
///   zero, so it adds nothing until trained.
///
/// A level whose factor-out changes between coded whole and coded by pixel phase
/// (`phase_levels`) takes none of its prior networks: their inputs and outputs mean other things;
/// nor does any parameter when the squeeze changes (`phase_squeeze`).
///
/// Returns the names of the variables not copied (the zeroed block outputs among them).
pub fn copy_matching(
    dir: &Path,
    config: &IdfConfig,
    vs: &mut VarStore,
) -> Result<Vec<String>, TrainError> {
    let saved_config = read_state(dir)?.config.model;
    let (_, saved) = read_weights(dir)?;
    let rephased = |name: &str| {
        saved_config.phase_squeeze != config.phase_squeeze
            || (0..config.levels).any(|l| {
                saved_config.phased(l) != config.phased(l)
                    && name.starts_with(&IdfConfig::prior_name(l))
            })
    };
    let find = |name: &str| {
        let key = format!("param.{name}");
        saved.iter().find(|(n, _)| *n == key).map(|(_, t)| t)
    };
    let mut untouched = Vec::new();
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            if rephased(&name) {
                untouched.push(name);
                continue;
            }
            let (source, group) = match (find(&name), split_prior_group(&name)) {
                (Some(t), _) => (Some(t), 0),
                (None, Some((ungrouped, k))) => (find(&ungrouped), k),
                (None, None) => (None, 0),
            };
            let (want, have) = match source {
                Some(t) => (var.size(), t.size()),
                None => {
                    if is_new_block_output(&name) {
                        let _ = var.zero_();
                    }
                    untouched.push(name);
                    continue;
                }
            };
            let t = source.expect("checked above");
            let output_rows = name.contains(".conv_out.") && name.contains(".prior")
                || name == IdfConfig::TOP_PARAMS;
            if want == have {
                var.copy_(t);
            } else if output_rows && want[1..] == have[1..] && have[0] >= want[0] * (group + 1) {
                var.copy_(&t.narrow(0, want[0] * group, want[0]));
            } else if name.ends_with(".conv_in.weight")
                && want.len() == 4
                && want[0] == have[0]
                && want[2..] == have[2..]
                && want[1] > have[1]
            {
                let _ = var.zero_();
                var.narrow(1, 0, have[1]).copy_(t);
            } else {
                untouched.push(name);
            }
        }
    });
    untouched.sort();
    Ok(untouched)
}

/// The second convolution of a residual block (`….block{b}.conv2.*`): when the source run has no
/// such block it starts at zero, so the block adds nothing and the grown network computes what
/// the one it grew from did (`blocks` raised).
fn is_new_block_output(name: &str) -> bool {
    name.split('.')
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0].starts_with("block") && w[1] == "conv2")
}

/// `level{l}.prior{k}.REST` (`k ≥ 1`) → (`level{l}.prior.REST`, `k`).
fn split_prior_group(name: &str) -> Option<(String, i64)> {
    let mut parts = name.splitn(3, '.');
    let (level, net, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let k: i64 = net.strip_prefix("prior")?.parse().ok()?;
    (level.starts_with("level") && k >= 1).then(|| (format!("{level}.prior.{rest}"), k))
}
