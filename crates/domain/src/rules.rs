//! Access rules of channels and messages, as pure functions of roles and
//! authorship. Membership itself is the first rule: a user who is not a
//! member of a channel does not see it at all (the API answers 404).

use switchboard_protocol::MemberRole;

/// Owners and supervisors moderate a channel.
pub fn is_moderator(role: &MemberRole) -> bool {
    matches!(role, MemberRole::Owner | MemberRole::Supervisor)
}

/// Any member may change a channel's subject, description and settings.
pub fn may_update_channel(_role: &MemberRole) -> bool {
    true
}

/// Only moderators may delete a channel.
pub fn may_delete_channel(role: &MemberRole) -> bool {
    is_moderator(role)
}

/// Anyone may leave; moderators may remove others.
pub fn may_remove_member(actor_role: &MemberRole, removing_self: bool) -> bool {
    removing_self || is_moderator(actor_role)
}

/// Only the author may change a message's content.
pub fn may_edit_message(is_author: bool) -> bool {
    is_author
}

/// The author may delete a message, and so may moderators.
pub fn may_delete_message(actor_role: &MemberRole, is_author: bool) -> bool {
    is_author || is_moderator(actor_role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_members_cannot_moderate() {
        assert!(!may_delete_channel(&MemberRole::Member));
        assert!(may_delete_channel(&MemberRole::Owner));
        assert!(!may_remove_member(&MemberRole::Member, false));
        assert!(may_remove_member(&MemberRole::Member, true));
        assert!(may_remove_member(&MemberRole::Supervisor, false));
        assert!(!may_delete_message(&MemberRole::Member, false));
        assert!(may_delete_message(&MemberRole::Owner, false));
        assert!(!may_edit_message(false));
        assert!(!may_delete_channel(&MemberRole::Other("guest".into())));
    }
}
