#![no_main]
//! `http1_head`: see `volley::fuzz` and FUZZING.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| volley::fuzz::run("http1_head", data));
