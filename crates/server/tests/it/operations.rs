//! Operations: health, the OpenAPI document, request ids, and the real
//! binary (bootstrap, configuration errors, graceful shutdown, admin CLI).

use std::time::Duration;

use crate::support::TestServer;
use crate::support::process::{BINARY, ServerProcess};
use serde_json::json;
use tokio::process::Command;

#[tokio::test]
async fn health_needs_no_credential() {
    let server = TestServer::start().await;
    let health = server.get("/health", "").await.expect(200);
    assert_eq!(health["status"], "ok");
}

/// Every route the API serves, as `METHOD path`.
const ROUTES: &[&str] = &[
    "GET /health",
    "GET /openapi.json",
    "GET /metrics",
    "POST /v2/conversations/channels/{channelId}/files",
    "GET /v2/conversations/channels/{channelId}/files/{fileId}",
    "GET /v2/conversations/channels/{channelId}/messages/{messageId}/files/{fileId}/url",
    "PUT /files/{key}",
    "GET /files/{key}",
    "GET /v2/conversations/channels",
    "POST /v2/conversations/channels",
    "POST /v2/conversations/channels/direct",
    "GET /v2/conversations/channels/{channelId}",
    "PUT /v2/conversations/channels/{channelId}",
    "PATCH /v2/conversations/channels/{channelId}",
    "DELETE /v2/conversations/channels/{channelId}",
    "GET /v2/conversations/channels/{channelId}/members",
    "POST /v2/conversations/channels/{channelId}/members",
    "DELETE /v2/conversations/channels/{channelId}/members/{memberId}",
    "GET /v2/conversations/channels/{channelId}/messages",
    "POST /v2/conversations/channels/{channelId}/messages",
    "GET /v2/conversations/channels/{channelId}/messages/{messageId}",
    "PUT /v2/conversations/channels/{channelId}/messages/{messageId}",
    "PATCH /v2/conversations/channels/{channelId}/messages/{messageId}",
    "DELETE /v2/conversations/channels/{channelId}/messages/{messageId}",
    "POST /v2/conversations/channels/{channelId}/messages/{messageId}/reactions",
    "DELETE /v2/conversations/channels/{channelId}/messages/{messageId}/reactions/{type}",
    "POST /v2/conversations/channels/{channelId}/messages/{messageId}/actions",
    "POST /v2/conversations/channels/{channelId}/typing/start",
    "POST /v2/conversations/channels/{channelId}/typing/stop",
    "GET /v2/conversations/channels/{channelId}/typing",
    "GET /v2/conversations/events",
    "GET /v2/company",
    "POST /v2/conversations/invite",
    "GET /v2/users",
    "POST /v2/users",
    "GET /v2/users/{userId}",
    "PATCH /v2/users/{userId}",
    "GET /v2/users/{userId}/tokens",
    "POST /v2/users/{userId}/tokens",
    "DELETE /v2/users/{userId}/tokens/{tokenId}",
    "GET /v2/users/bots",
    "POST /v2/users/bots",
    "GET /v2/users/bots/{botId}",
    "PUT /v2/users/bots/{botId}",
    "DELETE /v2/users/bots/{botId}",
    "GET /v2/users/bots/{botId}/keys",
    "POST /v2/users/bots/{botId}/keys",
    "DELETE /v2/users/bots/{botId}/keys/{keyId}",
    "GET /v2/company/keys",
    "POST /v2/company/keys",
    "DELETE /v2/company/keys/{keyId}",
    "GET /v2/users/bots/{botId}/integrations",
    "POST /v2/users/bots/{botId}/integrations",
    "GET /v2/users/bots/{botId}/integrations/{integrationId}",
    "PATCH /v2/users/bots/{botId}/integrations/{integrationId}",
    "DELETE /v2/users/bots/{botId}/integrations/{integrationId}",
    "POST /v2/users/bots/{botId}/integrations/{integrationId}/test",
    "POST /v2/users/bots/{botId}/integrations/{integrationId}/pause",
    "POST /v2/users/bots/{botId}/integrations/{integrationId}/resume",
    "POST /v2/users/bots/{botId}/integrations/{integrationId}/rotate-secret",
    "GET /v2/users/bots/{botId}/integrations/{integrationId}/deliveries",
    "POST /v2/users/bots/{botId}/integrations/{integrationId}/replay",
    "GET /v2/bot/events",
    "POST /v2/bot/events/ack",
    "POST /v2/bot/events/release",
];

