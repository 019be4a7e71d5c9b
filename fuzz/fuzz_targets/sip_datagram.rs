//! One UDP datagram through the SIP codec: parse, print and re-parse, or
//! the stateless answer; the oracle is `carillon_sip::fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    carillon_sip::fuzz::check_datagram(data);
});
