//! The CI gate: threshold expressions (written in the scenario or on the command line, parsed by
//! [`crate::scenario::threshold`]) judged against a run's [`figures`] by [`verdict`], once a
//! second for those that may abort the run and at its end; and the checks written for CI
//! ([`ci`]: JUnit XML, a Markdown table, JSON), which `volley compare` writes too.

pub mod ci;
pub mod figures;
pub mod verdict;