#[tokio::test]
async fn the_openapi_document_covers_every_route_and_every_documented_route_exists() {
    let server = TestServer::start().await;
    let document = server.get("/openapi.json", "").await.expect(200);
    let mut documented = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let mut expected: Vec<String> = ROUTES.iter().map(|route| route.to_string()).collect();
    expected.sort();
    assert_eq!(documented, expected);

    // Each documented route is served (answers something other than "no such route").
    for route in ROUTES {
        let (method, path) = route.split_once(' ').unwrap();
        let concrete = path
            .replace("{channelId}", "ch_x")
            .replace("{messageId}", "msg_x")
            .replace("{memberId}", "usr_x")
            .replace("{userId}", "usr_x")
            .replace("{botId}", "usr_x")
            .replace("{keyId}", "key_x")
            .replace("{tokenId}", "key_x")
            .replace("{integrationId}", "int_x")
            .replace("{type}", "like")
            .replace("{fileId}", "file_x")
            .replace("{key}", "obj_x");
        let reply = server
            .call(
                method.parse().unwrap(),
                &concrete,
                &server.company_key,
                None,
            )
            .await;
        assert_ne!(
            reply.body["message"], "no such route",
            "{route} is not served"
        );
        assert_ne!(reply.status.as_u16(), 405, "{route} is not served");
    }
    assert!(document["components"]["schemas"]["Message"].is_object());
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn the_openapi_document_states_the_rules_the_server_enforces() {
    let server = TestServer::start().await;
    let document = server.get("/openapi.json", "").await.expect(200);
    let paths = &document["paths"];
    // Bodies the server takes as optional are optional in the document.
    for (path, method) in [
        ("/v2/conversations/channels", "post"),
        ("/v2/conversations/channels/{channelId}", "patch"),
        ("/v2/company/keys", "post"),
    ] {
        let required = &paths[path][method]["requestBody"]["required"];
        assert!(
            required.is_null() || *required == false,
            "{method} {path}: {required}"
        );
    }
    // Ranges.
    let parameter = |path: &str, name: &str| {
        paths[path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no {name}"))["schema"]
            .clone()
    };
    for path in ["/v2/users", "/v2/conversations/channels"] {
        assert_eq!(parameter(path, "limit")["maximum"], 100, "{path}");
        assert_eq!(parameter(path, "limit")["minimum"], 1, "{path}");
        assert_eq!(parameter(path, "offset")["maximum"], 100000, "{path}");
    }
    let schemas = &document["components"]["schemas"];
    let typing = &schemas["TypingStartRequest"]["properties"]["ttlSeconds"];
    assert_eq!(
        (typing["minimum"].clone(), typing["maximum"].clone()),
        (1.into(), 120.into())
    );
    let rotation = &schemas["RotateSecretRequest"]["properties"]["previousSecretValidSeconds"];
    assert_eq!(rotation["maximum"], 604800);
    assert_eq!(schemas["MessageAttachment"]["required"][1], "fsId");
    // What `unset` may name, as the server checks it.
    for (schema, names) in [
        (
            "PartialUpdateChannelRequest",
            switchboard_protocol::api::CHANNEL_UNSETTABLE,
        ),
        (
            "PartialUpdateMessageRequest",
            switchboard_protocol::api::MESSAGE_UNSETTABLE,
        ),
        (
            "UpdateIntegrationRequest",
            switchboard_protocol::api::SQS_INTEGRATION_UNSETTABLE,
        ),
    ] {
        assert_eq!(
            schemas[schema]["properties"]["unset"]["items"]["enum"],
            json!(names),
            "{schema}"
        );
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_errors_repeat_it() {
    let server = TestServer::start().await;
    let ok = server.get("/health", "").await;
    assert!(ok.headers.get("x-request-id").is_some());
    let failed = server.get("/v2/conversations/channels", "").await;
    let header = failed
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(failed.body["requestId"], header.as_str());
    let chosen = server
        .client
        .get(format!("{}/v2/conversations/channels", server.base))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.headers()["x-request-id"], "trace-me-123");
    assert_eq!(
        crate::support::reply(chosen).await.body["requestId"],
        "trace-me-123"
    );
}

async fn spawn_serve(
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (ServerProcess, Vec<String>, String) {
    let process = ServerProcess::start(data_dir, env).await;
    let (printed, base) = (process.printed.clone(), process.base.clone());
    (process, printed, base)
}

#[tokio::test]
async fn serve_prints_a_generated_key_once_and_stops_on_sigterm() {
    let data_dir = tempfile::tempdir().unwrap();
    let (child, printed, address) = spawn_serve(data_dir.path(), &[]).await;
    let key = printed
        .iter()
        .map(|line| line.trim())
        .find(|line| line.starts_with("wsk-v1-"))
        .unwrap_or_else(|| panic!("no key printed in {printed:?}"))
        .to_owned();
    let client = reqwest::Client::new();
    let users = client
        .get(format!("{address}/v2/users"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    assert!(
        child.terminate().await.success(),
        "a clean exit after SIGTERM"
    );

    // Second start on the same database: nothing new is created or printed.
    let (again, printed_again, address) = spawn_serve(data_dir.path(), &[]).await;
    assert!(
        printed_again.iter().all(|line| !line.contains("wsk-v1-")),
        "{printed_again:?}"
    );
    let users = client
        .get(format!("{address}/v2/users"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200, "the same key still works");
    assert!(again.terminate().await.success());
}

#[tokio::test]
async fn a_configured_bootstrap_key_is_used_and_not_printed() {
    let data_dir = tempfile::tempdir().unwrap();
    let key = format!("wsk-v1-{}", "K3y".repeat(31));
    let (child, printed, address) = spawn_serve(
        data_dir.path(),
        &[("SWITCHBOARD_BOOTSTRAP__COMPANY_KEY", &key)],
    )
    .await;
    assert!(
        printed.iter().all(|line| !line.contains("wsk-v1-")),
        "{printed:?}"
    );
    let response = reqwest::Client::new()
        .post(format!("{address}/v2/users"))
        .bearer_auth(&key)
        .json(&json!({"name": "Scripted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(child.terminate().await.success());
}

#[tokio::test]
async fn invalid_configuration_is_refused_naming_the_field() {
    for (key, value, needle) in [
        ("SWITCHBOARD_HTTP__LISTEN", "nowhere", "http.listen"),
        (
            "SWITCHBOARD_BOOTSTRAP__COMPANY_KEY",
            "wsk-v1-tooshort",
            "bootstrap.company_key",
        ),
        (
            "SWITCHBOARD_HTTP__REQUEST_TIMEOUT",
            "soon",
            "http.request_timeout",
        ),
    ] {
        let output = Command::new(BINARY)
            .arg("serve")
            .env(key, value)
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{key}={value}: {stderr}");
        assert!(
            !stderr.contains("tooshort"),
            "a configured secret is never echoed: {stderr}"
        );
    }
}

#[tokio::test]
async fn company_create_adds_a_company_to_a_running_servers_database() {
    let server = TestServer::start().await;
    let output = Command::new(BINARY)
        .args(["company", "create", "--name", "Acme"])
        .env("SWITCHBOARD_DATA_DIR", server.data_dir.path())
        .envs(server.database_env())
        .env("SWITCHBOARD_LOG__FILTER", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let key = stdout
        .split_whitespace()
        .find(|word| word.starts_with("wsk-v1-"))
        .expect("key printed");
    let created = server
        .post("/v2/users", key, json!({"name": "Wile"}))
        .await
        .expect(200);
    let ours = server
        .get(
            &format!("/v2/users/{}", created["user"]["id"].as_str().unwrap()),
            &server.company_key,
        )
        .await;
    ours.expect_error(404, "NotFoundException", "was not found");
}

#[tokio::test]
async fn on_postgres_serve_refuses_an_unmigrated_database_until_migrate_runs() {
    let database = crate::support::store::TestStore::empty_postgres().await;
    let data_dir = tempfile::tempdir().unwrap();
    let url = database.url.clone().unwrap();
    let run = |command: &'static str| {
        let mut process = Command::new(BINARY);
        process
            .arg(command)
            .env("SWITCHBOARD_DATABASE__URL", &url)
            .env("SWITCHBOARD_DATA_DIR", data_dir.path())
            .env("SWITCHBOARD_HTTP__LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_LOG__FILTER", "warn");
        async move {
            tokio::time::timeout(Duration::from_secs(30), process.output())
                .await
                .expect("the command ends within 30 s")
                .unwrap()
        }
    };
    let refused = run("serve").await;
    assert!(!refused.status.success());
    let complaint = String::from_utf8_lossy(&refused.stderr);
    assert!(
        complaint.contains("lacks migrations")
            && complaint.contains("run `switchboard migrate` first"),
        "{complaint}"
    );
    let migrated = run("migrate").await;
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("PostgreSQL"));
    let server = ServerProcess::start(
        data_dir.path(),
        &[("SWITCHBOARD_DATABASE__URL", url.as_str())],
    )
    .await;
    assert!(server.terminate().await.success());
}
