//! Bits per dimension of a dataset under a tch IDF: the exact discrete NLL of integer pixels,
//! in bits per sub-pixel. Used by `train`, `eval` and `export`.

use tch::{Device, Kind, Tensor};

use crate::nn::Idf;

/// Mean bits per sub-pixel of `images` (`N×C×H×W`, `u8`), evaluated in batches of `batch`.
pub fn dataset_bpd(model: &Idf, images: &Tensor, batch: i64, device: Device) -> f64 {
    let n = images.size()[0];
    let dims: i64 = images.size()[1..].iter().product();
    let mut total_nats = 0.0;
    tch::no_grad(|| {
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let x = images
                .narrow(0, start, len)
                .to_device(device)
                .to_kind(Kind::Float);
            total_nats += model.nll(&x).sum(Kind::Double).double_value(&[]);
            start += len;
        }
    });
    total_nats / (n as f64 * dims as f64 * std::f64::consts::LN_2)
}
