//! People, invitations and bots through the HTTP API.

use crate::support::TestServer;
use serde_json::{Value, json};

#[tokio::test]
async fn people_are_created_found_and_changed() {
    let server = TestServer::start().await;
    let key = &server.company_key;
    let created = server
        .post(
            "/v2/users",
            key,
            json!({"name": "Alice", "email": "Alice@Example.com", "locale": "en", "timeZone": "Europe/Berlin",
                   "pbxExtension": "1001", "picture": "https://example.com/a.png"}),
        )
        .await
        .expect(200);
    let user = &created["user"];
    let id = user["id"].as_str().unwrap();
    assert_eq!(
        user["email"], "alice@example.com",
        "emails are stored in lower case"
    );
    assert_eq!(user["bot"], false);
    assert!(user.get("phone").is_none(), "absent fields are omitted");
    assert_eq!(
        user["company"].as_str().map(|c| c.starts_with("co_")),
        Some(true)
    );

    let found = server
        .get("/v2/users?email=ALICE@example.com", key)
        .await
        .expect(200);
    assert_eq!(found["users"].as_array().unwrap().len(), 1);
    assert_eq!(found["users"][0]["id"], id);
    assert!(
        server
            .get("/v2/users?email=nobody@example.com", key)
            .await
            .expect(200)["users"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let patched = server
        .patch(&format!("/v2/users/{id}"), key, json!({"set": {"name": "Alice J.", "phone": "+4930123456"}, "unset": ["pbxExtension", "picture"]}))
        .await
        .expect(200);
    assert_eq!(patched["user"]["name"], "Alice J.");
    assert_eq!(patched["user"]["phone"], "+4930123456");
    assert_eq!(patched["user"]["locale"], "en", "fields not named stay");
    assert!(
        patched["user"].get("pbxExtension").is_none() && patched["user"].get("picture").is_none()
    );
    assert_ne!(patched["user"]["updatedAt"], user["updatedAt"]);

    server
        .post(
            "/v2/users",
            key,
            json!({"name": "Bob", "email": "bob@example.com"}),
        )
        .await
        .expect(200);
    server
        .patch(
            &format!("/v2/users/{id}"),
            key,
            json!({"set": {"email": "BOB@example.com"}}),
        )
        .await
        .expect_error(409, "ConflictException", "bob@example.com");
    server
        .patch(&format!("/v2/users/{id}"), key, json!({"unset": ["bot"]}))
        .await
        .expect_error(400, "ValidationException", "unset[0]");
    let unchanged = server
        .get(&format!("/v2/users/{id}"), key)
        .await
        .expect(200);
    assert_eq!(
        unchanged["user"], patched["user"],
        "refused changes changed nothing"
    );

    // Invitations find people by email or phone, or create them.
    let invited = server
        .post(
            "/v2/conversations/invite",
            key,
            json!({"invitees": [{"email": "alice@EXAMPLE.com"}, {"phone": "+49 30 123456"}, {"email": "new@example.com", "name": "New"}]}),
        )
        .await
        .expect(200);
    let ids: Vec<&Value> = invited["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["id"])
        .collect();
    assert_eq!(ids[0], id);
    assert_eq!(ids[1], id, "found by phone");
    assert_eq!(invited["users"][2]["name"], "New");
    let all = server.get("/v2/users?limit=100", key).await.expect(200);
    assert_eq!(all["users"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn bots_are_managed_with_the_company_key() {
    let server = TestServer::start().await;
    let key = &server.company_key;
    let (bot, bot_key) = server.bot("Helper").await;

    let listed = server.get("/v2/users/bots", key).await.expect(200);
    assert_eq!(listed["bots"].as_array().unwrap().len(), 1);
    assert_eq!(listed["bots"][0]["bot"], true);
    // x-bees answers the bare bot object, and keeps its directory fields.
    let replaced = server
        .put(
            &format!("/v2/users/bots/{bot}"),
            key,
            json!({"name": "Helper 2", "picture": "https://example.com/b.png",
                   "access": "company", "integrationType": "webhook", "searchable": false}),
        )
        .await
        .expect(200);
    assert_eq!(replaced["id"], bot.as_str());
    assert_eq!(replaced["bot"], true);
    assert_eq!(replaced["name"], "Helper 2");
    assert_eq!(replaced["access"], "company");
    assert_eq!(replaced["integrationType"], "webhook");
    assert_eq!(replaced["searchable"], false);
    let fetched = server
        .get(&format!("/v2/users/bots/{bot}"), key)
        .await
        .expect(200);
    assert_eq!(fetched, replaced);
    // A field the server does not know is refused by name, never dropped.
    server
        .put(
            &format!("/v2/users/bots/{bot}"),
            key,
            json!({"name": "Helper 3", "mood": "cheerful", "colour": "blue"}),
        )
        .await
        .expect_error(
            400,
            "ValidationException",
            "mood, colour: not a field of a bot",
        );
    let created = server
        .post(
            "/v2/users/bots",
            key,
            json!({"name": "Directory bot", "access": "public", "searchable": true}),
        )
        .await
        .expect(200);
    assert_eq!(created["bot"], true);
    assert_eq!(created["access"], "public");
    assert!(created.get("integrationType").is_none());
    server
        .delete(
            &format!("/v2/users/bots/{}", created["id"].as_str().unwrap()),
            key,
        )
        .await
        .expect(200);
    // A person is not a bot.
    let (person, _) = server.person("Alice").await;
    server
        .get(&format!("/v2/users/bots/{person}"), key)
        .await
        .expect_error(404, "NotFoundException", &person);
    server
        .post(&format!("/v2/users/bots/{person}/keys"), key, json!({}))
        .await
        .expect_error(404, "NotFoundException", &person);
    // A bot gets no user token, and its profile is changed through /users/bots.
    server
        .post(&format!("/v2/users/{bot}/tokens"), key, json!({}))
        .await
        .expect_error(404, "NotFoundException", &bot);
    server
        .patch(
            &format!("/v2/users/{bot}"),
            key,
            json!({"set": {"name": "x"}}),
        )
        .await
        .expect_error(404, "NotFoundException", &bot);

    // The bot acts with its key; a deleted bot leaves its channels.
    let channel = server
        .post(
            "/v2/conversations/channels",
            &bot_key,
            json!({"subject": "Bot room", "members": [person]}),
        )
        .await
        .expect(200);
    let channel_id = channel["channel"]["channelId"].as_str().unwrap().to_owned();
    server
        .delete(&format!("/v2/users/bots/{bot}"), key)
        .await
        .expect(200);
    server
        .delete(&format!("/v2/users/bots/{bot}"), key)
        .await
        .expect_error(404, "NotFoundException", &bot);
    let members = server
        .get(
            &format!("/v2/conversations/channels/{channel_id}/members?userId={person}"),
            key,
        )
        .await
        .expect(200);
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    assert!(
        server.get("/v2/users/bots", key).await.expect(200)["bots"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
