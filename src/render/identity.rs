//! Who a render is for, so identical requests of the same viewer can share one render.
//!
//! An opaque render key identifies only itself. A JWT render key (Grafana's
//! `renderAuthJWT`: HS512, signed with `[rendering] renderer_token`) identifies the user in
//! its claims — but only once its signature verifies with the token the request
//! authenticated with, and while it has not expired. An unverifiable key identifies only
//! itself, so it is never merged with another.
//!
//! With several accepted tokens (several Grafanas), a verified user also carries *which*
//! token verified it: a key signed with Grafana B's token never joins a render of Grafana A,
//! even when the claims are equal (B's holder can sign any claims it likes).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha512;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::request::RenderCookie;

/// The viewer a picture is rendered for; equal identities see equal pictures.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// No render key: Grafana's anonymous view.
    Anonymous,
    /// An opaque or unverifiable render key, equal only to itself.
    Key { domain: String, key: String },
    /// The verified user of a JWT render key.
    User {
        /// The index of the accepted token (server.auth-token) whose signature verified it.
        verified_by: usize,
        domain: String,
        org_id: i64,
        user_id: i64,
        org_role: String,
    },
}

impl std::fmt::Debug for Identity {
    // Never print a render key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Anonymous => write!(f, "Anonymous"),
            Identity::Key { domain, .. } => {
                write!(f, "Key {{ domain: {domain:?}, key: <redacted> }}")
            }
            Identity::User {
                verified_by,
                domain,
                org_id,
                user_id,
                org_role,
            } => {
                write!(
                    f,
                    "User {{ verified_by: token #{verified_by}, domain: {domain:?}, org_id: {org_id}, user_id: {user_id}, org_role: {org_role:?} }}"
                )
            }
        }
    }
}

impl Identity {
    /// The viewer of a render that carries its own credential headers: a digest of them, an
    /// opaque key equal only to itself (the headers themselves are never kept here).
    pub fn of_credentials(headers: &[(String, String)]) -> Identity {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::new();
        for (name, value) in headers {
            digest.update(name.as_bytes());
            digest.update([0]);
            digest.update(value.as_bytes());
            digest.update([0]);
        }
        Identity::Key {
            domain: "credential headers".into(),
            key: base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.finalize()),
        }
    }

    /// The viewer as a string for warm app reuse: set for a verified user (with the token
    /// that verified it) and for no key at all; `None` for a key that proves nobody.
    pub fn viewer(&self) -> Option<String> {
        match self {
            Identity::Anonymous => Some("anonymous".into()),
            Identity::Key { .. } => None,
            Identity::User {
                verified_by,
                domain,
                org_id,
                user_id,
                org_role,
            } => Some(format!(
                "user {verified_by} {domain:?} {org_id} {user_id} {org_role:?}"
            )),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(alias = "RenderUser", alias = "renderUser")]
    render_user: RenderUser,
    exp: Option<i64>,
}

#[derive(Deserialize)]
struct RenderUser {
    org_id: i64,
    user_id: i64,
    org_role: String,
}

/// The identity behind `cookie`, verifying JWT keys with `token`: the index and value of the
/// accepted token the request authenticated with (its X-Auth-Token).
pub fn identify(
    cookie: Option<&RenderCookie>,
    token: Option<(usize, &[u8])>,
    now_unix: i64,
) -> Identity {
    let Some(cookie) = cookie else {
        return Identity::Anonymous;
    };
    let opaque = || Identity::Key {
        domain: cookie.domain.clone(),
        key: cookie.key.clone(),
    };
    let Some((index, token)) = token else {
        return opaque();
    };
    match verify_jwt(&cookie.key, token, now_unix) {
        Some(user) => Identity::User {
            verified_by: index,
            domain: cookie.domain.clone(),
            org_id: user.org_id,
            user_id: user.user_id,
            org_role: user.org_role,
        },
        None => opaque(),
    }
}

fn verify_jwt(jwt: &str, secret: &[u8], now_unix: i64) -> Option<RenderUser> {
    let mut parts = jwt.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !jwt.starts_with("eyJ") {
        return None;
    }
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "HS512" {
        return None;
    }
    let mut mac = Hmac::<Sha512>::new_from_slice(secret).ok()?;
    mac.update(&jwt.as_bytes()[..header_len(jwt)?]);
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?)
        .ok()?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    if claims.exp.is_some_and(|exp| exp <= now_unix) {
        return None;
    }
    Some(claims.render_user)
}

