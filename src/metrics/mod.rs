//! Model measurements: bits per dimension of any likelihood model (the one place it is computed).
pub mod bpd;
