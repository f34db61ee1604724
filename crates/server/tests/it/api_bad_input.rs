//! Bad input: each request answers the contract's error body with the right
//! status and a message naming the field, and changes nothing.

use crate::support::TestServer;
use serde_json::{Value, json};

const CHANNELS: &str = "/v2/conversations/channels";

/// What a person can see; compared before and after each bad request.
async fn snapshot(server: &TestServer, token: &str, channel: &str) -> Value {
    json!({
        "channels": server.get(CHANNELS, token).await.expect(200),
        "channel": server.get(&format!("{CHANNELS}/{channel}"), token).await.expect(200),
        "messages": server.get(&format!("{CHANNELS}/{channel}/messages?limit=100"), token).await.expect(200),
        "users": server.get("/v2/users?limit=100", &server.company_key).await.expect(200),
    })
}

#[tokio::test]
async fn malformed_bodies_name_the_problem_and_change_nothing() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let channel = server.channel(&token, &[]).await;
    let message = server.say(&token, &channel, "first").await;
    let messages = format!("{CHANNELS}/{channel}/messages");
    let before = snapshot(&server, &token, &channel).await;

    let raw = |path: String, body: &'static str| {
        let request = server
            .client
            .post(format!("{}{path}", server.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body);
        async move { crate::support::reply(request.send().await.unwrap()).await }
    };
    raw(messages.clone(), "{\"text\": ").await.expect_error(
        400,
        "ValidationException",
        "not valid JSON",
    );
    raw(messages.clone(), "[1, 2]")
        .await
        .expect_error(400, "ValidationException", "JSON object");
    raw(messages.clone(), "{\"userId\": 7}").await.expect_error(
        400,
        "ValidationException",
        "userId",
    );

    let cases: Vec<(String, Value, &str)> = vec![
        (messages.clone(), json!({"text": 42}), "text: invalid type"),
        (messages.clone(), json!({}), "text: a message needs text"),
        (
            messages.clone(),
            json!({"text": "   "}),
            "text: a message needs text",
        ),
        (
            messages.clone(),
            json!({"text": "a".repeat(10_001)}),
            "text: is 10001 characters long; the limit is 10000",
        ),
        (
            messages.clone(),
            json!({"text": "x", "silent": "yes"}),
            "silent: invalid type",
        ),
        (
            messages.clone(),
            json!({"text": "x", "elements": {"actions": []}}),
            "elements: invalid type",
        ),
        (
            messages.clone(),
            json!({"text": "x", "elements": [{"actions": [{"button": {"text": ""}}]}]}),
            "elements[0].actions[0].button.text",
        ),
        (
            messages.clone(),
            json!({"text": "x", "elements": [{"actions": [{"button": {}}]}]}),
            "elements[0].actions[0].button",
        ),
        (
            messages.clone(),
            json!({"text": "x", "attachments": (0..11).map(|i| json!({"id": format!("file_{i}")})).collect::<Vec<_>>()}),
            "attachments: has 11 attachments; the limit is 10",
        ),
        (
            messages.clone(),
            json!({"text": "x", "attachments": [{"id": "not a file id"}]}),
            "attachments[0].id",
        ),
        (
            messages.clone(),
            json!({"text": "x", "attachments": [{}]}),
            "attachments[0]: missing field `id`",
        ),
        (
            messages.clone(),
            json!({"text": "x", "quote": {}}),
            "quote: missing field `messageId`",
        ),
        (
            messages.clone(),
            json!({"text": "x", "mentions": ["not an id"]}),
            "mentions[0]",
        ),
        (
            format!("{messages}/{message}/reactions"),
            json!({"type": ["like"]}),
            "type: invalid type",
        ),
        (
            format!("{messages}/{message}/actions"),
            json!({"actionId": 1}),
            "actionId: invalid type",
        ),
        (
            CHANNELS.to_owned(),
            json!({"subject": "s".repeat(256)}),
            "subject: is 256 characters long",
        ),
        (
            CHANNELS.to_owned(),
            json!({"channelType": "broadcast-room"}),
            "channelType",
        ),
        (CHANNELS.to_owned(), json!({"access": "company"}), "access"),
        (
            CHANNELS.to_owned(),
            json!({"members": "usr_1"}),
            "members: invalid type",
        ),
        (
            CHANNELS.to_owned(),
            json!({"membersToInvite": [{"email": "not-an-email"}]}),
            "membersToInvite[0].email",
        ),
        (
            CHANNELS.to_owned(),
            json!({"membersToInvite": [{"name": "Nobody"}]}),
            "membersToInvite[0]: needs an email or a phone",
        ),
        // serde would read these arrays as objects, field by field.
        (
            messages.clone(),
            json!({"text": "a", "quote": [message]}),
            "quote: must be an object, not an array",
        ),
        (
            messages.clone(),
            json!({"text": "a", "attachments": [["fil_1"]]}),
            "attachments[0]: must be an object, not an array",
        ),
    ];
    for (path, body, needle) in cases {
        server
            .post(&path, &token, body)
            .await
            .expect_error(400, "ValidationException", needle);
    }
    server
        .patch(
            &format!("{CHANNELS}/{channel}"),
            &token,
            json!({"set": ["Renamed", null]}),
        )
        .await
        .expect_error(
            400,
            "ValidationException",
            "set: must be an object, not an array",
        );
    // Well-formed, but naming a user that does not exist: 409, naming the field.
    server
        .post(CHANNELS, &token, json!({"members": ["usr_unknown"]}))
        .await
        .expect_error(
            409,
            "ConflictException",
            "members[0]: user `usr_unknown` was not found",
        );
    let admin: Vec<(&str, Value, &str)> = vec![
        ("/v2/users", json!({"email": "broken@"}), "email"),
        ("/v2/users", json!({"phone": "12345"}), "phone"),
        ("/v2/users", json!({"picture": "ftp://x"}), "picture"),
        ("/v2/users", json!({}), "at least a name"),
        ("/v2/users/bots", json!({}), "body: missing field `name`"),
        (
            "/v2/users/bots",
            json!({"name": " "}),
            "name: must not be empty",
        ),
        (
            "/v2/conversations/invite",
            json!({"invitees": []}),
            "invitees",
        ),
        (
            "/v2/company/keys",
            json!({"readOnly": "yes"}),
            "readOnly: invalid type",
        ),
    ];
    for (path, body, needle) in admin {
        server
            .post(path, &server.company_key, body)
            .await
            .expect_error(400, "ValidationException", needle);
    }
    server
        .post(
            "/v2/users",
            &server.company_key,
            json!({"email": "alice@example.com"}),
        )
        .await
        .expect_error(409, "ConflictException", "alice@example.com");

    assert_eq!(
        snapshot(&server, &token, &channel).await,
        before,
        "bad requests changed nothing"
    );
}

