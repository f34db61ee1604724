//! Access rules: each test tries to break one.

use crate::support::TestServer;
use serde_json::json;

const CHANNELS: &str = "/v2/conversations/channels";

#[tokio::test]
async fn non_members_see_and_write_nothing_of_a_channel() {
    let server = TestServer::start().await;
    let (_, alice_token) = server.person("Alice").await;
    let (mallory, mallory_token) = server.person("Mallory").await;
    let (_, bot_key) = server.bot("Outsider bot").await;
    let channel = server.channel(&alice_token, &[]).await;
    let message = server.say(&alice_token, &channel, "private").await;
    let base = format!("{CHANNELS}/{channel}");

    for key in [&mallory_token, &bot_key] {
        server
            .get(&base, key)
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .get(&format!("{base}/members"), key)
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .get(&format!("{base}/messages"), key)
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .get(&format!("{base}/messages/{message}"), key)
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .get(&format!("{base}/typing"), key)
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .post(&format!("{base}/messages"), key, json!({"text": "hi"}))
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .put(&base, key, json!({"subject": "mine"}))
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .patch(&base, key, json!({"set": {"subject": "mine"}}))
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .delete(&base, key)
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .post(
                &format!("{base}/members"),
                key,
                json!({"members": [mallory]}),
            )
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .put(
                &format!("{base}/messages/{message}"),
                key,
                json!({"text": "x"}),
            )
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .delete(&format!("{base}/messages/{message}"), key)
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .post(
                &format!("{base}/messages/{message}/reactions"),
                key,
                json!({"type": "like"}),
            )
            .await
            .expect_error(404, "NotFoundException", "channel");
        server
            .post(&format!("{base}/typing/start"), key, json!({}))
            .await
            .expect_error(404, "NotFoundException", "channel");
        let listed = server.get(CHANNELS, key).await.expect(200);
        assert!(listed["channels"].as_array().unwrap().is_empty());
    }
    // The company key acting for a non-member is refused the same way.
    server
        .get(
            &format!("{base}/messages?userId={mallory}"),
            &server.company_key,
        )
        .await
        .expect_error(404, "NotFoundException", "channel");
    let unchanged = server.get(&base, &alice_token).await.expect(200);
    assert_eq!(unchanged["channel"]["subject"], "Test");
    assert_eq!(unchanged["channel"]["memberCount"], 1);
    assert_eq!(server.message_count(&alice_token, &channel).await, 1);
}

#[tokio::test]
async fn company_keys_act_for_the_user_they_name() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let channel = server.channel(&alice_token, &[]).await;
    let key = &server.company_key;

    server
        .get(CHANNELS, key)
        .await
        .expect_error(400, "ValidationException", "userId is required");
    let listed = server
        .get(&format!("{CHANNELS}?userId={alice}"), key)
        .await
        .expect(200);
    assert_eq!(listed["channels"][0]["channelId"], channel.as_str());
    let sent = server
        .post(
            &format!("{CHANNELS}/{channel}/messages"),
            key,
            json!({"userId": alice, "text": "via company key"}),
        )
        .await
        .expect(200);
    assert_eq!(sent["message"]["user"]["id"], alice.as_str());
    server
        .post(
            &format!("{CHANNELS}/{channel}/messages?userId={alice}"),
            key,
            json!({"userId": "usr_other", "text": "x"}),
        )
        .await
        .expect_error(400, "ValidationException", "userId differs");
    server
        .get(&format!("{CHANNELS}?userId=usr_nobody"), key)
        .await
        .expect_error(404, "NotFoundException", "usr_nobody");

    // Bot keys and user tokens always act as themselves.
    let (bot, bot_key) = server.bot("Bot").await;
    server
        .get(&format!("{CHANNELS}?userId={alice}"), &bot_key)
        .await
        .expect_error(
            403,
            "ForbiddenException",
            "only name another user with a company key",
        );
    server
        .get(&format!("{CHANNELS}?userId={bot}"), &bot_key)
        .await
        .expect(200);
    server
        .get(&format!("{CHANNELS}?userId="), &bot_key)
        .await
        .expect(200);
    server
        .post(
            &format!("{CHANNELS}/{channel}/messages"),
            &alice_token,
            json!({"userId": bot, "text": "x"}),
        )
        .await
        .expect_error(403, "ForbiddenException", "userId");
}

