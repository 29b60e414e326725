#![no_main]
//! `units`: see `volley::fuzz` and FUZZING.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| volley::fuzz::run("units", data));
