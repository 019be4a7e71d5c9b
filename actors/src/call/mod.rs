//! The call actor of an inbound queue call: [`machine`] (sans-IO); its
//! ractor shell is in `crate::shell`.

pub mod machine;

pub use machine::{
    CallInput, CallMachine, CallOp, CallOutput, CallSetup, MediaEvent, MediaReply, MediaRequest,
    MediaStep, AGENT_LEG, CALLER_LEG, DEFAULT_MUSIC,
};

#[cfg(test)]
mod tests;
