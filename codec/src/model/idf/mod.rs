//! The integer discrete flow (IDF) family on the coding path: its latents on an ANS stream
//! ([`coding`]).

pub mod coding;

pub use coding::{decode_image, encode_image, pop_image, push_image};
