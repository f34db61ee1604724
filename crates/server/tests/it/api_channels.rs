//! Channels and members through the HTTP API.

use crate::support::TestServer;
use serde_json::json;

const CHANNELS: &str = "/v2/conversations/channels";

#[tokio::test]
async fn create_group_channel_with_members_and_invitees() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bob, _) = server.person("Bob").await;
    let (bot, _) = server.bot("Helper").await;

    let created = server
        .post(
            CHANNELS,
            &alice_token,
            json!({
                "subject": "Launch", "description": "Launch planning", "access": "public",
                "members": [bob, bot, bob],
                "membersToInvite": [{"email": "Carol@Example.com", "name": "Carol"}]
            }),
        )
        .await
        .expect(200);
    let channel = &created["channel"];
    assert_eq!(channel["channelType"], "group");
    assert_eq!(channel["subject"], "Launch");
    assert_eq!(channel["access"], "public");
    assert_eq!(channel["memberCount"], 4);
    assert_eq!(channel["broadcast"], false);
    let members = created["members"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    let owner = members.iter().find(|m| m["id"] == alice.as_str()).unwrap();
    assert_eq!(owner["role"], "owner");
    assert!(
        members
            .iter()
            .filter(|m| m["id"] != alice.as_str())
            .all(|m| m["role"] == "member")
    );
    let users = created["users"].as_array().unwrap();
    let carol = users
        .iter()
        .find(|u| u["email"] == "carol@example.com")
        .expect("invitee created");
    assert_eq!(carol["name"], "Carol");
    assert_eq!(carol["bot"], false);
    assert!(
        users
            .iter()
            .any(|u| u["id"] == bot.as_str() && u["bot"] == true)
    );

    // Inviting the same email again finds the same person.
    let invited = server
        .post(
            "/v2/conversations/invite",
            &server.company_key,
            json!({"invitees": [{"email": "carol@example.com"}]}),
        )
        .await
        .expect(200);
    assert_eq!(invited["users"][0]["id"], carol["id"]);
}

#[tokio::test]
async fn channels_are_listed_by_latest_activity_with_paging() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let first = server.channel(&token, &[]).await;
    let second = server.channel(&token, &[]).await;
    let third = server.channel(&token, &[]).await;

    let ids = |body: serde_json::Value| -> Vec<String> {
        body["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["channelId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(server.get(CHANNELS, &token).await.expect(200)),
        [third.clone(), second.clone(), first.clone()]
    );

    server.say(&token, &first, "bump").await;
    assert_eq!(
        ids(server.get(CHANNELS, &token).await.expect(200)),
        [first.clone(), third.clone(), second.clone()]
    );
    assert_eq!(
        ids(server
            .get(&format!("{CHANNELS}?limit=1&offset=1"), &token)
            .await
            .expect(200)),
        vec![third.clone()]
    );
    assert_eq!(
        ids(server
            .get(&format!("{CHANNELS}?limit=2&offset=2"), &token)
            .await
            .expect(200)),
        vec![second.clone()]
    );
}

#[tokio::test]
async fn update_replaces_and_patch_sets_and_unsets() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let channel = server.channel(&token, &[]).await;
    let path = format!("{CHANNELS}/{channel}");

    let updated = server
        .put(
            &path,
            &token,
            json!({"subject": "New", "description": "Desc", "access": "public", "broadcast": true}),
        )
        .await
        .expect(200);
    assert_eq!(updated["channel"]["subject"], "New");
    assert_eq!(updated["channel"]["broadcast"], true);

    // PUT is a full replacement: absent fields go back to their defaults.
    let replaced = server
        .put(&path, &token, json!({"subject": "Only"}))
        .await
        .expect(200);
    assert_eq!(replaced["channel"]["description"], serde_json::Value::Null);
    assert_eq!(replaced["channel"]["access"], "private");
    assert_eq!(replaced["channel"]["broadcast"], false);

    let patched = server
        .patch(
            &path,
            &token,
            json!({"set": {"description": "Kept", "service": "crm"}, "unset": ["subject"]}),
        )
        .await
        .expect(200);
    assert_eq!(patched["channel"]["subject"], serde_json::Value::Null);
    assert_eq!(patched["channel"]["description"], "Kept");
    assert_eq!(patched["channel"]["service"], "crm");

    // The same patch again changes nothing, not even updatedAt.
    let again = server
        .patch(
            &path,
            &token,
            json!({"set": {"description": "Kept", "service": "crm"}, "unset": ["subject"]}),
        )
        .await
        .expect(200);
    assert_eq!(
        again["channel"]["updatedAt"],
        patched["channel"]["updatedAt"]
    );

    server
        .patch(&path, &token, json!({"unset": ["access"]}))
        .await
        .expect_error(400, "ValidationException", "unset[0]");
    let fetched = server.get(&path, &token).await.expect(200);
    assert_eq!(
        fetched["channel"], again["channel"],
        "refused patches changed nothing"
    );
    // A field both set and unset is set.
    let both = server
        .patch(
            &path,
            &token,
            json!({"set": {"subject": "x"}, "unset": ["subject", "description"]}),
        )
        .await
        .expect(200);
    assert_eq!(both["channel"]["subject"], "x");
    assert_eq!(both["channel"]["description"], serde_json::Value::Null);
}

