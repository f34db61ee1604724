//! The rules the server enforces on requests, added to the generated OpenAPI
//! document so that it states them: string patterns (from
//! [`switchboard_domain::patterns`], which the checks are tested against),
//! lengths and counts, closed enums where a request may only name known
//! values, and the rules between fields (`anyOf`/`oneOf`/`not`) — at least one
//! of `text`, `elements`, `attachments`; exactly one of `memberId` and
//! `memberToInvite`; which fields each integration type takes.
//!
//! A request the document admits is one the server takes, or answers 404
//! (the route's object is not there) or 409 (the body conflicts with what is
//! stored); it never answers it 400. Schemathesis holds the server to this in
//! the test suite.
//!
//! A body left out (or `null`) is read as `{}`, so where `{}` is valid the
//! document marks the body as not required and admits `null`.
//!
//! What no schema can state is written in the operations' descriptions: a
//! company key must name the acting user (`userId`) on conversation routes.

use serde_json::{Value, json};
use switchboard_domain::limits::*;
use switchboard_domain::patterns;
use switchboard_protocol::EventType;
use switchboard_protocol::resources::{ChannelAccess, ChannelType};
use switchboard_store::USER_PROFILE_FIELDS;

/// What the rules depend on that the server is configured with.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The largest file an upload may announce (`files.max_bytes`).
    pub max_file_bytes: u64,
}

/// Adds every rule to `document` (the generated document as JSON).
///
/// # Panics
/// When a rule names a place the document does not have: the rules and the
/// types have drifted apart (a unit test calls this).
pub fn apply(document: &mut Value, settings: Settings) {
    let mut rules = schema_rules();
    rules.push((
        "UploadFileRequest/properties/size",
        json!({"maximum": settings.max_file_bytes}),
    ));
    for (pointer, addition) in rules {
        let target = document
            .pointer_mut(&format!("/components/schemas/{pointer}"))
            .unwrap_or_else(|| panic!("the OpenAPI document has no schema at {pointer}"));
        merge(target, addition);
    }
    for (path, method, name, addition) in parameter_rules() {
        let parameters = document
            .pointer_mut(&format!("{}/{method}/parameters", path_pointer(path)))
            .and_then(Value::as_array_mut)
            .unwrap_or_else(|| panic!("the OpenAPI document has no {method} {path}"));
        let parameter = parameters
            .iter_mut()
            .find(|parameter| parameter["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"));
        merge(&mut parameter["schema"], addition);
    }
    for (path, method, addition) in body_rules() {
        let schema = document
            .pointer_mut(&format!(
                "{}/{method}/requestBody/content/application~1json/schema",
                path_pointer(path)
            ))
            .unwrap_or_else(|| panic!("{method} {path} has no JSON body"));
        *schema = json!({"allOf": [schema.take(), addition]});
    }
    bodies_left_out_are_empty_objects(document);
}

/// A request without a body is read as `{}` (so is an empty or `null` one):
/// where the body's schema admits `{}` (no field required, no rule between
/// fields), the document says the body may be left out or be `null`.
fn bodies_left_out_are_empty_objects(document: &mut Value) {
    let schemas = document["components"]["schemas"].clone();
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for operations in paths.values_mut() {
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let Some(body) = operation.get_mut("requestBody") else {
                continue;
            };
            let admits_empty = body
                .pointer("/content/application~1json/schema")
                .is_some_and(|schema| admits_empty_object(schema, &schemas));
            if admits_empty {
                body["required"] = json!(false);
                // `null` is read as no body too.
                let schema = &mut body["content"]["application/json"]["schema"];
                *schema = json!({"anyOf": [schema.take(), {"type": "null"}]});
            }
        }
    }
}

/// Whether `{}` is valid against `schema` (references resolved in `schemas`),
/// judged by what the document uses: `required`, `anyOf`/`oneOf`/`not`,
/// `minProperties`, and `allOf` of parts that each admit it.
fn admits_empty_object(schema: &Value, schemas: &Value) -> bool {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return admits_empty_object(&schemas[name], schemas);
    }
    let requires_fields = schema["required"]
        .as_array()
        .is_some_and(|required| !required.is_empty());
    let ruled = ["anyOf", "oneOf", "not", "minProperties"]
        .iter()
        .any(|rule| schema.get(rule).is_some());
    let object = schema["type"].is_null() || schema["type"] == "object";
    let parts_admit = schema["allOf"]
        .as_array()
        .is_none_or(|parts| parts.iter().all(|part| admits_empty_object(part, schemas)));
    object && !requires_fields && !ruled && parts_admit
}

