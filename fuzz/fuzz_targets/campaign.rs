#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tailor_collector::fuzzing::campaign(data);
});
