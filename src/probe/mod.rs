//! The probe loop: compose → send → (watch) → evaluate → record.

pub mod compose;
pub mod record;
pub mod send;
pub mod sign;