/// The JSON pointer of a path's entry in the document (`/` and `~` escaped).
fn path_pointer(path: &str) -> String {
    format!("/paths/{}", path.replace('~', "~0").replace('/', "~1"))
}

/// Sets each key of `addition` in `target` (objects merge key by key; any
/// other value replaces).
fn merge(target: &mut Value, addition: Value) {
    match (target, addition) {
        (Value::Object(target), Value::Object(addition)) => {
            for (key, value) in addition {
                match target.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        target.insert(key, value);
                    }
                }
            }
        }
        (target, addition) => *target = addition,
    }
}

/// A string of `pattern`, at most `max` characters.
fn string(pattern: &str, max: usize) -> Value {
    json!({"pattern": pattern, "maxLength": max})
}

fn short_field() -> Value {
    json!({"pattern": patterns::SHORT_FIELD, "minLength": 1, "maxLength": MAX_SHORT_FIELD_CHARS})
}

fn id() -> Value {
    json!({"pattern": patterns::ID, "maxLength": 128})
}

fn url() -> Value {
    string(patterns::URL, MAX_URL_CHARS)
}

fn email() -> Value {
    string(patterns::EMAIL, MAX_SHORT_FIELD_CHARS)
}

fn phone() -> Value {
    json!({"pattern": patterns::PHONE})
}

/// Only the known values of a request enum (or null: not given).
fn closed_enum(values: &[&str]) -> Value {
    let mut values: Vec<Value> = values.iter().map(|value| json!(value)).collect();
    values.push(Value::Null);
    json!({"enum": values})
}

/// The object holds `field`, and not as null.
fn given(field: &str, schema: Value) -> Value {
    json!({"required": [field], "properties": {field: schema}})
}

/// `field` is absent or null.
fn not_given(field: &str) -> Value {
    json!({"properties": {field: {"type": "null"}}})
}

