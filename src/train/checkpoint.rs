//! Training checkpoints: weights and optimiser state (safetensors, through tch) plus the run's
//! state as JSON. Both are written to temporary files and renamed, so a crash never leaves a
//! half-written checkpoint behind.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{nn::VarStore, Tensor};

use super::config::TrainConfig;
use super::model::{FamilyFn, ModelConfig, Trainable};
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
    /// Test figure (bits/dim for the IDF; the family's `LogColumns::test`) of the last full
    /// evaluation, if any.
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

/// Copies into `vs` what fits of the parameters of the run in `dir` (the optimiser state is not
/// taken), as the family grows a model ([`Trainable::copy_matching`]; for the IDF
/// `nn/idf/trainable.rs`, `copy_matching`). The run must be of the same family.
///
/// Returns the names of the variables not copied.
pub fn copy_matching(
    dir: &Path,
    model: &ModelConfig,
    vs: &mut VarStore,
) -> Result<Vec<String>, TrainError> {
    struct Copy<'a> {
        dir: &'a Path,
        vs: &'a mut VarStore,
    }
    impl FamilyFn for Copy<'_> {
        type Output = Result<Vec<String>, TrainError>;
        fn call<M: Trainable>(self, config: &M::Config) -> Self::Output {
            let state = read_state(self.dir)?;
            let saved_config = state.config.model.of::<M>().ok_or_else(|| {
                TrainError::Config(format!(
                    "{} holds a {} run, not a {} one",
                    self.dir.display(),
                    state.config.model.family(),
                    M::FAMILY
                ))
            })?;
            let (_, saved) = read_weights(self.dir)?;
            let params: Vec<(String, Tensor)> = saved
                .into_iter()
                .filter_map(|(n, t)| Some((n.strip_prefix("param.")?.to_string(), t)))
                .collect();
            Ok(M::copy_matching(saved_config, &params, config, self.vs))
        }
    }
    model.with_family(Copy { dir, vs })
}
