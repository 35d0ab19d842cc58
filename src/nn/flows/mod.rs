//! Continuous normalizing flows on images, the IDF's ancestors: NICE ([`nice`]), RealNVP
//! ([`realnvp`]) and Glow ([`glow`]), each a `[model] family` whose config becomes one
//! [`flow::FlowSpec`] built from the shared layers ([`layers`]: coupling, actnorm, 1×1
//! convolution, permutations, scaling; squeeze and factor-out in [`flow`]) behind one
//! dequantizer ([`dequant`]). Their bits/dim are the discrete-data bound on 8-bit pixels
//! (prior + log-det + dequantization, [`flow::NllParts`]), comparable with the IDF's exact bpd.
//! The three families share one [`crate::train::Trainable`] implementation ([`FlowModel`]).

pub mod dequant;
pub mod flow;
pub mod glow;
pub mod layers;
pub mod nice;
pub mod realnvp;
mod trainable;

pub use flow::{Flow, FlowSpec};
pub use glow::Glow;
pub use nice::Nice;
pub use realnvp::RealNvp;
pub use trainable::{FlowFamily, FlowModel};
