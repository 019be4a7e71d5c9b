//! A TCP/WebSocket byte stream through the SIP codec: keep-alives,
//! Content-Length framing, then each framed message as a datagram; the
//! oracle is `carillon_sip::fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    carillon_sip::fuzz::check_stream(data);
});
