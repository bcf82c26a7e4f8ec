//! The `X-Auth-Token` check, done before anything else looks at the request.

use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Accepted tokens and the legacy opt-in for token-less Grafana releases.
#[derive(Clone)]
pub struct TokenCheck {
    tokens: Vec<Vec<u8>>,
    allow_missing: bool,
}

/// The outcome of checking one request's header.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Matched the token at this index.
    Valid(usize),
    /// No header (or an empty one), allowed by server.allow-missing-token.
    MissingButAllowed,
    Missing,
    Invalid,
}

impl TokenCheck {
    /// Checks against `tokens`; `allow_missing` lets requests without the header through.
    pub fn new(tokens: &[String], allow_missing: bool) -> Self {
        TokenCheck {
            tokens: tokens.iter().map(|t| t.as_bytes().to_vec()).collect(),
            allow_missing,
        }
    }

    /// The token at `index`, for verifying JWT render keys signed with it.
    pub fn token(&self, index: usize) -> Option<&[u8]> {
        self.tokens.get(index).map(Vec::as_slice)
    }

    /// Compares in constant time against every token (no early exit on a match).
    pub fn check(&self, header: Option<&[u8]>) -> AuthOutcome {
        let Some(given) = header.filter(|h| !h.is_empty()) else {
            return if self.allow_missing {
                AuthOutcome::MissingButAllowed
            } else {
                AuthOutcome::Missing
            };
        };
        let mut ok = subtle::Choice::from(0u8);
        let mut index = 0u64;
        for (i, token) in self.tokens.iter().enumerate() {
            let matched = token.as_slice().ct_eq(given);
            index = u64::conditional_select(&index, &(i as u64), matched & !ok);
            ok |= matched;
        }
        if bool::from(ok) {
            AuthOutcome::Valid(index as usize)
        } else {
            AuthOutcome::Invalid
        }
    }
}

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenCheck({} tokens, allow_missing: {})",
            self.tokens.len(),
            self.allow_missing
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_exact() {
        let c = TokenCheck::new(&["-".into(), "s3cret".into()], false);
        assert_eq!(c.check(Some(b"-")), AuthOutcome::Valid(0));
        assert_eq!(c.check(Some(b"s3cret")), AuthOutcome::Valid(1));
        assert_eq!(c.check(Some(b"S3cret")), AuthOutcome::Invalid);
        assert_eq!(c.check(Some(b" -")), AuthOutcome::Invalid);
        assert_eq!(c.check(Some(b"")), AuthOutcome::Missing);
        assert_eq!(c.check(None), AuthOutcome::Missing);
        let lax = TokenCheck::new(&["-".into()], true);
        assert_eq!(lax.check(None), AuthOutcome::MissingButAllowed);
        assert_eq!(lax.check(Some(b"wrong")), AuthOutcome::Invalid);
    }
}
