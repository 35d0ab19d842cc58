//! Bits per dimension of a dataset under a tch IDF: the exact discrete NLL of integer pixels,
//! in bits per sub-pixel. Used by `train`, `eval` and `export`.

use tch::{Device, Kind, Tensor};

use crate::nn::Idf;

/// Mean bits per sub-pixel of `images` (`N×C×H×W`, `u8`), evaluated in batches of `batch`.
pub fn dataset_bpd(model: &Idf, images: &Tensor, batch: i64, device: Device) -> f64 {
    dataset_bpd_by_group(model, images, batch, device)
        .iter()
        .sum()
}

/// Each emitted latent group's share of [`dataset_bpd`] (the factor-out of every level, then the
/// top), in one pass over `images`; the shares sum to the dataset's bpd.
pub fn dataset_bpd_by_group(model: &Idf, images: &Tensor, batch: i64, device: Device) -> Vec<f64> {
    let n = images.size()[0];
    let dims: i64 = images.size()[1..].iter().product();
    let mut nats: Vec<f64> = Vec::new();
    tch::no_grad(|| {
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let x = images
                .narrow(0, start, len)
                .to_device(device)
                .to_kind(Kind::Float);
            let groups = model.nll_by_group(&x);
            nats.resize(groups.len(), 0.0);
            for (total, g) in nats.iter_mut().zip(&groups) {
                *total += g.sum(Kind::Double).double_value(&[]);
            }
            start += len;
        }
    });
    let scale = n as f64 * dims as f64 * std::f64::consts::LN_2;
    nats.iter().map(|v| v / scale).collect()
}
