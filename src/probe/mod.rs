//! The probe loop: compose → send → (watch) → evaluate → record.

pub mod compose;
pub mod send;
