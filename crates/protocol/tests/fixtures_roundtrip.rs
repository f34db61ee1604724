//! The official x-bees examples parse into our types and serialize back to equal JSON.

use serde_json::{Value, json};
use switchboard_protocol::events::{ChannelEventData, MessageNewData};
use switchboard_protocol::{ChannelType, Envelope, EventPayload, EventType, MemberRole, Message};

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../testdata/xbees/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture exists")).unwrap()
}

fn round_trip(original: &Value) -> Value {
    let envelope: Envelope = serde_json::from_value(original.clone()).unwrap();
    serde_json::to_value(&envelope).unwrap()
}

#[test]
fn channel_created_example_round_trips() {
    let original = fixture("chat-channel-created.json");
    assert_eq!(round_trip(&original), original);

    let envelope: Envelope = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(envelope.event_type, EventType::ChannelCreated);
    let EventPayload::ChannelCreated(data) = envelope.payload().unwrap() else {
        panic!("typed payload")
    };
    assert_eq!(data.channel.channel_type, ChannelType::Group);
    assert_eq!(data.members[0].role, MemberRole::Member);
    assert_eq!(data.users[1].time_zone.as_deref(), Some("Europe/London"));
    // Typed data serializes back to the same `data` too.
    let typed: ChannelEventData = serde_json::from_value(original["data"].clone()).unwrap();
    assert_eq!(serde_json::to_value(typed).unwrap(), original["data"]);
}

#[test]
fn message_new_example_round_trips_with_nulls_kept() {
    let original = fixture("chat-message-new.json");
    let written = round_trip(&original);
    assert_eq!(written, original);
    for key in ["giphy", "quote", "forward", "event"] {
        assert_eq!(
            written["data"]["message"][key],
            Value::Null,
            "{key} stays null"
        );
    }
    let typed: MessageNewData = serde_json::from_value(original["data"].clone()).unwrap();
    assert_eq!(typed.message.text.as_deref(), Some("Hi"));
    assert_eq!(serde_json::to_value(typed).unwrap(), original["data"]);
}

#[test]
fn unknown_enum_values_and_unknown_fields_survive() {
    let mut original = fixture("chat-message-new.json");
    original["type"] = json!("chat:future:thing");
    original["newTopLevel"] = json!({"a": 1});
    let message = &mut original["data"]["message"];
    message["type"] = json!("poll");
    message["futureField"] = json!([1, 2, 3]);
    message["user"]["futureUserField"] = json!("x");
    original["data"]["channel"]["channelType"] = json!("broadcast-room");
    original["data"]["channel"]["access"] = json!("company");
    original["data"]["members"][0]["role"] = json!("guest");

    assert_eq!(round_trip(&original), original);
    let envelope: Envelope = serde_json::from_value(original.clone()).unwrap();
    assert!(matches!(
        envelope.payload().unwrap(),
        EventPayload::Unknown(_)
    ));

    let message: Message = serde_json::from_value(original["data"]["message"].clone()).unwrap();
    assert_eq!(message.message_type.as_str(), "poll");
    assert!(!message.message_type.is_known());
    assert_eq!(message.extra["futureField"], json!([1, 2, 3]));
}

#[test]
fn elements_with_every_handler_round_trip() {
    let element = json!({"actions": [
        {"button": {"text": "Open", "variant": "primary", "handler": {"link": {"url": "https://example.com"}}}},
        {"button": {"text": "Yes", "handler": {"reply": {"text": "yes"}}}},
        {"button": {"text": "Approve", "disabled": false, "handler": {"action": {"id": "approve-1"}}}},
        {"futureAction": {"x": 1}}
    ]});
    let parsed: switchboard_protocol::Element = serde_json::from_value(element.clone()).unwrap();
    assert_eq!(parsed.buttons().count(), 3);
    assert_eq!(serde_json::to_value(parsed).unwrap(), element);
}
