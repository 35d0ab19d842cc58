//! The energy-based prior's numerics, free of any model: a streaming log-mean-exp
//! ([`LogMeanExp`]), the Monte Carlo estimate of a log partition function
//! `log E_{N(z;0,I)}[exp(log_weight(z))]` repeated for its spread ([`log_partition`]), and the
//! Metropolis-adjusted Langevin kernel ([`mala`]) on any differentiable log density, and the KL
//! divergence of a Gaussian posterior from the tilted prior ([`tilted_kl`]).
//! `tests/ebm_prior.rs` checks them on targets whose answers are known in closed form.

use tch::{Device, Kind, Tensor};

/// `log (1/n) Σ exp(v_i)` over values pushed in batches, in `f64`, stable for any range: the
/// running sum is kept relative to the largest value seen so far.
#[derive(Clone, Debug, Default)]
pub struct LogMeanExp {
    max: f64,
    /// `Σ exp(v_i − max)`.
    scaled_sum: f64,
    count: u64,
}

impl LogMeanExp {
    pub fn new() -> Self {
        LogMeanExp {
            max: f64::NEG_INFINITY,
            scaled_sum: 0.0,
            count: 0,
        }
    }

    /// Adds the values of `v` (any shape, any float kind, any device).
    pub fn push(&mut self, v: &Tensor) {
        let v = v.to_kind(Kind::Double).flatten(0, -1);
        let n = v.size()[0];
        if n == 0 {
            return;
        }
        let m = v.max().double_value(&[]);
        if m == f64::NEG_INFINITY {
            // every weight 0: counted, nothing added
            self.count += n as u64;
            return;
        }
        let batch_sum = (v - m).exp().sum(Kind::Double).double_value(&[]);
        self.push_scaled(m, batch_sum, n as u64);
    }

