#![no_main]
//! `scenario`: see `volley::fuzz` and FUZZING.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| volley::fuzz::run("scenario", data));
