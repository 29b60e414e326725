//! The CI gate: threshold expressions ([`threshold`]), evaluated against a run's results.

pub mod threshold;
