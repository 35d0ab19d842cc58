//! Adam and Adamax written on tensors, so that their state can be checkpointed and a resumed run
//! continues bit-identically (tch's built-in optimisers do not expose their state).
//!
//! The parameters are split into groups ([`ParamGroup`]; one group of everything unless a family
//! asks for more, e.g. a GAN's generator and critic), each updated by its own steps with its own
//! Adam coefficients and step count (bias correction).

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

/// Adam's default coefficients of the first and second moments.
pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Parameters updated together: those whose names start with `prefix` (a parameter belongs to
/// the group with the longest matching prefix), with their own moment coefficients and step
/// count.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    /// Names the group's step count in checkpoints (`opt.step.NAME`; `opt.step` for `""`).
    pub name: String,
    pub prefix: String,
    pub beta1: f64,
    pub beta2: f64,
}

impl ParamGroup {
    /// Every parameter, Adam's default coefficients: the one group of a family that asks for no
    /// others.
    pub fn all() -> Self {
        ParamGroup {
            name: String::new(),
            prefix: String::new(),
            beta1: BETA1,
            beta2: BETA2,
        }
    }

    fn step_key(&self) -> String {
        if self.name.is_empty() {
            "opt.step".to_string()
        } else {
            format!("opt.step.{}", self.name)
        }
    }
}

/// A group's members (indices into the optimiser's parameters) and steps taken.
struct Group {
    spec: ParamGroup,
    members: Vec<usize>,
    step: i64,
}

/// Optimiser over every trainable variable of a `VarStore`, in name order, in groups.
pub struct Optimizer {
    kind: OptimizerKind,
    params: Vec<(String, Tensor)>,
    /// Learning-rate multiplier of each parameter (a scalar or a tensor broadcast against it).
    lr_scale: Vec<Tensor>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    groups: Vec<Group>,
}

impl Optimizer {
    /// `groups` split the parameters (each parameter goes to the group with the longest prefix
    /// of its name; an error if none matches, or if two groups share a name or a prefix).
    /// `lr_scale(name, param)` multiplies the learning rate of the parameter called `name`
    /// (a scalar tensor, or one that broadcasts against the parameter: per-element rates).
    pub fn new(
        vs: &VarStore,
        kind: OptimizerKind,
        groups: &[ParamGroup],
        lr_scale: impl Fn(&str, &Tensor) -> Tensor,
    ) -> Result<Self, String> {
        let mut params: Vec<_> = vs.variables().into_iter().collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let mut split: Vec<Group> = Vec::with_capacity(groups.len());
        for g in groups {
            if split
                .iter()
                .any(|o| o.spec.name == g.name || o.spec.prefix == g.prefix)
            {
                return Err(format!("parameter group {:?} given twice", g.name));
            }
            split.push(Group {
                spec: g.clone(),
                members: Vec::new(),
                step: 0,
            });
        }
        for (i, (name, _)) in params.iter().enumerate() {
            let group = split
                .iter_mut()
                .filter(|g| name.starts_with(&g.spec.prefix))
                .max_by_key(|g| g.spec.prefix.len())
                .ok_or_else(|| format!("parameter {name} is in no parameter group"))?;
            group.members.push(i);
        }
        let lr_scale = params.iter().map(|(n, p)| lr_scale(n, p)).collect();
        let first = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let second = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Ok(Optimizer {
            kind,
            params,
            lr_scale,
            first,
            second,
            groups: split,
        })
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// Sum of the squared gradients of group `group`'s parameters, square-rooted (for logging
    /// and clipping).
    pub fn grad_norm(&self, group: usize) -> f64 {
        let total: f64 = self.groups[group]
            .members
            .iter()
            .map(|&i| self.params[i].1.grad())
            .filter(|g| g.defined())
            .map(|g| g.square().sum(tch::Kind::Double).double_value(&[]))
            .sum();
        total.sqrt()
    }

    /// How many groups there are.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// One update of group `group`'s parameters with learning rate `lr`; gradients scaled by
    /// `grad_scale` first.
    pub fn step(&mut self, group: usize, lr: f64, grad_scale: f64) {
        let Group {
            spec,
            members,
            step,
            ..
        } = &mut self.groups[group];
        *step += 1;
        let t = *step as i32;
        let (beta1, beta2) = (spec.beta1, spec.beta2);
        let bias1 = 1.0 - beta1.powi(t);
        let bias2 = 1.0 - beta2.powi(t);
        tch::no_grad(|| {
            for &i in members.iter() {
                let p = &mut self.params[i].1;
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let g = g * grad_scale;
                let m = &mut self.first[i];
                let _ = m.g_mul_scalar_(beta1).g_add_(&(&g * (1.0 - beta1)));
                let v = &mut self.second[i];
                let update = match self.kind {
                    OptimizerKind::Adam => {
                        let _ = v.g_mul_scalar_(beta2).g_add_(&(g.square() * (1.0 - beta2)));
                        &*m / ((&*v / bias2).sqrt() + EPS) * (lr / bias1)
                    }
                    OptimizerKind::Adamax => {
                        let u = (&*v * beta2).maximum(&(g.abs() + EPS));
                        v.copy_(&u);
                        &*m / &*v * (lr / bias1)
                    }
                };
                let _ = p.g_sub_(&(update * &self.lr_scale[i]));
            }
        });
    }

    /// Steps taken by the first group (which a family steps once per training step).
    pub fn steps_taken(&self) -> i64 {
        self.groups.first().map_or(0, |g| g.step)
    }

    /// The optimiser state as named tensors (for checkpoints): the moments of every parameter,
    /// and each group's step count.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("opt.m.{name}"), self.first[i].shallow_clone()));
            out.push((format!("opt.v.{name}"), self.second[i].shallow_clone()));
        }
        for g in &self.groups {
            out.push((g.spec.step_key(), Tensor::from_slice(&[g.step])));
        }
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
        for g in &mut self.groups {
            g.step = find(g.spec.step_key())?.int64_value(&[0]);
        }
        Ok(())
    }
}
