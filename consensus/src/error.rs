//! Errors at the consensus service boundary.

/// Why the consensus service could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsensusError {
    /// No leader could be reached before the deadline; for a write, the
    /// outcome is unknown and a retry with the same command id is safe.
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
    /// The cluster refused the request (for example an invalid membership change).
    #[error("refused: {0}")]
    Refused(String),
    /// The local store failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A command or response could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(String),
    /// The node-to-node listener could not be started.
    #[error("listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
}
