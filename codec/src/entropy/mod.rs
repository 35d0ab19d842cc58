//! Entropy coding on constriction's ANS: turning priors into integer probability tables, and the
//! framing of a tile's ANS stream. Nothing here knows a model family: a family's coder (e.g.
//! [`crate::model::idf`]) decides what to push and pop, with these tables, onto these streams.
//!
//! - [`mixture`]: a discretized logistic mixture → a [`LatentModel`] (a categorical over a window
//!   plus an escape), bit-exact on every machine.
//! - [`stream`]: where a tile's stream starts and must end ([`StreamStart`]), opening and
//!   finishing payloads, and the early stop of a stream that has run dry.

pub mod mixture;
pub mod stream;

pub use mixture::{
    categorical, BinnedStart, LatentModel, LogisticMixture, MixtureParams, MAX_WINDOW, PRECISION,
    WINDOW_MIN_WEIGHT, WINDOW_RADIUS,
};
pub use stream::{
    check_not_dry, close_stream, finish_stream, open_stream, start_stream, StreamStart,
    CHECKSUM_BASE, INITIAL_STATE,
};