#[tokio::test]
async fn another_company_sees_none_of_our_objects() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bot, _) = server.bot("Our bot").await;
    let channel = server.channel(&alice_token, &[&bot]).await;
    let message = server.say(&alice_token, &channel, "ours").await;
    let other_key = server.second_company().await;
    let other_user = server
        .post("/v2/users", &other_key, json!({"name": "Olga"}))
        .await
        .expect(200);
    let olga = other_user["user"]["id"].as_str().unwrap().to_owned();

    // Acting as one of our users with their key is "user not found".
    server
        .get(&format!("{CHANNELS}/{channel}?userId={alice}"), &other_key)
        .await
        .expect_error(404, "NotFoundException", &alice);
    // Acting as their own user, our channel does not exist.
    server
        .get(&format!("{CHANNELS}/{channel}?userId={olga}"), &other_key)
        .await
        .expect_error(404, "NotFoundException", &channel);
    server
        .get(
            &format!("{CHANNELS}/{channel}/messages/{message}?userId={olga}"),
            &other_key,
        )
        .await
        .expect_error(404, "NotFoundException", "channel");
    server
        .get(&format!("/v2/users/{alice}"), &other_key)
        .await
        .expect_error(404, "NotFoundException", &alice);
    server
        .patch(
            &format!("/v2/users/{alice}"),
            &other_key,
            json!({"set": {"name": "Hacked"}}),
        )
        .await
        .expect_error(404, "NotFoundException", &alice);
    server
        .get(&format!("/v2/users/bots/{bot}"), &other_key)
        .await
        .expect_error(404, "NotFoundException", &bot);
    server
        .delete(&format!("/v2/users/bots/{bot}"), &other_key)
        .await
        .expect_error(404, "NotFoundException", &bot);
    server
        .post(&format!("/v2/users/bots/{bot}/keys"), &other_key, json!({}))
        .await
        .expect_error(404, "NotFoundException", &bot);
    server
        .post(&format!("/v2/users/{alice}/tokens"), &other_key, json!({}))
        .await
        .expect_error(404, "NotFoundException", &alice);
    // Their channel cannot take our users as members.
    server
        .post(
            CHANNELS,
            &other_key,
            json!({"userId": olga, "members": [alice]}),
        )
        .await
        .expect_error(409, "ConflictException", "members[0]");
    let theirs = server
        .get("/v2/users?limit=100", &other_key)
        .await
        .expect(200);
    assert!(
        theirs["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["id"] != alice.as_str() && u["id"] != bot.as_str())
    );
    let bots = server.get("/v2/users/bots", &other_key).await.expect(200);
    assert!(bots["bots"].as_array().unwrap().is_empty());
    // Same email in two companies is two people.
    server
        .post(
            "/v2/users",
            &other_key,
            json!({"email": "alice@example.com"}),
        )
        .await
        .expect(200);
    let ours = server
        .get(&format!("/v2/users/{alice}"), &alice_token)
        .await
        .expect(200);
    assert_eq!(ours["user"]["name"], "Alice");
}

#[tokio::test]
async fn credentials_are_checked_revoked_and_scoped() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("Bot").await;

    server
        .get(CHANNELS, "")
        .await
        .expect_error(401, "UnauthorizedException", "Authorization");
    server.get(CHANNELS, "wsk-v1-short").await.expect_error(
        401,
        "UnauthorizedException",
        "not a switchboard key",
    );
    let unknown = format!("wsu-v1-{}", "a".repeat(93));
    server.get(CHANNELS, &unknown).await.expect_error(
        401,
        "UnauthorizedException",
        "unknown or was revoked",
    );
    let basic = server
        .client
        .get(format!("{}{CHANNELS}", server.base))
        .header("Authorization", format!("Basic {alice_token}"))
        .send()
        .await
        .unwrap();
    crate::support::reply(basic)
        .await
        .expect_error(401, "UnauthorizedException", "Bearer");

    // User tokens and bot keys cannot administer the company.
    server
        .post("/v2/users", &alice_token, json!({"name": "x"}))
        .await
        .expect_error(403, "ForbiddenException", "company key");
    server.get("/v2/users/bots", &bot_key).await.expect_error(
        403,
        "ForbiddenException",
        "company key",
    );
    server
        .post(
            &format!("/v2/users/{alice}/tokens"),
            &alice_token,
            json!({}),
        )
        .await
        .expect_error(403, "ForbiddenException", "company key");
    server
        .post("/v2/company/keys", &bot_key, json!({}))
        .await
        .expect_error(403, "ForbiddenException", "company key");

    // Revoked bot keys and user tokens stop working at once; revoking twice is fine.
    let keys = server
        .get(&format!("/v2/users/bots/{bot}/keys"), &server.company_key)
        .await
        .expect(200);
    let key_id = keys["keys"][0]["keyId"].as_str().unwrap().to_owned();
    assert_eq!(keys["keys"][0]["lastFour"], &bot_key[bot_key.len() - 4..]);
    assert!(
        keys.to_string().find(&bot_key).is_none(),
        "the key itself is never shown again"
    );
    server
        .delete(
            &format!("/v2/users/bots/{bot}/keys/{key_id}"),
            &server.company_key,
        )
        .await
        .expect(200);
    server
        .delete(
            &format!("/v2/users/bots/{bot}/keys/{key_id}"),
            &server.company_key,
        )
        .await
        .expect(200);
    server
        .get(CHANNELS, &bot_key)
        .await
        .expect_error(401, "UnauthorizedException", "revoked");
    let tokens = server
        .get(&format!("/v2/users/{alice}/tokens"), &server.company_key)
        .await
        .expect(200);
    let token_id = tokens["keys"][0]["keyId"].as_str().unwrap().to_owned();
    server
        .delete(
            &format!("/v2/users/{alice}/tokens/{token_id}"),
            &server.company_key,
        )
        .await
        .expect(200);
    server
        .get(CHANNELS, &alice_token)
        .await
        .expect_error(401, "UnauthorizedException", "revoked");

    // A deleted bot's keys stop working.
    let (doomed, doomed_key) = server.bot("Doomed").await;
    server.get(CHANNELS, &doomed_key).await.expect(200);
    server
        .delete(&format!("/v2/users/bots/{doomed}"), &server.company_key)
        .await
        .expect(200);
    server
        .get(CHANNELS, &doomed_key)
        .await
        .expect_error(401, "UnauthorizedException", "revoked");
    server
        .get(&format!("/v2/users/bots/{doomed}"), &server.company_key)
        .await
        .expect_error(404, "NotFoundException", &doomed);
}