#[tokio::test]
async fn query_strings_and_ids_are_checked() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let channel = server.channel(&token, &[]).await;
    let messages = format!("{CHANNELS}/{channel}/messages");

    for (query, needle) in [
        ("limit=0", "limit: must be between 1 and 100, got 0"),
        ("limit=101", "limit: must be between 1 and 100, got 101"),
        ("offset=-1", "offset"),
        ("limit=ten", "limit"),
    ] {
        server
            .get(&format!("{messages}?{query}"), &token)
            .await
            .expect_error(400, "ValidationException", needle);
        server
            .get(&format!("{CHANNELS}?{query}"), &token)
            .await
            .expect_error(400, "ValidationException", needle);
    }
    server
        .get(&format!("{messages}?limit=100&offset=0"), &token)
        .await
        .expect(200);

    server
        .get(&format!("{CHANNELS}/ch_unknown"), &token)
        .await
        .expect_error(404, "NotFoundException", "ch_unknown");
    server
        .get(&format!("{messages}/msg_unknown"), &token)
        .await
        .expect_error(404, "NotFoundException", "msg_unknown");
    server
        .get("/v2/users/usr_unknown", &server.company_key)
        .await
        .expect_error(404, "NotFoundException", "usr_unknown");
    server
        .get("/v2/users/bots/usr_unknown", &server.company_key)
        .await
        .expect_error(404, "NotFoundException", "usr_unknown");
    server
        .delete("/v2/company/keys/key_unknown", &server.company_key)
        .await
        .expect_error(404, "NotFoundException", "key_unknown");
    server.get("/v2/nothing/here", &token).await.expect_error(
        404,
        "NotFoundException",
        "no such route",
    );
    server
        .call(reqwest::Method::PUT, "/health", "", None)
        .await
        .expect_error(405, "ValidationException", "method");
}

