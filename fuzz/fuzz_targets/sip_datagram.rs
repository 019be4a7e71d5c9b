//! One UDP datagram through the SIP codec: parse, print and re-parse, or
//! the stateless answer; the oracle is `carillon_node::sip::fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    carillon_node::sip::fuzz::check_datagram(data);
});
