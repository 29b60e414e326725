#![no_main]
//! `http1_chunked`: see `volley::fuzz` and FUZZING.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| volley::fuzz::run("http1_chunked", data));
