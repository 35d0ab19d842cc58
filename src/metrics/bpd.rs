//! Bits per dimension: the exact discrete NLL of integer pixels, in bits per sub-pixel, of any
//! model that gives per-image NLL terms ([`Likelihood`]). The one place it is computed; `train`
//! (the loss of a batch, the test figure), `eval` and `export` use it.

use tch::{Device, Kind, Tensor};

/// A model of integer pixels with a per-image negative log-likelihood (or a bound on it), split
/// into terms that sum to it (the IDF: one per emitted latent group).
pub trait Likelihood {
    /// Per-image NLL in nats of each term (each of shape `N`) for `x` (`N×C×H×W`, float kind
    /// holding integers `0..=255`).
    fn nll_terms(&self, x: &Tensor) -> Vec<Tensor>;

    /// Per-image NLL in nats: the terms summed.
    fn nll(&self, x: &Tensor) -> Tensor {
        let terms = self.nll_terms(x);
        terms
            .iter()
            .skip(1)
            .fold(terms[0].shallow_clone(), |acc, g| acc + g)
    }
}

/// `nats` per image of `dims` sub-pixels each → bits per sub-pixel.
fn per_dim(dims: i64) -> f64 {
    dims as f64 * std::f64::consts::LN_2
}

/// Mean bits per sub-pixel of a batch `x` (the training loss; differentiable).
pub fn batch_bpd<M: Likelihood + ?Sized>(model: &M, x: &Tensor) -> Tensor {
    batch_bpd_of(&model.nll(x), x)
}

/// Mean bits per sub-pixel of per-image NLLs `nll` (nats, shape `N`) of the batch `x`
/// (differentiable; a VAE's β-weighted bound goes through here).
pub fn batch_bpd_of(nll: &Tensor, x: &Tensor) -> Tensor {
    let dims: i64 = x.size()[1..].iter().product();
    nll.mean(Kind::Float) / per_dim(dims)
}

/// Nats per image of `dims` sub-pixels → bits per sub-pixel.
pub fn nats_to_bpd(nats: f64, dims: i64) -> f64 {
    nats / per_dim(dims)
}

/// Bits per sub-pixel → nats per image of `dims` sub-pixels.
pub fn bpd_to_nats(bpd: f64, dims: i64) -> f64 {
    bpd * per_dim(dims)
}

/// Mean bits per sub-pixel of `images` (`N×C×H×W`, `u8`), evaluated in batches of `batch`.
pub fn dataset_bpd<M: Likelihood + ?Sized>(
    model: &M,
    images: &Tensor,
    batch: i64,
    device: Device,
) -> f64 {
    dataset_bpd_by_term(model, images, batch, device)
        .iter()
        .sum()
}

/// Runs `f` without gradients on consecutive batches of at most `batch` images of `images`
/// (`u8`, `N×C×H×W`), in order, each moved to `device` as floats holding the pixel values: how
/// every family evaluates a dataset.
pub fn for_each_batch(images: &Tensor, batch: i64, device: Device, mut f: impl FnMut(&Tensor)) {
    let n = images.size()[0];
    let batch = batch.max(1);
    tch::no_grad(|| {
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let x = images
                .narrow(0, start, len)
                .to_device(device)
                .to_kind(Kind::Float);
            f(&x);
            start += len;
        }
    });
}

/// The mean negative importance-weighted bound (nats per image) over `images` (`u8`) with `k`
/// samples per image, in batches of about `batch / k` images; `iwae(x, k)` is a model's bound
/// on `log p(x)` per image (shape `N`). The VAE families' IWAE evaluation.
pub fn dataset_iwae(
    images: &Tensor,
    k: i64,
    batch: i64,
    device: Device,
    iwae: impl Fn(&Tensor, i64) -> Tensor,
) -> f64 {
    let n = images.size()[0];
    let per = (batch / k).max(1);
    let mut total = 0.0;
    for_each_batch(images, per, device, |x| {
        total -= iwae(x, k).sum(Kind::Double).double_value(&[]);
    });
    total / n.max(1) as f64
}

/// Each term's share of [`dataset_bpd`] (for the IDF the factor-out of every level, then the
/// top), in one pass over `images`; the shares sum to the dataset's bpd.
pub fn dataset_bpd_by_term<M: Likelihood + ?Sized>(
    model: &M,
    images: &Tensor,
    batch: i64,
    device: Device,
) -> Vec<f64> {
    let n = images.size()[0];
    let dims: i64 = images.size()[1..].iter().product();
    let mut nats: Vec<f64> = Vec::new();
    for_each_batch(images, batch, device, |x| {
        let terms = model.nll_terms(x);
        nats.resize(terms.len(), 0.0);
        for (total, g) in nats.iter_mut().zip(&terms) {
            *total += g.sum(Kind::Double).double_value(&[]);
        }
    });
    let scale = n as f64 * dims as f64 * std::f64::consts::LN_2;
    nats.iter().map(|v| v / scale).collect()
}
