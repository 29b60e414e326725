//! The CI gate: threshold expressions ([`threshold`]) judged against a run's [`figures`]
//! ([`verdict`]); the
//! comparison of new runs with base runs ([`compare`], with [`allowance`]s, worded by
//! [`compare_summary`], run as a command by [`compare_command`]); and the verdict written for CI
//! ([`summary`]).

pub mod allowance;
pub mod compare;
pub mod compare_command;
pub mod compare_summary;
pub mod figures;
pub mod summary;
pub mod verdict;