/// Rules on component schemas: `(schema/…/property, keywords to add)`.
fn schema_rules() -> Vec<(&'static str, Value)> {
    let event_types: Vec<&str> = EventType::KNOWN.to_vec();
    let integration_fields = json!({
        "url": url(),
        "queueUrl": string(patterns::SQS_QUEUE_URL, MAX_URL_CHARS),
        "region": {"pattern": patterns::AWS_REGION},
        "accessKeyId": {"pattern": patterns::AWS_ACCESS_KEY_ID},
        "secretAccessKey": {"pattern": patterns::AWS_SECRET_ACCESS_KEY},
        "endpointUrl": url(),
        "eventTypes": {"items": {"enum": event_types}},
        "timeoutMs": {"minimum": MIN_DELIVERY_TIMEOUT_MS, "maximum": MAX_DELIVERY_TIMEOUT_MS},
        "retryScheduleMs": {"maxItems": MAX_RETRY_DELAYS, "items": {"minimum": 1, "maximum": MAX_RETRY_DELAY_MS}},
        "maxInFlight": {"minimum": 1, "maximum": MAX_IN_FLIGHT_PER_INTEGRATION},
    });
    // Each type takes its own fields and not the other's.
    let webhook_branch = json!({"allOf": [
        given("type", json!({"const": "webhook"})),
        given("url", json!({"type": "string"})),
        not_given("queueUrl"), not_given("region"), not_given("accessKeyId"),
        not_given("secretAccessKey"), not_given("endpointUrl"),
    ]});
    let sqs_branch = json!({"allOf": [
        given("type", json!({"const": "sqs"})),
        given("queueUrl", json!({"type": "string"})),
        given("region", json!({"type": "string"})),
        given("accessKeyId", json!({"type": "string"})),
        given("secretAccessKey", json!({"type": "string"})),
        not_given("url"),
    ]});
    let text_content = json!({
        "text": string(patterns::TEXT, MAX_MESSAGE_TEXT_CHARS),
        "elements": {"maxItems": MAX_ELEMENTS},
        "attachments": {"maxItems": MAX_ATTACHMENTS, "uniqueItems": true},
        "mentions": {"maxItems": MAX_MENTIONS, "items": id()},
    });
    let channel_settings = json!({
        "subject": string(patterns::TEXT, MAX_SUBJECT_CHARS),
        "description": string(patterns::TEXT, MAX_DESCRIPTION_CHARS),
        "service": string(patterns::TEXT, MAX_SUBJECT_CHARS),
        "serviceTitle": string(patterns::TEXT, MAX_SUBJECT_CHARS),
        "access": closed_enum(ChannelAccess::KNOWN),
    });
    let profile = json!({
        "name": short_field(), "email": email(), "phone": phone(), "picture": url(),
        "locale": short_field(), "timeZone": short_field(), "pbxDomain": short_field(),
        "pbxPort": short_field(), "pbxExtension": short_field(), "pbxSerial": short_field(),
        "pbxUserId": short_field(),
    });
    let one_member = |list: &str| json!({"required": [list], "properties": {list: {"type": "array", "minItems": 1, "maxItems": 1}}});
    let no_members =
        |list: &str| json!({"properties": {list: {"type": ["array", "null"], "maxItems": 0}}});
    vec![
        (
            "UserToInvite/properties",
            json!({"email": email(), "phone": phone(), "name": short_field()}),
        ),
        (
            "UserToInvite",
            json!({"anyOf": [given("email", json!({"type": "string"})), given("phone", json!({"type": "string"}))]}),
        ),
        (
            "CreateChannelRequest/properties",
            json!({
                "channelType": closed_enum(ChannelType::KNOWN),
                "subject": string(patterns::TEXT, MAX_SUBJECT_CHARS),
                "description": string(patterns::TEXT, MAX_DESCRIPTION_CHARS),
                "access": closed_enum(ChannelAccess::KNOWN),
                "members": {"maxItems": MAX_MEMBERS_PER_REQUEST, "items": id()},
                "membersToInvite": {"maxItems": MAX_MEMBERS_PER_REQUEST},
            }),
        ),
        // A direct channel has exactly one other member, named or invited.
        (
            "CreateChannelRequest",
            json!({"anyOf": [
                {"properties": {"channelType": {"not": {"const": "direct"}}}},
                {"allOf": [one_member("members"), no_members("membersToInvite")]},
                {"allOf": [one_member("membersToInvite"), no_members("members")]},
            ]}),
        ),
        ("DirectChannelRequest/properties/memberId", id()),
        (
            "DirectChannelRequest",
            json!({"oneOf": [
                {"allOf": [given("memberId", json!({"type": "string"})), not_given("memberToInvite")]},
                {"allOf": [given("memberToInvite", json!({"type": "object"})), not_given("memberId")]},
            ]}),
        ),
        ("UpdateChannelRequest/properties", channel_settings),
        (
            "AddMembersRequest/properties",
            json!({
                "members": {"maxItems": MAX_MEMBERS_PER_REQUEST, "items": id()},
                "membersToInvite": {"maxItems": MAX_MEMBERS_PER_REQUEST},
            }),
        ),
        (
            "AddMembersRequest",
            json!({"anyOf": [
                given("members", json!({"type": "array", "minItems": 1})),
                given("membersToInvite", json!({"type": "array", "minItems": 1})),
            ]}),
        ),
        ("AttachmentRef/properties/id", id()),
        ("QuoteRef/properties/messageId", id()),
        ("SendMessageRequest/properties", text_content.clone()),
        (
            "SendMessageRequest",
            json!({"anyOf": [
                given("text", json!({"type": "string", "pattern": patterns::NON_BLANK_TEXT})),
                given("elements", json!({"type": "array", "minItems": 1})),
                given("attachments", json!({"type": "array", "minItems": 1})),
            ]}),
        ),
        ("UpdateMessageRequest/properties", text_content),
        (
            "Element",
            json!({"required": ["actions"], "properties": {"actions": {"type": "array", "minItems": 1, "maxItems": MAX_ACTIONS_PER_ELEMENT}}, "additionalProperties": false}),
        ),
        (
            "ElementAction",
            json!({"required": ["button"], "properties": {"button": {"not": {"type": "null"}}}, "additionalProperties": false}),
        ),
        (
            "Button/properties",
            json!({
                "text": {"pattern": patterns::NON_BLANK_TEXT, "maxLength": MAX_BUTTON_TEXT_CHARS},
                "variant": short_field(),
            }),
        ),
        (
            "ButtonHandler",
            json!({"additionalProperties": false, "oneOf": [
                {"allOf": [given("link", json!({"type": "object"})), not_given("reply"), not_given("action")]},
                {"allOf": [given("reply", json!({"type": "object"})), not_given("link"), not_given("action")]},
                {"allOf": [given("action", json!({"type": "object"})), not_given("link"), not_given("reply")]},
            ]}),
        ),
        ("LinkHandler/properties/url", url()),
        (
            "ReplyHandler/properties/text",
            string(patterns::TEXT, MAX_MESSAGE_TEXT_CHARS),
        ),
        (
            "ActionHandler/properties/id",
            json!({"pattern": patterns::NON_BLANK_TEXT, "maxLength": MAX_ACTION_ID_CHARS}),
        ),
        (
            "ReactionRequest/properties/type",
            string(patterns::REACTION_TYPE, MAX_REACTION_TYPE_CHARS),
        ),
        (
            "PressButtonRequest/properties/actionId",
            json!({"pattern": patterns::NON_BLANK_TEXT, "maxLength": MAX_ACTION_ID_CHARS}),
        ),
        ("UserFields/properties", profile),
        (
            "PatchUserRequest/properties/unset/items",
            json!({"enum": USER_PROFILE_FIELDS}),
        ),
        (
            "InviteRequest/properties/invitees",
            json!({"minItems": 1, "maxItems": MAX_INVITEES}),
        ),
        (
            "BotRequest/properties",
            json!({
                "name": short_field(), "picture": url(), "locale": short_field(),
                "timeZone": short_field(), "access": short_field(), "integrationType": short_field(),
            }),
        ),
        ("BotRequest", json!({"additionalProperties": false})),
        ("CreateCompanyKeyRequest/properties/name", short_field()),
        (
            "UploadFileRequest/properties",
            json!({
                "name": {"pattern": patterns::FILE_NAME, "minLength": 1, "maxLength": MAX_SHORT_FIELD_CHARS, "not": {"enum": [".", ".."]}},
                "contentType": string(patterns::CONTENT_TYPE, MAX_SHORT_FIELD_CHARS),
            }),
        ),
        (
            "CreateIntegrationRequest/properties",
            integration_fields.clone(),
        ),
        (
            "CreateIntegrationRequest/properties/type",
            json!({"enum": ["webhook", "sqs"]}),
        ),
        (
            "CreateIntegrationRequest",
            json!({"oneOf": [webhook_branch, sqs_branch]}),
        ),
        ("IntegrationFields/properties", integration_fields),
        // A new access key id comes with its secret.
        (
            "IntegrationFields",
            json!({"anyOf": [not_given("accessKeyId"), given("secretAccessKey", json!({"type": "string"}))]}),
        ),
        (
            "ReplayRequest/properties/eventIds",
            json!({"minItems": 1, "maxItems": MAX_REPLAY_EVENT_IDS, "items": id()}),
        ),
        (
            "ReplayRequest",
            json!({"oneOf": [
                {"allOf": [given("since", json!({"not": {"type": "null"}})), not_given("eventIds")]},
                {"allOf": [given("eventIds", json!({"type": "array"})), not_given("since"), not_given("until")]},
            ]}),
        ),
    ]
}

