//! The CI gate: threshold expressions ([`threshold`]) judged against a run's [`figures`], how much
//! worse a compared figure may get ([`allowance`]), and the verdict written for CI ([`summary`]).

pub mod allowance;
pub mod figures;
pub mod summary;
pub mod threshold;
pub mod verdict;
