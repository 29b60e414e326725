//! The CI gate: threshold expressions ([`threshold`]) judged against a run's [`figures`], and the
//! verdict written for CI ([`summary`]).

pub mod figures;
pub mod summary;
pub mod threshold;
pub mod verdict;
