//! tch models used for training. Each follows an architecture config of `idfcodec_codec`.
pub mod idf;

pub use idf::Idf;
