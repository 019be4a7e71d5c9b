//! The call actor's shell.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{write, Services};
use crate::call::{CallInput, CallMachine, CallOutput, CallSetup};
use crate::messages::{Address, CallMsg, Envelope, Message};

/// Messages of the call actor.
#[derive(Debug)]
pub enum CallActorMsg {
    /// A message from another actor or the edge.
    Message(CallMsg),
}

/// The call actor.
pub struct CallActor<S: Services> {
    services: Arc<S>,
}

impl<S: Services> std::fmt::Debug for CallActor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallActor").finish_non_exhaustive()
    }
}

impl<S: Services> CallActor<S> {
    /// A call actor using `services`.
    pub fn new(services: Arc<S>) -> Self {
        CallActor { services }
    }
}

/// State of the call actor.
#[derive(Debug)]
pub struct CallState {
    machine: CallMachine,
    relay: String,
    session: String,
}

impl<S: Services> CallActor<S> {
    async fn run(&self, myself: &ActorRef<CallActorMsg>, state: &mut CallState, input: CallInput) {
        let mut inputs = VecDeque::from([input]);
        // Bounded: each output yields at most one input, and the machine
        // produces outputs only in answer to inputs.
        let mut steps = 0;
        while let Some(input) = inputs.pop_front() {
            steps += 1;
            assert!(steps < 256, "a call's inputs settle within a step");
            let outputs = state.machine.handle(self.services.now_ms(), input);
            for output in outputs {
                match output {
                    CallOutput::Media { step, request } => {
                        let result = self
                            .services
                            .media(&state.relay, &state.session, request)
                            .await;
                        inputs.push_back(CallInput::Media { step, result });
                    }
                    CallOutput::Ledger { op, command } => {
                        let label = format!("call/{}", state.session);
                        let result = write(&*self.services, &label, *command).await;
                        inputs.push_back(CallInput::Ledger { op, result });
                    }
                    CallOutput::Edge { node, request } => self.services.send(Envelope {
                        to: Address::Edge { node },
                        message: Message::Edge(request),
                        hops: 0,
                    }),
                    CallOutput::Send(envelope) => self.services.send(envelope),
                    CallOutput::Timer { after_ms, timer } => {
                        myself.send_after(Duration::from_millis(after_ms), move || {
                            CallActorMsg::Message(CallMsg::Timer { timer })
                        });
                    }
                    CallOutput::Stop => myself.stop(None),
                }
            }
        }
    }
}

impl<S: Services> Actor for CallActor<S> {
    type Msg = CallActorMsg;
    type State = CallState;
    type Arguments = CallSetup;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        setup: CallSetup,
    ) -> Result<Self::State, ActorProcessingErr> {
        let relay = setup.relay.clone();
        let session = setup.call.clone();
        Ok(CallState {
            machine: CallMachine::new(setup),
            relay,
            session,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        self.run(&myself, state, CallInput::Start).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let CallActorMsg::Message(m) = message;
        self.run(&myself, state, CallInput::Message(m)).await;
        Ok(())
    }
}
