//! idfcodec: the command-line front end, training, metrics and datasets around the tch-free
//! `idfcodec-codec` crate. Everything that needs libtorch is behind the `train` feature.

pub mod bench;
pub mod cli;
pub mod coding;
pub mod data;
#[cfg(feature = "train")]
pub mod device;
#[cfg(feature = "train")]
pub mod experiments;
#[cfg(feature = "train")]
pub mod export;
pub mod metrics;
#[cfg(feature = "train")]
pub mod nn;
pub mod ood;
pub mod picture;
pub mod plot;
#[cfg(feature = "train")]
pub mod train;
