#![no_main]
//! `wsframe`: see `volley::fuzz` and FUZZING.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| volley::fuzz::run("wsframe", data));
