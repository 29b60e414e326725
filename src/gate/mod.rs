//! The CI gate: threshold expressions ([`threshold`]) judged against a run's [`figures`]; the
//! comparison of new runs with base runs ([`compare`], with [`allowance`]s, worded by
//! [`compare_summary`]); and the verdict written for CI ([`summary`]).

pub mod allowance;
pub mod compare;
pub mod compare_summary;
pub mod figures;
pub mod summary;
pub mod threshold;
pub mod verdict;
