//! Channel members: list, add (idempotent), remove.

use axum::Json;
use axum::extract::State;
use switchboard_domain::limits::MAX_MEMBERS_PER_REQUEST;
use switchboard_protocol::api::*;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{invitees, ok, tags};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Acting, ActingAs, ActingJson, user_id_field};
use crate::paths::{ChannelPath, MemberPath};

/// The members of a channel and their users.
#[utoipa::path(get, path = "/v2/conversations/channels/{channelId}/members", tag = tags::MEMBERS,
    params(("channelId" = String, Path), ActingAs),
    responses((status = 200, body = MembersResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_members(
    State(app): State<AppState>,
    Acting(actor): Acting,
    ChannelPath { channel }: ChannelPath,
) -> ApiResult<Json<MembersResponse>> {
    let members = app.store.list_members(&actor, &channel).await?;
    Ok(Json(MembersResponse {
        members: members.members,
        users: members.users,
    }))
}

/// Adds users of the company and people found or created by email/phone.
/// Members already in the channel stay as they are. Answers all members.
#[utoipa::path(post, path = "/v2/conversations/channels/{channelId}/members", tag = tags::MEMBERS,
    params(("channelId" = String, Path), ActingAs), request_body = AddMembersRequest,
    responses((status = 200, body = MembersResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn add_members(
    State(app): State<AppState>,
    ChannelPath { channel }: ChannelPath,
    ActingJson { actor, body }: ActingJson<AddMembersRequest>,
) -> ApiResult<Json<MembersResponse>> {
    let ids = body.members.unwrap_or_default();
    let to_invite = body.members_to_invite.unwrap_or_default();
    if ids.is_empty() && to_invite.is_empty() {
        return Err(ApiError::validation(
            "members: give at least one of `members` and `membersToInvite`",
        ));
    }
    if ids.len() > MAX_MEMBERS_PER_REQUEST {
        return Err(ApiError::validation(format!(
            "members: has {} entries; the limit is {MAX_MEMBERS_PER_REQUEST}",
            ids.len()
        )));
    }
    let members = ids
        .iter()
        .enumerate()
        .map(|(index, id)| user_id_field(&format!("members[{index}]"), id))
        .collect::<Result<Vec<_>, _>>()?;
    let to_invite = invitees("membersToInvite", &to_invite, MAX_MEMBERS_PER_REQUEST)?;
    let members = app
        .store
        .add_members(
            &actor,
            &channel,
            members,
            to_invite,
            body.silent.unwrap_or(false),
        )
        .await?;
    Ok(Json(MembersResponse {
        members: members.members,
        users: members.users,
    }))
}

/// Removes a member: anyone may leave; owners and supervisors may remove others.
#[utoipa::path(delete, path = "/v2/conversations/channels/{channelId}/members/{memberId}", tag = tags::MEMBERS,
    params(("channelId" = String, Path), ("memberId" = String, Path), ActingAs),
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn remove_member(
    State(app): State<AppState>,
    Acting(actor): Acting,
    MemberPath { channel, member }: MemberPath,
) -> ApiResult<Json<OkResponse>> {
    app.store.remove_member(&actor, &channel, &member).await?;
    Ok(ok())
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members, add_members))
        .routes(routes!(remove_member))
}