/// Rules on parameters: `(path, method, parameter, keywords to add)`.
fn parameter_rules() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    vec![
        (
            "/v2/conversations/channels/{channelId}/messages/{messageId}/reactions/{type}",
            "delete",
            "type",
            string(patterns::REACTION_TYPE, MAX_REACTION_TYPE_CHARS),
        ),
        (
            "/v2/conversations/channels/{channelId}/messages",
            "post",
            "Idempotency-Key",
            json!({"pattern": patterns::IDEMPOTENCY_KEY}),
        ),
        ("/v2/users", "get", "email", email()),
    ]
}

/// Rules on one operation's body where its schema is shared with others:
/// `(path, method, schema the body must also match)`.
fn body_rules() -> Vec<(&'static str, &'static str, Value)> {
    vec![(
        "/v2/users",
        "post",
        // A new person needs a name, an email or a phone.
        json!({"anyOf": [
            given("name", json!({"type": "string"})),
            given("email", json!({"type": "string"})),
            given("phone", json!({"type": "string"})),
        ]}),
    )]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rule_finds_its_place_in_the_document() {
        let document = crate::openapi(crate::openapi_rules::Settings {
            max_file_bytes: 1_000,
        });
        let schemas = &document["components"]["schemas"];
        assert_eq!(
            schemas["SendMessageRequest"]["anyOf"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert!(schemas["UserFields"]["properties"]["email"]["pattern"].is_string());
        assert_eq!(
            schemas["UploadFileRequest"]["properties"]["size"]["maximum"],
            1_000
        );
    }

    #[test]
    fn a_body_may_be_left_out_only_where_an_empty_object_is_valid() {
        let document = crate::openapi(crate::openapi_rules::Settings {
            max_file_bytes: 1_000,
        });
        let required = |path: &str, method: &str| {
            let pointer = format!(
                "{}/{method}/requestBody/required",
                super::path_pointer(path)
            );
            document.pointer(&pointer).and_then(|value| value.as_bool())
        };
        let channel = "/v2/conversations/channels/{channelId}";
        assert_eq!(
            required(&format!("{channel}/typing/start"), "post"),
            Some(false)
        );
        assert_eq!(required(channel, "put"), Some(false));
        assert_eq!(required(&format!("{channel}/messages"), "post"), Some(true));
        assert_eq!(required("/v2/users", "post"), Some(true));
    }
}
