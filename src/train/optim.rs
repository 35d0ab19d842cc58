//! Adam and Adamax written on tensors, so that their state can be checkpointed and a resumed run
//! continues bit-identically (tch's built-in optimisers do not expose their state).

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Tensor};

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    /// Adam with the infinity norm (Kingma & Ba 2015, §7.1); the IDF paper's choice.
    Adamax,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Optimiser over every trainable variable of a `VarStore`, in name order.
pub struct Optimizer {
    kind: OptimizerKind,
    params: Vec<(String, Tensor)>,
    /// Learning-rate multiplier of each parameter (a scalar or a tensor broadcast against it).
    lr_scale: Vec<Tensor>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    step: i64,
}

impl Optimizer {
    /// `lr_scale(name, param)` multiplies the learning rate of the parameter called `name`
    /// (a scalar tensor, or one that broadcasts against the parameter: per-element rates).
    pub fn new(
        vs: &VarStore,
        kind: OptimizerKind,
        lr_scale: impl Fn(&str, &Tensor) -> Tensor,
    ) -> Self {
        let mut params: Vec<_> = vs.variables().into_iter().collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let lr_scale = params.iter().map(|(n, p)| lr_scale(n, p)).collect();
        let first = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let second = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Optimizer {
            kind,
            params,
            lr_scale,
            first,
            second,
            step: 0,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// Sum of squared gradients, square-rooted (for logging and clipping).
    pub fn grad_norm(&self) -> f64 {
        let total: f64 = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(|g| g.defined())
            .map(|g| g.square().sum(tch::Kind::Double).double_value(&[]))
            .sum();
        total.sqrt()
    }

    /// One update with learning rate `lr`; gradients scaled by `grad_scale` first.
    pub fn step(&mut self, lr: f64, grad_scale: f64) {
        self.step += 1;
        let t = self.step as i32;
        let bias1 = 1.0 - BETA1.powi(t);
        let bias2 = 1.0 - BETA2.powi(t);
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let g = g * grad_scale;
                let m = &mut self.first[i];
                let _ = m.g_mul_scalar_(BETA1).g_add_(&(&g * (1.0 - BETA1)));
                let v = &mut self.second[i];
                let update = match self.kind {
                    OptimizerKind::Adam => {
                        let _ = v.g_mul_scalar_(BETA2).g_add_(&(g.square() * (1.0 - BETA2)));
                        &*m / ((&*v / bias2).sqrt() + EPS) * (lr / bias1)
                    }
                    OptimizerKind::Adamax => {
                        let u = (&*v * BETA2).maximum(&(g.abs() + EPS));
                        v.copy_(&u);
                        &*m / &*v * (lr / bias1)
                    }
                };
                let _ = p.g_sub_(&(update * &self.lr_scale[i]));
            }
        });
    }

    pub fn steps_taken(&self) -> i64 {
        self.step
    }

    /// The optimiser state as named tensors (for checkpoints).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("opt.m.{name}"), self.first[i].shallow_clone()));
            out.push((format!("opt.v.{name}"), self.second[i].shallow_clone()));
        }
        out.push(("opt.step".to_string(), Tensor::from_slice(&[self.step])));
        out
    }

    /// Restores what [`Optimizer::state`] saved; every tensor must be present.
    pub fn load_state(&mut self, saved: &[(String, Tensor)]) -> Result<(), String> {
        let find = |key: String| {
            saved
                .iter()
                .find(|(n, _)| *n == key)
                .map(|(_, t)| t.shallow_clone())
                .ok_or(format!("checkpoint lacks {key}"))
        };
        tch::no_grad(|| -> Result<(), String> {
            for (i, (name, _)) in self.params.iter().enumerate() {
                self.first[i].copy_(&find(format!("opt.m.{name}"))?);
                self.second[i].copy_(&find(format!("opt.v.{name}"))?);
            }
            Ok(())
        })?;
        self.step = find("opt.step".to_string())?.int64_value(&[0]);
        Ok(())
    }
}