#[tokio::test]
async fn delete_is_idempotent_and_for_moderators_only() {
    let server = TestServer::start().await;
    let (_, alice_token) = server.person("Alice").await;
    let (bob, bob_token) = server.person("Bob").await;
    let channel = server.channel(&alice_token, &[&bob]).await;
    let path = format!("{CHANNELS}/{channel}");

    server
        .delete(&path, &bob_token)
        .await
        .expect_error(403, "ForbiddenException", "owners");
    server.get(&path, &bob_token).await.expect(200);

    server.delete(&path, &alice_token).await.expect(200);
    server.delete(&path, &alice_token).await.expect(200);
    server
        .get(&path, &alice_token)
        .await
        .expect_error(404, "NotFoundException", &channel);
    let listed = server.get(CHANNELS, &bob_token).await.expect(200);
    assert!(listed["channels"].as_array().unwrap().is_empty());
    server
        .post(
            &format!("{path}/messages"),
            &alice_token,
            json!({"text": "anyone?"}),
        )
        .await
        .expect_error(404, "NotFoundException", "channel");
    server
        .delete(&format!("{CHANNELS}/ch_never_existed"), &alice_token)
        .await
        .expect_error(404, "NotFoundException", "ch_never_existed");
}

#[tokio::test]
async fn direct_channels_are_one_per_pair() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bob, bob_token) = server.person("Bob").await;

    let first = server
        .post(
            &format!("{CHANNELS}/direct"),
            &alice_token,
            json!({"memberId": bob}),
        )
        .await
        .expect(200);
    assert_eq!(first["channel"]["channelType"], "direct");
    assert_eq!(first["channel"]["memberCount"], 2);
    let id = first["channel"]["channelId"].clone();

    let from_bob = server
        .post(
            &format!("{CHANNELS}/direct"),
            &bob_token,
            json!({"memberId": alice}),
        )
        .await
        .expect(200);
    assert_eq!(from_bob["channel"]["channelId"], id);
    let via_create = server
        .post(
            CHANNELS,
            &alice_token,
            json!({"channelType": "direct", "members": [bob]}),
        )
        .await
        .expect(200);
    assert_eq!(via_create["channel"]["channelId"], id);

    let invited = server
        .post(
            &format!("{CHANNELS}/direct"),
            &alice_token,
            json!({"memberToInvite": {"email": "dana@example.com"}}),
        )
        .await
        .expect(200);
    assert_ne!(invited["channel"]["channelId"], id);

    server
        .post(
            &format!("{CHANNELS}/direct"),
            &alice_token,
            json!({"memberId": alice}),
        )
        .await
        .expect_error(400, "ValidationException", "memberId");
    server
        .post(&format!("{CHANNELS}/direct"), &alice_token, json!({}))
        .await
        .expect_error(400, "ValidationException", "memberId");
    server
        .post(
            CHANNELS,
            &alice_token,
            json!({"channelType": "direct", "members": [bob, alice]}),
        )
        .await
        .expect_error(400, "ValidationException", "exactly one other member");
    let direct = id.as_str().unwrap();
    server
        .post(
            &format!("{CHANNELS}/{direct}/members"),
            &alice_token,
            json!({"members": [bob]}),
        )
        .await
        .expect_error(409, "ConflictException", "direct channel");
}

#[tokio::test]
async fn members_are_added_idempotently_and_removed_by_the_rules() {
    let server = TestServer::start().await;
    let (_, alice_token) = server.person("Alice").await;
    let (bob, bob_token) = server.person("Bob").await;
    let (carol, carol_token) = server.person("Carol").await;
    let channel = server.channel(&alice_token, &[]).await;
    let members = format!("{CHANNELS}/{channel}/members");

    let added = server
        .post(&members, &alice_token, json!({"members": [bob]}))
        .await
        .expect(200);
    assert_eq!(added["members"].as_array().unwrap().len(), 2);
    let again = server
        .post(&members, &alice_token, json!({"members": [bob]}))
        .await
        .expect(200);
    assert_eq!(
        again["members"], added["members"],
        "adding twice changes nothing"
    );
    let invited = server
        .post(
            &members,
            &bob_token,
            json!({"membersToInvite": [{"phone": "+44 20 7946 0958", "name": "Eve"}]}),
        )
        .await
        .expect(200);
    assert_eq!(invited["members"].as_array().unwrap().len(), 3);
    assert!(
        invited["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["phone"] == "+442079460958")
    );
    let channel_now = server
        .get(&format!("{CHANNELS}/{channel}"), &alice_token)
        .await
        .expect(200);
    assert_eq!(channel_now["channel"]["memberCount"], 3);

    // Carol is not a member: she can neither see nor add.
    server
        .post(&members, &carol_token, json!({"members": [carol]}))
        .await
        .expect_error(404, "NotFoundException", "channel");

    server
        .post(&members, &alice_token, json!({"members": [carol]}))
        .await
        .expect(200);
    // A plain member may not remove others, but may leave.
    server
        .delete(&format!("{members}/{carol}"), &bob_token)
        .await
        .expect_error(403, "ForbiddenException", "remove other members");
    server
        .delete(&format!("{members}/{bob}"), &bob_token)
        .await
        .expect(200);
    server
        .get(&format!("{CHANNELS}/{channel}"), &bob_token)
        .await
        .expect_error(404, "NotFoundException", "channel");
    // The owner may remove anyone; removing a non-member is not found.
    server
        .delete(&format!("{members}/{carol}"), &alice_token)
        .await
        .expect(200);
    server
        .delete(&format!("{members}/{carol}"), &alice_token)
        .await
        .expect_error(404, "NotFoundException", "member");
    let listed = server.get(&members, &alice_token).await.expect(200);
    assert_eq!(listed["members"].as_array().unwrap().len(), 2);
    assert_eq!(listed["users"].as_array().unwrap().len(), 2);
}
