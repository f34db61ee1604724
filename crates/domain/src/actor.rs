//! Who a request acts as.
//!
//! A [`Principal`] is the authenticated credential. Conversation routes need an
//! [`Actor`]: a user of the company. A bot key acts as its bot, a user token
//! as its person, and a company key as the user named by `userId`.

use crate::ids::{CompanyId, CredentialId, UserId};

/// The authenticated credential of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub company: CompanyId,
    pub credential: CredentialId,
    pub kind: PrincipalKind,
}

/// What the credential is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A company key; read-only ones may only read.
    Company { read_only: bool },
    /// A bot key: acts as this bot.
    Bot(UserId),
    /// A user token: acts as this person.
    User(UserId),
}

/// A user of a company acting in conversations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub company: CompanyId,
    pub user: UserId,
}

/// Why no actor could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    #[error("userId is required when a company key acts in conversations")]
    UserIdRequired,
    #[error(
        "userId may only name another user with a company key; this credential always acts as its own user"
    )]
    UserIdNotAllowed,
    #[error("userId `{0}` is not a valid user id")]
    MalformedUserId(String),
}

impl Principal {
    /// The actor for a conversation route, given the request's `userId` (query or body).
    pub fn actor(&self, user_id: Option<&str>) -> Result<Actor, ActorError> {
        let user = match (&self.kind, user_id) {
            (PrincipalKind::Company { .. }, None) => return Err(ActorError::UserIdRequired),
            (PrincipalKind::Company { .. }, Some(text)) => {
                UserId::parse(text).ok_or_else(|| ActorError::MalformedUserId(text.to_owned()))?
            }
            (PrincipalKind::Bot(own) | PrincipalKind::User(own), None) => own.clone(),
            (PrincipalKind::Bot(own) | PrincipalKind::User(own), Some(text))
                if text == own.as_str() =>
            {
                own.clone()
            }
            (PrincipalKind::Bot(_) | PrincipalKind::User(_), Some(_)) => {
                return Err(ActorError::UserIdNotAllowed);
            }
        };
        Ok(Actor {
            company: self.company.clone(),
            user,
        })
    }

    /// Whether this credential may change state (every credential but a read-only company key).
    pub fn may_write(&self) -> bool {
        !matches!(self.kind, PrincipalKind::Company { read_only: true })
    }

    /// Whether this is a company key (administration routes need one).
    pub fn is_company_key(&self) -> bool {
        matches!(self.kind, PrincipalKind::Company { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(kind: PrincipalKind) -> Principal {
        Principal {
            company: CompanyId::from_stored("co_1".into()),
            credential: CredentialId::from_stored("key_1".into()),
            kind,
        }
    }

    #[test]
    fn company_keys_act_for_the_named_user_only() {
        let company = principal(PrincipalKind::Company { read_only: false });
        assert_eq!(company.actor(None), Err(ActorError::UserIdRequired));
        assert_eq!(company.actor(Some("usr_2")).unwrap().user.as_str(), "usr_2");
        assert!(matches!(
            company.actor(Some("a b")),
            Err(ActorError::MalformedUserId(_))
        ));
    }

    #[test]
    fn bot_keys_and_user_tokens_act_as_themselves() {
        let bot = principal(PrincipalKind::Bot(UserId::from_stored("usr_bot".into())));
        assert_eq!(bot.actor(None).unwrap().user.as_str(), "usr_bot");
        assert_eq!(bot.actor(Some("usr_bot")).unwrap().user.as_str(), "usr_bot");
        assert_eq!(
            bot.actor(Some("usr_other")),
            Err(ActorError::UserIdNotAllowed)
        );
        let person = principal(PrincipalKind::User(UserId::from_stored("usr_p".into())));
        assert_eq!(
            person.actor(Some("usr_other")),
            Err(ActorError::UserIdNotAllowed)
        );
    }

    #[test]
    fn read_only_company_keys_may_not_write() {
        assert!(!principal(PrincipalKind::Company { read_only: true }).may_write());
        assert!(principal(PrincipalKind::Company { read_only: false }).may_write());
        assert!(principal(PrincipalKind::Bot(UserId::from_stored("b".into()))).may_write());
    }
}
