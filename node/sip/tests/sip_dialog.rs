//! Dialog state (RFC 3261 section 12): creation on both sides, route sets,
//! target refresh, CSeq rules and in-dialog request construction.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use carillon_sip::dialog::{Dialog, DialogError, DialogId, DialogState};
use carillon_sip::message::{Host, Message, Method, NameAddr, Transport, Via};

fn parse(text: &str) -> Message<'static> {
    Message::parse(text.replace('\n', "\r\n").as_bytes())
        .unwrap()
        .into_owned()
}

fn invite() -> Message<'static> {
    parse(
        "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP alice-pc.example.com;branch=z9hG4bKa1
Record-Route: <sip:p2.example.com;lr>
Record-Route: <sip:p1.example.com;lr>
From: \"Alice\" <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>
Call-ID: dlg-1
CSeq: 10 INVITE
Contact: <sip:alice@alice-pc.example.com>
Content-Length: 0

",
    )
}

fn answer(status: u16, contact: &str) -> Message<'static> {
    parse(&format!(
        "SIP/2.0 {status} X
Via: SIP/2.0/UDP alice-pc.example.com;branch=z9hG4bKa1
Record-Route: <sip:p2.example.com;lr>
Record-Route: <sip:p1.example.com;lr>
From: \"Alice\" <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>;tag=b1
Call-ID: dlg-1
CSeq: 10 INVITE
Contact: <{contact}>
Content-Length: 0

"
    ))
}

fn via(branch: &str) -> Via<'static> {
    Via::new(
        Transport::Udp,
        Host::Domain(Cow::Borrowed("alice-pc.example.com")),
        None,
        Cow::Owned(branch.into()),
    )
}

#[test]
fn uac_dialog_from_provisional_then_2xx() {
    let mut d = Dialog::uac(&invite(), &answer(180, "sip:bob@ring.example.com")).unwrap();
    assert_eq!(d.state(), DialogState::Early);
    assert_eq!(
        d.id(),
        &DialogId {
            call_id: "dlg-1".into(),
            local_tag: "a1".into(),
            remote_tag: "b1".into()
        }
    );
    // Route set: Record-Route reversed on the UAC side.
    let hops: Vec<String> = d.route_set().iter().map(|r| r.uri.to_string()).collect();
    assert_eq!(hops, ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]);
    d.on_response(&answer(200, "sip:bob@desk.example.com"))
        .unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(d.remote_target().to_string(), "sip:bob@desk.example.com");
    assert_eq!(d.local_seq(), Some(10));
    assert_eq!(d.remote_seq(), None);
}

#[test]
fn uac_early_dialog_ends_on_non_2xx() {
    let mut d = Dialog::uac(&invite(), &answer(183, "sip:bob@ring.example.com")).unwrap();
    d.on_response(&answer(486, "sip:bob@ring.example.com"))
        .unwrap();
    assert_eq!(d.state(), DialogState::Terminated);
    assert_eq!(
        d.build_request(Method::Bye, via("z9hG4bKx"), None),
        Err(DialogError::Terminated)
    );
}

#[test]
fn responses_that_create_no_dialog_are_refused() {
    assert_eq!(
        Dialog::uac(&invite(), &answer(100, "sip:b@h")).unwrap_err(),
        DialogError::NotDialogCreating(100)
    );
    assert_eq!(
        Dialog::uac(&invite(), &answer(404, "sip:b@h")).unwrap_err(),
        DialogError::NotDialogCreating(404)
    );
    let mut no_tag = answer(200, "sip:b@h");
    no_tag.headers.to.params.clear();
    assert!(matches!(
        Dialog::uac(&invite(), &no_tag),
        Err(DialogError::MissingTag(_))
    ));
}

#[test]
fn in_dialog_requests_use_loose_route_set_and_increment_cseq() {
    let mut d = Dialog::uac(&invite(), &answer(200, "sip:bob@desk.example.com")).unwrap();
    let bye = d
        .build_request(Method::Bye, via("z9hG4bKbye"), None)
        .unwrap();
    let text = String::from_utf8(bye.to_bytes()).unwrap();
    assert!(
        text.starts_with("BYE sip:bob@desk.example.com SIP/2.0\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n"),
        "{text}"
    );
    assert!(
        text.contains("To: <sip:bob@example.com>;tag=b1\r\n"),
        "{text}"
    );
    assert!(text.contains("CSeq: 11 BYE\r\n"), "{text}");
    assert_eq!(
        Message::parse(&bye.to_bytes()).unwrap(),
        bye,
        "built requests are valid messages"
    );
    let info = d
        .build_request(Method::Info, via("z9hG4bKinfo"), None)
        .unwrap();
    assert_eq!(info.headers.cseq.number, 12);
    let ack = d.build_ack(10, via("z9hG4bKack")).unwrap();
    assert_eq!((ack.headers.cseq.number, ack.method()), (10, &Method::Ack));
    assert_eq!(d.local_seq(), Some(12), "ACK does not consume a CSeq");
}

