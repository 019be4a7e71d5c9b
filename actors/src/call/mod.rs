//! The call actor of an inbound queue call: [`machine`] (sans-IO) with its
//! [`io`] and its queue [`exit`]s; its ractor shell is in `crate::shell`.

pub mod announce;
mod ending;
pub mod exit;
mod forks;
pub mod io;
pub mod machine;

pub use io::{
    CallInput, CallOp, CallOutput, CallSetup, MediaEvent, MediaReply, MediaRequest, MediaStep,
    AGENT_LEG, CALLER_LEG, DEFAULT_MUSIC,
};
pub use machine::CallMachine;

#[cfg(test)]
mod announce_tests;
#[cfg(test)]
mod exit_tests;
#[cfg(test)]
mod tests;
