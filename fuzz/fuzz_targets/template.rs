#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate_fuzz::template(data));
