//! Where a file's bytes live: a random key that says nothing of what the file
//! is, whose channel it belongs to or who sent it.

use rand::RngCore;

/// `obj_` and 32 lowercase hex digits (128 random bits).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        ObjectKey(format!("obj_{}", hex::encode(bytes)))
    }

    /// A key read back from storage or a URL; `None` unless it has the shape
    /// of a generated one (so it can never name a path outside the store).
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.strip_prefix("obj_")?;
        (digits.len() == 32
            && digits
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
        .then(|| ObjectKey(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_parse_back_but_paths_do_not() {
        let (a, b) = (ObjectKey::generate(), ObjectKey::generate());
        assert_ne!(a, b);
        assert_eq!(ObjectKey::parse(a.as_str()), Some(a));
        for bad in [
            "obj_../../etc/passwd",
            "obj_",
            "report.pdf",
            "obj_ABCDEF0123456789abcdef0123456789",
        ] {
            assert_eq!(ObjectKey::parse(bad), None, "{bad}");
        }
    }
}