/// Length of `header.payload`, the signed part.
fn header_len(jwt: &str) -> Option<usize> {
    jwt.rfind('.')
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Signs claims the way Grafana does, for tests.
    pub fn sign(claims: &serde_json::Value, secret: &[u8]) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = Hmac::<Sha512>::new_from_slice(secret).unwrap();
        mac.update(format!("{header}.{payload}").as_bytes());
        format!(
            "{header}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn cookie(key: &str) -> RenderCookie {
        RenderCookie {
            key: key.into(),
            domain: "grafana".into(),
        }
    }

    fn user(org: i64, id: i64, exp: i64) -> serde_json::Value {
        serde_json::json!({"renderUser": {"org_id": org, "user_id": id, "org_role": "Admin"}, "exp": exp})
    }

    #[test]
    fn credential_headers_are_their_own_viewer_and_prove_nobody() {
        let a = vec![("Authorization".to_string(), "Bearer glsa_a".to_string())];
        let b = vec![("Authorization".to_string(), "Bearer glsa_b".to_string())];
        let ia = Identity::of_credentials(&a);
        assert_eq!(ia, Identity::of_credentials(&a));
        assert_ne!(ia, Identity::of_credentials(&b));
        assert_ne!(ia, Identity::Anonymous);
        assert_eq!(ia.viewer(), None, "never given a loaded app");
        assert!(!format!("{ia:?}").contains("glsa"));
    }

    #[test]
    fn verified_jwts_of_the_same_user_are_one_identity() {
        let a = sign(&user(1, 7, 2000), b"secret");
        let b = sign(&user(1, 7, 3000), b"secret");
        assert_ne!(a, b);
        let ia = identify(Some(&cookie(&a)), Some((0, &b"secret"[..])), 1000);
        assert_eq!(
            ia,
            identify(Some(&cookie(&b)), Some((0, &b"secret"[..])), 1000)
        );
        assert!(matches!(ia, Identity::User { user_id: 7, .. }));
        assert_ne!(
            ia,
            identify(
                Some(&cookie(&sign(&user(1, 8, 2000), b"secret"))),
                Some((0, &b"secret"[..])),
                1000
            )
        );
        assert_ne!(
            ia,
            identify(
                Some(&cookie(&sign(&user(2, 7, 2000), b"secret"))),
                Some((0, &b"secret"[..])),
                1000
            )
        );
    }

    #[test]
    fn unverifiable_keys_identify_only_themselves() {
        let forged = sign(&user(1, 7, 2000), b"other");
        assert!(matches!(
            identify(Some(&cookie(&forged)), Some((0, &b"secret"[..])), 1000),
            Identity::Key { .. }
        ));
        let expired = sign(&user(1, 7, 500), b"secret");
        assert!(matches!(
            identify(Some(&cookie(&expired)), Some((0, &b"secret"[..])), 1000),
            Identity::Key { .. }
        ));
        let good = sign(&user(1, 7, 2000), b"secret");
        assert!(matches!(
            identify(Some(&cookie(&good)), None, 1000),
            Identity::Key { .. }
        ));
        assert!(matches!(
            identify(Some(&cookie("opaque")), Some((0, &b"secret"[..])), 1000),
            Identity::Key { .. }
        ));
        assert_eq!(
            identify(None, Some((0, &b"secret"[..])), 1000),
            Identity::Anonymous
        );
        assert!(!format!("{:?}", identify(Some(&cookie("opaque")), None, 0)).contains("opaque"));
    }

    #[test]
    fn equal_claims_verified_by_different_tokens_are_different_viewers() {
        // Grafana A's user 7 and a key with the same claims signed with Grafana B's token.
        let a = sign(&user(1, 7, 2000), b"token-a");
        let b = sign(&user(1, 7, 2000), b"token-b");
        let ia = identify(Some(&cookie(&a)), Some((0, &b"token-a"[..])), 1000);
        let ib = identify(Some(&cookie(&b)), Some((1, &b"token-b"[..])), 1000);
        assert!(
            matches!(
                ia,
                Identity::User {
                    verified_by: 0,
                    user_id: 7,
                    ..
                }
            ),
            "{ia:?}"
        );
        assert!(
            matches!(
                ib,
                Identity::User {
                    verified_by: 1,
                    user_id: 7,
                    ..
                }
            ),
            "{ib:?}"
        );
        assert_ne!(
            ia, ib,
            "a key signed with token B must not join Grafana A's render"
        );
        // The same key and token twice is one viewer.
        assert_eq!(
            ia,
            identify(Some(&cookie(&a)), Some((0, &b"token-a"[..])), 1000)
        );
        // Debug names the token by index only, never its value.
        let shown = format!("{ia:?}");
        assert!(
            shown.contains("token #0") && !shown.contains("token-a"),
            "{shown}"
        );
    }
}
