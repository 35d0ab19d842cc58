//! tch models used for training: the IDF (following an architecture config of
//! `idfcodec_codec`), the VAE and GAN families, the VAE with an energy-based prior, the continuous flows (NICE, RealNVP, Glow), the layers and distributions they share, and
//! trained models as image generators.
pub mod dist;
pub mod ebm_prior;
pub mod flows;
pub mod gan;
pub mod generative;
pub mod hvae;
pub mod idf;
pub mod layers;
pub mod vae;

pub use idf::Idf;