#[tokio::test]
async fn read_only_company_keys_only_read_and_company_keys_rotate() {
    let server = TestServer::start().await;
    let (alice, _) = server.person("Alice").await;
    let created = server
        .post(
            "/v2/company/keys",
            &server.company_key,
            json!({"name": "reporting", "readOnly": true}),
        )
        .await
        .expect(200);
    let read_only = created["key"].as_str().unwrap().to_owned();
    assert!(read_only.starts_with("wsk-v1-") && read_only.len() == 100);

    server
        .get(&format!("{CHANNELS}?userId={alice}"), &read_only)
        .await
        .expect(200);
    server.get("/v2/users", &read_only).await.expect(200);
    server
        .post(CHANNELS, &read_only, json!({"userId": alice}))
        .await
        .expect_error(403, "ForbiddenException", "read-only");
    server
        .post("/v2/users", &read_only, json!({"name": "x"}))
        .await
        .expect_error(403, "ForbiddenException", "read-only");
    let listed = server
        .get(&format!("{CHANNELS}?userId={alice}"), &read_only)
        .await
        .expect(200);
    assert!(
        listed["channels"].as_array().unwrap().is_empty(),
        "the refused create created nothing"
    );

    // The last read-write key cannot be revoked; after creating another it can.
    let keys = server
        .get("/v2/company/keys", &server.company_key)
        .await
        .expect(200);
    let first_id = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["readOnly"] == false)
        .unwrap()["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .delete(&format!("/v2/company/keys/{first_id}"), &server.company_key)
        .await
        .expect_error(409, "ConflictException", "last read-write");
    let second = server
        .post("/v2/company/keys", &server.company_key, json!({}))
        .await
        .expect(200);
    let second_key = second["key"].as_str().unwrap().to_owned();
    server
        .delete(&format!("/v2/company/keys/{first_id}"), &second_key)
        .await
        .expect(200);
    server
        .get("/v2/users", &server.company_key)
        .await
        .expect_error(401, "UnauthorizedException", "revoked");
    server.get("/v2/users", &second_key).await.expect(200);
}

#[tokio::test]
async fn requests_over_the_rate_limit_answer_429_per_key_and_operation() {
    let server = TestServer::start_with(|config| {
        config.http.rate_limit_per_second = 1;
        config.http.rate_limit_burst = 3;
    })
    .await;
    let (_, alice_token) = server.person("Alice").await;
    let (_, bob_token) = server.person("Bob").await;
    for _ in 0..3 {
        server.get(CHANNELS, &alice_token).await.expect(200);
    }
    let limited = server.get(CHANNELS, &alice_token).await;
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    limited.expect_error(429, "TooManyRequestsException", "retry in");
    // Another operation of the same key, and another key, have their own buckets.
    server
        .post(CHANNELS, &alice_token, json!({}))
        .await
        .expect(200);
    server.get(CHANNELS, &bob_token).await.expect(200);
    // The bucket refills at the configured rate.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    server.get(CHANNELS, &alice_token).await.expect(200);
}

#[tokio::test]
async fn a_bad_credential_is_refused_before_any_route_is_looked_up() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let bogus = "wsu-v1-".to_owned() + &"x".repeat(93);
    for path in [
        "/v2/no/such/route",
        "/v2/users/me/whatever",
        "/v2/conversations/channels/ch_1/nothing",
    ] {
        // Clients probe their key with a GET: 401 means "sign in again".
        for key in ["", "not-a-key", bogus.as_str()] {
            server
                .get(path, key)
                .await
                .expect_error(401, "UnauthorizedException", "");
        }
        server
            .get(path, &token)
            .await
            .expect_error(404, "NotFoundException", "no such route");
    }
    // A method a route does not take: the credential first, then 405.
    server
        .delete("/v2/users", &bogus)
        .await
        .expect_error(401, "UnauthorizedException", "unknown");
    server
        .delete("/v2/users", &server.company_key)
        .await
        .expect_error(405, "ValidationException", "DELETE");
    // Outside the API nothing is asked for.
    server
        .get("/no/such/page", "")
        .await
        .expect_error(404, "NotFoundException", "no such route");
}
