//! One module per resource; each handler is documented for the OpenAPI
//! document with `#[utoipa::path]` and registered with its route in its
//! module's `router()`, which [`crate::router`] merges, so the document
//! covers every route by construction.

pub mod bot_events;
pub mod bots;
pub mod channels;
pub mod files;
pub mod health;
pub mod integrations;
pub mod keys;
pub mod members;
pub mod messages;
pub mod person_events;
pub mod typing;
pub mod users;

use switchboard_domain::validation;
use switchboard_protocol::api::{OkResponse, UserToInvite};
use switchboard_store::Invitee;

use crate::error::ApiError;

/// The body of requests that succeed with nothing to return.
pub(crate) fn ok() -> axum::Json<OkResponse> {
    axum::Json(OkResponse { ok: true })
}

/// Checks an invitee at `field`: an email or a phone is needed; both are normalised.
pub(crate) fn invitee(field: &str, invitee: &UserToInvite) -> Result<Invitee, ApiError> {
    let email = invitee
        .email
        .as_deref()
        .map(|email| validation::email(&format!("{field}.email"), email))
        .transpose()?;
    let phone = invitee
        .phone
        .as_deref()
        .map(|phone| validation::phone(&format!("{field}.phone"), phone))
        .transpose()?;
    if email.is_none() && phone.is_none() {
        return Err(ApiError::validation(format!(
            "{field}: needs an email or a phone"
        )));
    }
    if let Some(name) = &invitee.name {
        validation::short_field(&format!("{field}.name"), name)?;
    }
    Ok(Invitee {
        email,
        phone,
        name: invitee.name.clone(),
    })
}

/// Checks a list of invitees at `field`.
pub(crate) fn invitees(
    field: &str,
    list: &[UserToInvite],
    max: usize,
) -> Result<Vec<Invitee>, ApiError> {
    if list.len() > max {
        return Err(ApiError::validation(format!(
            "{field}: has {} entries; the limit is {max}",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(index, entry)| invitee(&format!("{field}[{index}]"), entry))
        .collect()
}

/// Checks a PATCH body's `unset` list (each name is one of `allowed`) and
/// answers the names to clear: a name also given in `set` is set, not
/// cleared (`set_fields` pairs each settable name with whether `set` holds it).
pub(crate) fn check_unset(
    unset: &[String],
    allowed: &[&str],
    set_fields: &[(&str, bool)],
) -> Result<Vec<String>, ApiError> {
    validation::unset_fields("unset", unset, allowed)?;
    let is_set = |name: &str| {
        set_fields
            .iter()
            .any(|(field, given)| *given && *field == name)
    };
    Ok(unset.iter().filter(|name| !is_set(name)).cloned().collect())
}

/// Checks an optional text field against a limit.
pub(crate) fn optional_text(
    field: &str,
    value: &Option<String>,
    max: usize,
) -> Result<(), ApiError> {
    if let Some(value) = value {
        validation::text(field, value, max)?;
    }
    Ok(())
}

/// Tags of the OpenAPI document.
pub(crate) mod tags {
    pub const CHANNELS: &str = "channels";
    pub const MEMBERS: &str = "members";
    pub const MESSAGES: &str = "messages";
    pub const FILES: &str = "files";
    pub const USERS: &str = "users";
    pub const BOTS: &str = "bots";
    pub const KEYS: &str = "keys";
    pub const INTEGRATIONS: &str = "integrations";
    pub const OPERATIONS: &str = "operations";
    pub const BOT_EVENTS: &str = "bot-events";
}
