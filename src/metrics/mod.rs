//! Model measurements: bits per dimension (the one place it is computed for the IDF family).
pub mod bpd;
