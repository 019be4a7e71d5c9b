//! The waiting caller's announcements (Q6) by exact output sequences: the
//! place asked of the queue, the prompts one after another, an offer that
//! stops them at once, and no announcement while an agent is offered.

use super::exit_tests::{spec, timer, waiting};
use super::io::*;
use super::tests::{feed, media};
use crate::messages::CallMsg;
use crate::model::UserId;

fn announce_events(finished: usize) -> CallInput {
    media(
        MediaStep::AnnounceEvents,
        MediaReply::Events(
            (0..finished)
                .map(|_| MediaEvent {
                    kind: "generated_finished".into(),
                    leg: CALLER_LEG.into(),
                    digit: None,
                })
                .collect(),
        ),
    )
}

#[test]
fn the_place_then_the_periodic_prompt_and_an_offer_stops_them_at_once() {
    let (mut m, out) = waiting(&spec(serde_json::json!({
        "name": "Support", "announce_position": true,
        "periodic_announcement": {"prompt": "queue-periodic-announce", "every_s": 20}
    })));
    assert_eq!(out, ["send queue/2/24 enqueued", "timer 20000 4"]);
    assert_eq!(
        feed(&mut m, 21_010, timer(1, 4)),
        ["send queue/2/24 Queue(Where { entry: \"c1\" })"]
    );
    assert_eq!(
        feed(
            &mut m,
            21_020,
            CallInput::Message(CallMsg::Place {
                position: Some(3),
                estimated_wait_s: Some(200)
            })
        ),
        ["media events"],
        "the queue does not announce the wait: only the place"
    );
    assert_eq!(
        feed(
            &mut m,
            21_021,
            media(MediaStep::AnnounceBaseline, MediaReply::Events(Vec::new()))
        ),
        [
            "media stop caller",
            "media prompt queue-thereare",
            "timer 250 5"
        ]
    );
    assert_eq!(feed(&mut m, 21_271, timer(1, 5)), ["media events"]);
    assert_eq!(
        feed(&mut m, 21_272, announce_events(0)),
        ["timer 250 5"],
        "still playing"
    );
    m.handle(21_522, timer(1, 5));
    assert_eq!(
        feed(&mut m, 21_523, announce_events(1)),
        ["media prompt digits/2", "timer 250 5"]
    );
    // An agent accepts the offer: the announcement stops now.
    assert_eq!(
        feed(
            &mut m,
            21_600,
            CallInput::Message(CallMsg::Offered { agent: UserId(10) })
        ),
        [
            "media stop caller",
            "media music moh-default",
            "timer 20000 4"
        ]
    );
    assert!(
        feed(&mut m, 21_773, timer(1, 5)).is_empty(),
        "its polling ends"
    );
    assert_eq!(
        feed(&mut m, 41_600, timer(1, 4)),
        ["timer 20000 4"],
        "no announcement while the agent is offered the call"
    );
}

#[test]
fn a_periodic_prompt_alone_plays_then_music_comes_back_and_the_cycle_goes_on() {
    let (mut m, _) = waiting(&spec(serde_json::json!({
        "name": "Support",
        "periodic_announcement": {"prompt": "queue-periodic-announce", "every_s": 10}
    })));
    assert_eq!(feed(&mut m, 11_010, timer(1, 4)), ["media events"]);
    assert_eq!(
        feed(
            &mut m,
            11_011,
            media(MediaStep::AnnounceBaseline, MediaReply::Events(Vec::new()))
        ),
        [
            "media stop caller",
            "media prompt queue-periodic-announce",
            "timer 250 5"
        ]
    );
    m.handle(11_261, timer(1, 5));
    assert_eq!(
        feed(&mut m, 11_262, announce_events(1)),
        [
            "media stop caller",
            "media music moh-default",
            "timer 10000 4"
        ]
    );
}