    /// Adds `count` values whose `Σ exp(v − max)` is `scaled_sum`.
    fn push_scaled(&mut self, max: f64, scaled_sum: f64, count: u64) {
        self.count += count;
        if max.is_nan() || scaled_sum.is_nan() {
            self.max = f64::NAN;
            return;
        }
        if max > self.max {
            self.scaled_sum = self.scaled_sum * (self.max - max).exp() + scaled_sum;
            self.max = max;
        } else {
            self.scaled_sum += scaled_sum * (max - self.max).exp();
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The log-mean-exp of everything pushed (`NaN` if nothing was, or a value was `NaN`;
    /// `−∞` if every value was `−∞`).
    pub fn value(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        self.max + self.scaled_sum.ln() - (self.count as f64).ln()
    }
}

/// How [`log_partition`] samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogZOptions {
    /// Size of the latents `z ~ N(0, I)`.
    pub latent: i64,
    /// Samples per estimate.
    pub samples: u64,
    /// Independent estimates (the spread is over these).
    pub repeats: usize,
    /// Latents per batch through `log_weight`.
    pub batch: i64,
}

/// Independent estimates of a log partition function, and their spread.
#[derive(Clone, Debug, PartialEq)]
pub struct LogZEstimate {
    /// One estimate per repeat.
    pub repeats: Vec<f64>,
    /// Samples per estimate.
    pub samples: u64,
}

impl LogZEstimate {
    pub fn mean(&self) -> f64 {
        self.repeats.iter().sum::<f64>() / self.repeats.len() as f64
    }

    /// The sample standard deviation over the repeats (`n − 1` in the denominator; 0 for
    /// one repeat).
    pub fn std(&self) -> f64 {
        let n = self.repeats.len();
        if n < 2 {
            return 0.0;
        }
        let m = self.mean();
        (self.repeats.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    }

    pub fn min(&self) -> f64 {
        self.repeats.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.repeats
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// `options.repeats` independent Monte Carlo estimates of
/// `log Z = log E_{z ~ N(0, I)}[exp(log_weight(z))]`, each from `options.samples` latents drawn
/// from libtorch's generator (seed it first) in batches of `options.batch`; `log_weight` maps
/// latents (`B×latent`) to log weights (`B`). Runs without gradients. `progress(done)` is called
/// after each batch with the samples done so far over all repeats.
pub fn log_partition(
    log_weight: &dyn Fn(&Tensor) -> Tensor,
    options: LogZOptions,
    device: Device,
    progress: &mut dyn FnMut(u64),
) -> LogZEstimate {
    assert!(
        options.samples > 0 && options.repeats > 0 && options.batch > 0 && options.latent > 0,
        "log_partition needs samples, repeats, batch and latent of at least 1"
    );
    let mut repeats = Vec::with_capacity(options.repeats);
    let mut done = 0;
    tch::no_grad(|| {
        for _ in 0..options.repeats {
            let mut acc = LogMeanExp::new();
            while acc.count() < options.samples {
                let b = (options.samples - acc.count()).min(options.batch as u64) as i64;
                let z = Tensor::randn([b, options.latent], (Kind::Float, device));
                acc.push(&log_weight(&z));
                done += b as u64;
                progress(done);
            }
            repeats.push(acc.value());
        }
    });
    LogZEstimate {
        repeats,
        samples: options.samples,
    }
}

/// The Metropolis-adjusted Langevin kernel's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MalaOptions {
    /// ε: the proposal is `z + ε ∇log π(z) + √(2ε) ξ`.
    pub step_size: f64,
    /// Kernel applications.
    pub steps: usize,
}

/// Chains after [`mala`], and how often their proposals were accepted.
pub struct MalaResult {
    /// The chains' final states (`N×D`, detached).
    pub z: Tensor,
    /// Accepted proposals over all proposals (chains × steps).
    pub acceptance: f64,
}

/// `options.steps` MALA steps on `N` independent chains started at `z0` (`N×D`) towards the
/// density `π ∝ exp(log_density)`; `log_density` maps `N×D` to `N` and must be differentiable
/// in its input. Each proposal `z' = z + ε∇log π(z) + √(2ε)ξ` is accepted with probability
/// `min(1, π(z') q(z|z') / (π(z) q(z'|z)))`, `q(b|a) ∝ exp(−‖b − a − ε∇log π(a)‖² / 4ε)`, so
/// `π` is invariant. Noise from libtorch's generator; `progress(step)` after each step.
pub fn mala(
    z0: &Tensor,
    log_density: &dyn Fn(&Tensor) -> Tensor,
    options: MalaOptions,
    progress: &mut dyn FnMut(usize),
) -> MalaResult {
    assert!(
        options.step_size > 0.0 && options.step_size.is_finite(),
        "MALA needs a finite step size > 0"
    );
    let eps = options.step_size;
    // log π and its gradient at z (detached both)
    let value_and_grad = |z: &Tensor| -> (Tensor, Tensor) {
        tch::with_grad(|| {
            let z = z.detach().set_requires_grad(true);
            let lp = log_density(&z);
            let grad = Tensor::run_backward(&[lp.sum(Kind::Float)], &[&z], false, false)
                .pop()
                .expect("one gradient");
            (lp.detach(), grad)
        })
    };
    // log q(to | from) up to its constant, per chain
    let log_q = |to: &Tensor, from: &Tensor, grad_from: &Tensor| -> Tensor {
        (to - from - grad_from * eps)
            .square()
            .sum_dim_intlist(-1, false, Kind::Float)
            * (-1.0 / (4.0 * eps))
    };
    let mut z = z0.detach();
    let (mut lp, mut grad) = value_and_grad(&z);
    let mut accepted = 0.0;
    let chains = z.size()[0];
    for step in 0..options.steps {
        let proposal = &z + &grad * eps + z.randn_like() * (2.0 * eps).sqrt();
        let (lp_new, grad_new) = value_and_grad(&proposal);
        let log_ratio =
            &lp_new - &lp + log_q(&z, &proposal, &grad_new) - log_q(&proposal, &z, &grad);
        let u = Tensor::rand([chains], (Kind::Float, z.device()));
        // NaN ratios (a proposal where the density is not finite) are rejected
        let accept = u.log().lt_tensor(&log_ratio);
        accepted += accept.sum(Kind::Double).double_value(&[]);
        let keep = accept.unsqueeze(-1);
        z = proposal.where_self(&keep, &z);
        grad = grad_new.where_self(&keep, &grad);
        lp = lp_new.where_self(&accept, &lp);
        progress(step + 1);
    }
    let total = (chains as f64) * options.steps as f64;
    MalaResult {
        z,
        acceptance: if total > 0.0 {
            accepted / total
        } else {
            f64::NAN
        },
    }
}

/// `KL(q ‖ p)` of Gaussians `q = N(μ, diag σ²)` (one per row) from the tilted prior
/// `p(z) = N(z; 0, I) · exp(t(z)) / Z`, `Z = E_{N(0, I)}[exp t]`, per row (nats):
///
/// `KL(q ‖ p) = E_q[log q(z) − log N(z; 0, I) − t(z) + log Z] = KL(q ‖ N(0, I)) − E_q[t(z)] + log Z`,
///
/// the first term in closed form, `E_q[t]` from `samples` draws of `q` per row (libtorch's
/// generator), `log Z` given. For the energy-based prior `t(z) = −λ E(G(z))`, so the KL is
/// `KL(q ‖ N(0, I)) + λ E_q[E(G(z))] + log Z`.
pub struct TiltedKl {
    /// `KL(q ‖ N(0, I))` in closed form (`N`).
    pub standard: Tensor,
    /// The sample mean of `t(z)`, `z ~ q` (`N`).
    pub mean_tilt: Tensor,
    /// `standard − mean_tilt + log Z` (`N`).
    pub kl: Tensor,
}

/// [`TiltedKl`] of the rows of `mu`, `logvar` (`N×D`), `log_tilt` mapping latents (`M×D`) to
/// `t` (`M`), with `samples ≥ 1` draws per row and the given `log Z`.
pub fn tilted_kl(
    mu: &Tensor,
    logvar: &Tensor,
    log_tilt: &dyn Fn(&Tensor) -> Tensor,
    samples: i64,
    log_z: f64,
) -> TiltedKl {
    assert!(samples >= 1, "the tilted KL needs at least one sample");
    let (n, d) = (mu.size()[0], mu.size()[1]);
    let eps = Tensor::randn([samples, n, d], (mu.kind(), mu.device()));
    let z = &mu.unsqueeze(0) + (logvar * 0.5).exp().unsqueeze(0) * eps;
    let mean_tilt = log_tilt(&z.reshape([samples * n, d]))
        .reshape([samples, n])
        .mean_dim([0i64].as_slice(), false, Kind::Float);
    let standard = super::super::dist::kl_standard_normal(mu, logvar);
    let kl = &standard - &mean_tilt + log_z;
    TiltedKl {
        standard,
        mean_tilt,
        kl,
    }
}