#[tokio::test]
async fn oversized_bodies_answer_413_and_change_nothing() {
    let server = TestServer::start_with(|config| config.http.max_body_bytes = 64 * 1024).await;
    let (_, token) = server.person("Alice").await;
    let channel = server.channel(&token, &[]).await;
    let huge = json!({"text": "x".repeat(100 * 1024)});
    server
        .post(&format!("{CHANNELS}/{channel}/messages"), &token, huge)
        .await
        .expect_error(413, "PayloadTooLargeException", "65536 bytes");
    // Streamed in chunks without a content length, the body is cut off at the limit too.
    let status_line = chunked_post(
        &server,
        &format!("{CHANNELS}/{channel}/messages"),
        &token,
        200 * 1024,
    )
    .await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    assert_eq!(server.message_count(&token, &channel).await, 0);
}

/// Posts a JSON body of about `size` bytes with `Transfer-Encoding: chunked`
/// over a plain socket and returns the response's status line.
async fn chunked_post(server: &TestServer, path: &str, token: &str, size: usize) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let address = server.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut chunks = vec![b"{\"text\": \"".to_vec()];
    chunks.extend(std::iter::repeat_n(vec![b'x'; 8 * 1024], size / (8 * 1024)));
    for chunk in chunks {
        let framed = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk,
            b"\r\n".to_vec(),
        ]
        .concat();
        // The server may answer and stop reading before the whole body is sent.
        if socket.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut status_line = String::new();
    BufReader::new(socket)
        .read_line(&mut status_line)
        .await
        .unwrap();
    status_line
}

/// A raw request, for what the JSON helpers cannot send.
async fn raw(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    key: &str,
    content_type: Option<&str>,
    body: &str,
) -> crate::support::Reply {
    let mut request = server
        .client
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(key)
        .body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    crate::support::reply(request.send().await.unwrap()).await
}

#[tokio::test]
async fn every_refusal_is_the_contracts_error_body() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let channel = server.channel(&token, &[]).await;
    let before = snapshot(&server, &token, &channel).await;

    // A path segment that is not UTF-8.
    for path in [format!("{CHANNELS}/%ff"), "/files/%ff".to_owned()] {
        let refused = raw(&server, reqwest::Method::GET, &path, &token, None, "").await;
        assert_eq!(
            refused.headers["content-type"], "application/json",
            "{path}"
        );
        refused.expect_error(400, "ValidationException", "");
    }
    // A body that is not JSON by its Content-Type.
    let messages = format!("{CHANNELS}/{channel}/messages");
    raw(
        &server,
        reqwest::Method::POST,
        &messages,
        &token,
        Some("text/plain"),
        r#"{"text": "plain"}"#,
    )
    .await
    .expect_error(415, "ValidationException", "application/json");
    // Permission before the body: a user token on an operator route.
    raw(
        &server,
        reqwest::Method::POST,
        "/v2/users",
        &token,
        Some("application/json"),
        "{not json",
    )
    .await
    .expect_error(403, "ForbiddenException", "company key");
    // An id of 10 kB is not sent back whole.
    let long = "x".repeat(10_000);
    let refused = server.get(&format!("{CHANNELS}/{long}"), &token).await;
    let message = refused.body["message"].as_str().unwrap().to_owned();
    assert!(message.len() < 300, "{} characters", message.len());
    refused.expect_error(404, "NotFoundException", "channel");
    assert_eq!(snapshot(&server, &token, &channel).await, before);

    // Integral numbers written as floats, as Python's json.dumps writes them.
    let (bot, _) = server.bot("Bot").await;
    let created = server
        .post(
            &format!("/v2/users/bots/{bot}/integrations"),
            &server.company_key,
            json!({"type": "webhook", "url": "https://bot.example/hook", "maxInFlight": 4.0, "timeoutMs": 5000.0}),
        )
        .await
        .expect(200);
    assert_eq!(created["integration"]["maxInFlight"], 4);
    server
        .post(
            &format!("/v2/users/bots/{bot}/integrations"),
            &server.company_key,
            json!({"type": "webhook", "url": "https://bot.example/hook", "maxInFlight": 4.5}),
        )
        .await
        .expect_error(400, "ValidationException", "maxInFlight");
}

#[tokio::test]
async fn a_client_request_id_is_kept_only_when_short_and_printable() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    for (sent, kept) in [
        ("trace-me-123".to_owned(), true),
        ("x".repeat(129), false),
        (r#"a" injected=1 b=""#.to_owned(), false),
    ] {
        let answer = server
            .client
            .get(format!("{}{CHANNELS}", server.base))
            .bearer_auth(&token)
            .header("x-request-id", &sent)
            .send()
            .await
            .unwrap();
        let answered = answer.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(answered == sent, kept, "{sent} → {answered}");
        assert!(!answered.is_empty() && answered.len() <= 128);
    }
}
