//! carillon-sip: the sans-IO SIP core: message codec, SDP, transactions and
//! dialogs (RFC 3261, 4566, 5118), digest, guard, registrar. Nothing here
//! opens a socket, reads the clock or spawns a thread; bytes and time come in
//! as arguments, and effects (send this, deliver that, arm a timer) come out
//! as values. It depends on no other Carillon crate: tenants and accounts are
//! opaque [`keys`] chosen by the node.
//!
//! Invariants: malformed input from the network is an error value (a 400 to
//! answer, or a message to drop), never a panic; every parser enforces
//! documented size limits (`message::MAX_MESSAGE_BYTES` and friends).
//!
//! Module map:
//! - [`message`]: parse and print SIP messages, stream framing, stateless
//!   rejections of malformed requests, multipart bodies.
//! - [`sdp`]: session descriptions for audio offer/answer.
//! - [`transaction`]: the four transaction machines of RFC 3261 section 17
//!   and transaction keys.
//! - [`dialog`]: dialog state of RFC 3261 section 12.
//! - [`fuzz`]: oracles asserting the codec's invariants on arbitrary bytes,
//!   for the fuzz targets in `fuzz/` and the seeded run in CI.
//! - [`digest`]: digest authentication (RFC 7616, RFC 8760).
//! - [`guard`]: per-source rate limits and authentication-failure bans.
//! - [`registrar`]: bindings, expiry, extension state (D7).
//! - [`transaction::layer`]: the transaction layer: parsing, the source
//!   guard, retransmissions and timers, typed events for its users.
//! - [`b2bua`]: the back-to-back user agent: a dialog per call leg,
//!   answers that come long after the request, CANCEL races, 2xx
//!   retransmission until ACK.
//! - [`edge`]: the layer and its users together (registrar, keepalive
//!   client, B2BUA) and the rules that route each request to one. The I/O
//!   shell is `carillon_node::sip_io`.

pub mod b2bua;
pub mod dialog;
pub mod digest;
pub mod edge;
pub mod fuzz;
pub mod guard;
pub mod keys;
pub mod message;
pub mod registrar;
pub mod sdp;
pub mod transaction;