#[test]
fn strict_router_becomes_the_request_uri() {
    let mut response = answer(200, "sip:bob@desk.example.com");
    response.headers.record_route = vec![
        NameAddr::parse("<sip:p2.example.com;lr>")
            .unwrap()
            .into_owned(),
        NameAddr::parse("<sip:strict.example.com>")
            .unwrap()
            .into_owned(),
    ];
    let mut d = Dialog::uac(&invite(), &response).unwrap();
    let bye = d
        .build_request(Method::Bye, via("z9hG4bKbye"), None)
        .unwrap();
    assert_eq!(
        bye.request_uri().unwrap().to_string(),
        "sip:strict.example.com"
    );
    let routes: Vec<String> = bye
        .headers
        .route
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    assert_eq!(
        routes,
        ["sip:p2.example.com;lr", "sip:bob@desk.example.com"]
    );
}

#[test]
fn uas_dialog_tracks_remote_cseq_target_refresh_and_bye() {
    let request = invite();
    let mut d = Dialog::uas(&request, 200, "b1").unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(d.id().local_tag, "b1");
    assert_eq!(d.id().remote_tag, "a1");
    let hops: Vec<String> = d.route_set().iter().map(|r| r.uri.to_string()).collect();
    assert_eq!(
        hops,
        ["sip:p2.example.com;lr", "sip:p1.example.com;lr"],
        "UAS keeps Record-Route order"
    );
    assert_eq!(d.remote_seq(), Some(10));

    let in_dialog = |method: &str, cseq: u32, contact: &str| {
        parse(&format!(
            "{method} sip:bob@desk.example.com SIP/2.0
Via: SIP/2.0/UDP alice-pc.example.com;branch=z9hG4bK{cseq}
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>;tag=b1
Call-ID: dlg-1
CSeq: {cseq} {method}
Contact: <{contact}>
Content-Length: 0

"
        ))
    };
    let reinvite = in_dialog("INVITE", 11, "sip:alice@laptop.example.com");
    assert_eq!(
        DialogId::for_incoming_request(&reinvite).as_ref(),
        Some(d.id())
    );
    d.on_request(&reinvite).unwrap();
    assert_eq!(
        d.remote_target().to_string(),
        "sip:alice@laptop.example.com"
    );
    assert_eq!(
        d.on_request(&in_dialog("INFO", 5, "sip:x@y")),
        Err(DialogError::CSeqOutOfOrder {
            received: 5,
            last: 11
        })
    );
    d.on_request(&in_dialog("ACK", 11, "sip:alice@laptop.example.com"))
        .unwrap();
    // A UAS dialog that never sent a request starts its CSeq at 1.
    let notify = d
        .build_request(Method::Notify, via("z9hG4bKn"), None)
        .unwrap();
    assert_eq!(notify.headers.cseq.number, 1);
    assert_eq!(notify.headers.from.tag(), Some("b1"));
    assert_eq!(
        notify.request_uri().unwrap().to_string(),
        "sip:alice@laptop.example.com"
    );
    d.on_request(&in_dialog("BYE", 12, "sip:alice@laptop.example.com"))
        .unwrap();
    assert_eq!(d.state(), DialogState::Terminated);
    assert_eq!(
        d.on_request(&in_dialog("BYE", 13, "sip:a@b")),
        Err(DialogError::Terminated)
    );
}

#[test]
fn uas_early_dialog_confirmed_or_ended_by_the_final_response() {
    let mut d = Dialog::uas(&invite(), 180, "b1").unwrap();
    assert_eq!(d.state(), DialogState::Early);
    d.on_sent_final_response(200);
    assert_eq!(d.state(), DialogState::Confirmed);
    let mut d = Dialog::uas(&invite(), 183, "b1").unwrap();
    d.on_sent_final_response(480);
    assert_eq!(d.state(), DialogState::Terminated);
}

#[test]
fn messages_of_other_dialogs_are_refused() {
    let mut d = Dialog::uac(&invite(), &answer(200, "sip:bob@desk.example.com")).unwrap();
    let mut other = answer(200, "sip:bob@desk.example.com");
    other.headers.to.set_tag(Cow::Borrowed("zzz"));
    assert_eq!(d.on_response(&other), Err(DialogError::OtherDialog));
    let mut no_contact = invite();
    no_contact.headers.contact.clear();
    assert_eq!(
        Dialog::uas(&no_contact, 200, "b1").unwrap_err(),
        DialogError::MissingContact
    );
}
