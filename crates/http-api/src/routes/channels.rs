//! Channels: list, create (group and direct), get, update, partial update, delete.

use axum::Json;
use axum::extract::State;
use switchboard_domain::limits::{
    MAX_DESCRIPTION_CHARS, MAX_MEMBERS_PER_REQUEST, MAX_SUBJECT_CHARS,
};
use switchboard_protocol::api::*;
use switchboard_protocol::{ChannelAccess, ChannelType};
use switchboard_store::{ChannelDetails, ChannelPatch, DirectPeer, NewChannel};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_unset, invitee, invitees, ok, optional_text, tags};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Acting, ActingAs, ActingJson, ApiQuery, ListParams, user_id_field};
use crate::paths::ChannelPath;

/// The channels the user is a member of, latest activity first.
#[utoipa::path(get, path = "/v2/conversations/channels", tag = tags::CHANNELS, params(ListParams),
    responses((status = 200, body = ChannelListResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_channels(
    State(app): State<AppState>,
    Acting(actor): Acting,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<ChannelListResponse>> {
    let channels = app.store.list_channels(&actor, params.page()?).await?;
    Ok(Json(ChannelListResponse { channels }))
}

/// Creates a group channel with the caller as owner, or (with
/// `channelType: direct` and one other member) finds or creates a direct channel.
#[utoipa::path(post, path = "/v2/conversations/channels", tag = tags::CHANNELS, params(ActingAs),
    request_body(content = Option<CreateChannelRequest>, description = "May be left out: a group channel with only the caller"),
    responses((status = 200, body = ChannelDetailsResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn create_channel(
    State(app): State<AppState>,
    ActingJson { actor, body }: ActingJson<CreateChannelRequest>,
) -> ApiResult<Json<ChannelDetailsResponse>> {
    optional_text("subject", &body.subject, MAX_SUBJECT_CHARS)?;
    optional_text("description", &body.description, MAX_DESCRIPTION_CHARS)?;
    let access = access_of(body.access)?;
    let member_ids = body.members.unwrap_or_default();
    if member_ids.len() > MAX_MEMBERS_PER_REQUEST {
        return Err(ApiError::validation(format!(
            "members: has {} entries; the limit is {MAX_MEMBERS_PER_REQUEST}",
            member_ids.len()
        )));
    }
    let members = member_ids
        .iter()
        .enumerate()
        .map(|(index, id)| user_id_field(&format!("members[{index}]"), id))
        .collect::<Result<Vec<_>, _>>()?;
    let to_invite = invitees(
        "membersToInvite",
        &body.members_to_invite.unwrap_or_default(),
        MAX_MEMBERS_PER_REQUEST,
    )?;
    let details = match body.channel_type.unwrap_or(ChannelType::Group) {
        ChannelType::Group => {
            let new = NewChannel {
                subject: body.subject,
                description: body.description,
                access,
                members,
                invitees: to_invite,
            };
            app.store.create_channel(&actor, new).await?
        }
        ChannelType::Direct => {
            let peer = match (members.as_slice(), to_invite.as_slice()) {
                ([member], []) => DirectPeer::User(member.clone()),
                ([], [invitee]) => DirectPeer::Invite(invitee.clone()),
                _ => {
                    return Err(ApiError::validation(
                        "members: a direct channel needs exactly one other member in `members` or `membersToInvite`",
                    ));
                }
            };
            app.store.direct_channel(&actor, peer).await?
        }
        ChannelType::Other(other) => {
            return Err(ApiError::validation(format!(
                "channelType: `{other}` is not a channel type; use `group` or `direct`"
            )));
        }
    };
    Ok(Json(details_response(details)))
}

/// Finds or creates the direct channel of the caller and one other person.
#[utoipa::path(post, path = "/v2/conversations/channels/direct", tag = tags::CHANNELS, params(ActingAs),
    request_body = DirectChannelRequest,
    responses((status = 200, body = ChannelResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn direct_channel(
    State(app): State<AppState>,
    ActingJson { actor, body }: ActingJson<DirectChannelRequest>,
) -> ApiResult<Json<ChannelResponse>> {
    let peer = match (&body.member_id, &body.member_to_invite) {
        (Some(member), None) => DirectPeer::User(user_id_field("memberId", member)?),
        (None, Some(to_invite)) => DirectPeer::Invite(invitee("memberToInvite", to_invite)?),
        _ => {
            return Err(ApiError::validation(
                "body: give exactly one of `memberId` and `memberToInvite`",
            ));
        }
    };
    let details = app.store.direct_channel(&actor, peer).await?;
    Ok(Json(ChannelResponse {
        channel: details.channel,
    }))
}

/// A channel with its members and their users.
#[utoipa::path(get, path = "/v2/conversations/channels/{channelId}", tag = tags::CHANNELS,
    params(("channelId" = String, Path), ActingAs),
    responses((status = 200, body = ChannelDetailsResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn get_channel(
    State(app): State<AppState>,
    Acting(actor): Acting,
    ChannelPath { channel }: ChannelPath,
) -> ApiResult<Json<ChannelDetailsResponse>> {
    let details = app.store.get_channel(&actor, &channel).await?;
    Ok(Json(details_response(details)))
}

/// Replaces the channel's editable fields: absent optional fields are cleared,
/// absent `access`, `broadcast`, `external` return to `private`, `false`, `false`.
#[utoipa::path(put, path = "/v2/conversations/channels/{channelId}", tag = tags::CHANNELS,
    params(("channelId" = String, Path), ActingAs), request_body = UpdateChannelRequest,
    responses((status = 200, body = ChannelResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn update_channel(
    State(app): State<AppState>,
    ChannelPath { channel }: ChannelPath,
    ActingJson { actor, body }: ActingJson<UpdateChannelRequest>,
) -> ApiResult<Json<ChannelResponse>> {
    check_settings("", &body)?;
    let patch = ChannelPatch {
        subject: Some(body.subject),
        description: Some(body.description),
        access: Some(access_of(body.access)?),
        service: Some(body.service),
        service_title: Some(body.service_title),
        broadcast: Some(body.broadcast.unwrap_or(false)),
        external: Some(body.external.unwrap_or(false)),
    };
    let channel = app.store.update_channel(&actor, &channel, patch).await?;
    Ok(Json(ChannelResponse { channel }))
}

/// Changes the fields in `set` and clears those named in `unset`.
#[utoipa::path(patch, path = "/v2/conversations/channels/{channelId}", tag = tags::CHANNELS,
    params(("channelId" = String, Path), ActingAs),
    request_body(content = Option<PartialUpdateChannelRequest>, description = "May be left out: changes nothing"),
    responses((status = 200, body = ChannelResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn patch_channel(
    State(app): State<AppState>,
    ChannelPath { channel }: ChannelPath,
    ActingJson { actor, body }: ActingJson<PartialUpdateChannelRequest>,
) -> ApiResult<Json<ChannelResponse>> {
    let PartialUpdateChannelRequest { set, unset } = body;
    let set = set.unwrap_or(UpdateChannelRequest {
        subject: None,
        description: None,
        access: None,
        service: None,
        service_title: None,
        broadcast: None,
        external: None,
    });
    check_settings("set.", &set)?;
    let unset = check_unset(
        &unset,
        CHANNEL_UNSETTABLE,
        &[
            ("subject", set.subject.is_some()),
            ("description", set.description.is_some()),
            ("service", set.service.is_some()),
            ("serviceTitle", set.service_title.is_some()),
        ],
    )?;
    let cleared = |name: &str| unset.iter().any(|field| field == name).then_some(None);
    let patch = ChannelPatch {
        subject: set.subject.map(Some).or_else(|| cleared("subject")),
        description: set.description.map(Some).or_else(|| cleared("description")),
        access: set
            .access
            .map(|access| access_of(Some(access)))
            .transpose()?,
        service: set.service.map(Some).or_else(|| cleared("service")),
        service_title: set
            .service_title
            .map(Some)
            .or_else(|| cleared("serviceTitle")),
        broadcast: set.broadcast,
        external: set.external,
    };
    let channel = app.store.update_channel(&actor, &channel, patch).await?;
    Ok(Json(ChannelResponse { channel }))
}

/// Deletes the channel (owners and supervisors). Deleting it again answers 200.
#[utoipa::path(delete, path = "/v2/conversations/channels/{channelId}", tag = tags::CHANNELS,
    params(("channelId" = String, Path), ActingAs),
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn delete_channel(
    State(app): State<AppState>,
    Acting(actor): Acting,
    ChannelPath { channel }: ChannelPath,
) -> ApiResult<Json<OkResponse>> {
    app.store.delete_channel(&actor, &channel).await?;
    Ok(ok())
}

fn details_response(details: ChannelDetails) -> ChannelDetailsResponse {
    ChannelDetailsResponse {
        channel: details.channel,
        members: details.members,
        users: details.users,
    }
}

fn access_of(access: Option<ChannelAccess>) -> Result<ChannelAccess, ApiError> {
    match access.unwrap_or(ChannelAccess::Private) {
        ChannelAccess::Other(other) => Err(ApiError::validation(format!(
            "access: `{other}` is not an access level; use `private` or `public`"
        ))),
        known => Ok(known),
    }
}

fn check_settings(prefix: &str, body: &UpdateChannelRequest) -> Result<(), ApiError> {
    optional_text(
        &format!("{prefix}subject"),
        &body.subject,
        MAX_SUBJECT_CHARS,
    )?;
    optional_text(
        &format!("{prefix}description"),
        &body.description,
        MAX_DESCRIPTION_CHARS,
    )?;
    optional_text(
        &format!("{prefix}service"),
        &body.service,
        MAX_SUBJECT_CHARS,
    )?;
    optional_text(
        &format!("{prefix}serviceTitle"),
        &body.service_title,
        MAX_SUBJECT_CHARS,
    )?;
    Ok(())
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(direct_channel))
        .routes(routes!(
            get_channel,
            update_channel,
            patch_channel,
            delete_channel
        ))
}
