#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openmosix_fuzz_bodies::procs_delta(data));
