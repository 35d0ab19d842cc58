//! Model measurements: bits per dimension of any likelihood model (the one place it is computed),
//! and the sample-quality metrics on feature vectors: FID ([`fid`]), KID ([`kid`]) and the
//! inception score ([`inception_score`]), with the feature networks ([`features`]) and the image
//! sources they read ([`source`]). The metric formulas work on `nalgebra` matrices and need no
//! libtorch; the feature networks and `bpd` do.
#[cfg(feature = "train")]
pub mod bpd;
#[cfg(feature = "train")]
pub mod features;
pub mod fid;
pub mod inception_score;
pub mod kid;
pub mod source;
