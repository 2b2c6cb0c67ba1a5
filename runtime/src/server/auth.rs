//! JWT verification of the handshake token (`jsonwebtoken`, pure-Rust crypto).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::ServerError;

/// Default claim that carries the user id.
pub const DEFAULT_USER_ID_CLAIM: &str = "sub";

/// Default longest user id accepted from a token, in bytes: 256.
pub const DEFAULT_MAX_USER_ID_BYTES: usize = 256;

/// How handshake tokens are verified.
///
/// The algorithm is pinned to exactly the configured one (a token whose header
/// names another algorithm, or `none`, is refused), `exp` is required, `nbf`
/// is honoured when present, and `iss` / `aud` are required and checked when
/// configured. The user id is read from [`AuthConfig::user_id_claim`] (default
/// `sub`), which may be a string or an integer.
#[derive(Clone)]
pub struct AuthConfig {
    key: Arc<DecodingKey>,
    algorithm: Algorithm,
    issuers: Vec<String>,
    audiences: Vec<String>,
    user_id_claim: String,
    leeway: Duration,
    max_user_id_bytes: usize,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("AuthConfig")
            .field("algorithm", &self.algorithm)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("user_id_claim", &self.user_id_claim)
            .field("leeway", &self.leeway)
            .field("max_user_id_bytes", &self.max_user_id_bytes)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused (logged; the client only sees `INVALID_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

impl AuthConfig {
    fn with_key(key: DecodingKey, algorithm: Algorithm) -> Self {
        Self {
            key: Arc::new(key),
            algorithm,
            issuers: Vec::new(),
            audiences: Vec::new(),
            user_id_claim: DEFAULT_USER_ID_CLAIM.to_owned(),
            leeway: Duration::from_secs(60),
            max_user_id_bytes: DEFAULT_MAX_USER_ID_BYTES,
        }
    }

    /// HS256 with a shared secret.
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self::with_key(DecodingKey::from_secret(secret.as_ref()), Algorithm::HS256)
    }

    /// RS256 with an RSA public key in PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    pub fn rs256_pem(public_key_pem: impl AsRef<[u8]>) -> Result<Self, ServerError> {
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_ref())
            .map_err(|e| ServerError::Auth(format!("invalid RSA public key: {e}")))?;
        Ok(Self::with_key(key, Algorithm::RS256))
    }

    /// ES256 with a P-256 public key in PEM (`PUBLIC KEY`).
    pub fn es256_pem(public_key_pem: impl AsRef<[u8]>) -> Result<Self, ServerError> {
        let key = DecodingKey::from_ec_pem(public_key_pem.as_ref())
            .map_err(|e| ServerError::Auth(format!("invalid EC public key: {e}")))?;
        Ok(Self::with_key(key, Algorithm::ES256))
    }

    /// Requires `iss` to be this issuer (call again to accept several).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Requires `aud` to contain this audience (call again to accept several).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Reads the user id from this claim instead of `sub`.
    #[must_use]
    pub fn user_id_claim(mut self, claim: impl Into<String>) -> Self {
        self.user_id_claim = claim.into();
        self
    }

    /// Clock-skew tolerance for `exp` and `nbf` (default 60 s, whole seconds).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longest user id accepted, in bytes (default 256,
    /// [`DEFAULT_MAX_USER_ID_BYTES`]). The user id is kept per socket, named
    /// in rooms and echoed to other users (member lists, `joined`), so a
    /// longer one, or one with control characters (NUL, newlines), is
    /// refused as `INVALID_TOKEN` even when the signature is valid.
    #[must_use]
    pub fn max_user_id_bytes(mut self, max: usize) -> Self {
        self.max_user_id_bytes = max.max(1);
        self
    }

    /// The pinned algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn validation(&self) -> Validation {
        let mut v = Validation::new(self.algorithm);
        v.algorithms = vec![self.algorithm];
        v.leeway = self.leeway.as_secs();
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if self.issuers.is_empty() {
            v.iss = None;
        } else {
            v.set_issuer(&self.issuers);
            required.push("iss");
        }
        if self.audiences.is_empty() {
            // Without configured audiences a token's `aud` cannot be checked:
            // ignore it rather than refusing every token that carries one.
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audiences);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// Verifies `token` and returns the user id.
    pub fn verify(&self, token: &str) -> Result<String, AuthError> {
        refuse_critical_extensions(token)?;
        let validation = self.validation();
        // The token is client-controlled: a panic deep in a crypto backend must
        // not take the connection task down.
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &validation)
        }))
        .map_err(|_| AuthError("token verification panicked".to_owned()))?
        .map_err(|e| AuthError(e.to_string()))?;
        match decoded.claims.get(&self.user_id_claim) {
            Some(Value::String(s)) if s.len() > self.max_user_id_bytes => Err(AuthError(format!(
                "claim `{}` is {} bytes long, at most {} are accepted",
                self.user_id_claim,
                s.len(),
                self.max_user_id_bytes
            ))),
            Some(Value::String(s)) if s.chars().any(char::is_control) => Err(AuthError(format!(
                "claim `{}` contains control characters",
                self.user_id_claim
            ))),
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            Some(_) => Err(AuthError(format!(
                "claim `{}` is not a non-empty string or an integer",
                self.user_id_claim
            ))),
            None => Err(AuthError(format!(
                "claim `{}` is missing",
                self.user_id_claim
            ))),
        }
    }
}

/// RFC 7515 §4.1.11: a token whose header lists `crit` extensions must be
/// refused by a verifier that does not understand them, and this one
/// understands none (jsonwebtoken ignores the parameter).
fn refuse_critical_extensions(token: &str) -> Result<(), AuthError> {
    use base64::Engine as _;
    let Some((header, _)) = token.split_once('.') else {
        // Malformed: jsonwebtoken says so.
        return Ok(());
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return Ok(());
    };
    match serde_json::from_slice::<Map<String, Value>>(&bytes) {
        Ok(header) if header.contains_key("crit") => Err(AuthError(
            "the token's `crit` header names extensions this server does not understand".to_owned(),
        )),
        _ => Ok(()),
    }
}

/// Signs an HS256 token for `user_id` (claim `sub`) valid for `ttl`: for
/// development tokens and tests.
pub fn sign_hs256(
    secret: impl AsRef<[u8]>,
    user_id: &str,
    ttl: Duration,
) -> Result<String, ServerError> {
    let now = unix_now();
    let claims = serde_json::json!({
        "sub": user_id,
        "iat": now,
        "exp": now.saturating_add(ttl.as_secs()),
    });
    sign_hs256_claims(secret, &claims)
}

/// Signs arbitrary claims with HS256 (add `exp` yourself).
pub fn sign_hs256_claims(secret: impl AsRef<[u8]>, claims: &Value) -> Result<String, ServerError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_ref()),
    )
    .map_err(|e| ServerError::Auth(format!("cannot sign token: {e}")))
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Picks the token: the handshake `auth.token` (a string, with or without a
/// `Bearer ` prefix) or else the `Authorization: Bearer …` header. An empty or
/// `null` token counts as none.
pub(crate) fn extract_token(
    auth: Option<&Value>,
    headers: &axum::http::HeaderMap,
) -> Option<String> {
    let from_auth = auth
        .and_then(|a| a.get("token"))
        .and_then(|t| match t {
            Value::String(s) => Some(bearer(s).unwrap_or(s.trim()).to_owned()),
            Value::Null => None,
            // A non-string token is still a token: it will fail verification.
            other => Some(other.to_string()),
        })
        .filter(|t| !t.is_empty());
    from_auth.or_else(|| {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(bearer)
            .map(str::to_owned)
            .filter(|t| !t.is_empty())
    })
}

/// The token of `Bearer <token>` (scheme in any case), trimmed.
fn bearer(s: &str) -> Option<&str> {
    let s = s.trim();
    match s.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => Some(s[7..].trim()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::encode;
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret-0123456789abcdef";

    // Throwaway keys generated for these tests only.
    const RSA_PRIVATE: &str = include_str!("testkeys/rsa_private.pem");
    const RSA_PUBLIC: &str = include_str!("testkeys/rsa_public.pem");
    const EC_PRIVATE: &str = include_str!("testkeys/ec_private.pem");
    const EC_PUBLIC: &str = include_str!("testkeys/ec_public.pem");

    fn hs(claims: &Value) -> String {
        sign_hs256_claims(SECRET, claims).unwrap()
    }

    fn later() -> u64 {
        unix_now() + 3600
    }

    fn err(cfg: &AuthConfig, token: &str) -> String {
        cfg.verify(token).unwrap_err().0
    }

    #[test]
    fn a_crit_header_is_refused() {
        use base64::Engine as _;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = json!({"sub": "alice", "exp": later()});
        let signed = |header: &Value| {
            let input = format!("{}.{}", b64(header), b64(&claims));
            let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
            let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).unwrap();
            format!("{input}.{sig}")
        };
        let cfg = AuthConfig::hs256(SECRET);
        // The same token without `crit` is valid: only the header differs.
        assert_eq!(
            cfg.verify(&signed(&json!({"alg": "HS256", "typ": "JWT"})))
                .unwrap(),
            "alice"
        );
        let crit = json!({"alg": "HS256", "typ": "JWT", "crit": ["x-policy"], "x-policy": 1});
        assert!(err(&cfg, &signed(&crit)).contains("`crit`"));
    }

    #[test]
    fn valid_hs256() {
        let cfg = AuthConfig::hs256(SECRET);
        let token = sign_hs256(SECRET, "alice", Duration::from_secs(60)).unwrap();
        assert_eq!(cfg.verify(&token).unwrap(), "alice");
    }

    #[test]
    fn expired_and_missing_exp() {
        let cfg = AuthConfig::hs256(SECRET).leeway(Duration::ZERO);
        let token = hs(&json!({"sub": "a", "exp": unix_now() - 10}));
        assert_eq!(err(&cfg, &token), "ExpiredSignature");
        // Within the default leeway it still passes.
        let cfg_leeway = AuthConfig::hs256(SECRET);
        assert!(cfg_leeway.verify(&token).is_ok());
        let token = hs(&json!({"sub": "a", "exp": unix_now() - 3600}));
        assert!(cfg_leeway.verify(&token).is_err());
        let no_exp = hs(&json!({"sub": "a"}));
        assert!(cfg.verify(&no_exp).is_err());
    }

    #[test]
    fn not_yet_valid() {
        let cfg = AuthConfig::hs256(SECRET).leeway(Duration::ZERO);
        let token = hs(&json!({"sub": "a", "exp": later(), "nbf": unix_now() + 600}));
        assert_eq!(err(&cfg, &token), "ImmatureSignature");
        let ok = hs(&json!({"sub": "a", "exp": later(), "nbf": unix_now() - 5}));
        assert_eq!(cfg.verify(&ok).unwrap(), "a");
    }

    #[test]
    fn wrong_signature_and_malformed() {
        let cfg = AuthConfig::hs256(SECRET);
        let token = sign_hs256(b"another-secret", "a", Duration::from_secs(60)).unwrap();
        assert!(cfg.verify(&token).is_err());
        // Tampered payload.
        let good = sign_hs256(SECRET, "a", Duration::from_secs(60)).unwrap();
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = hs(&json!({"sub": "admin", "exp": later()}));
        let forged_payload = forged.split('.').nth(1).unwrap();
        parts[1] = forged_payload;
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            good.split('.').nth(2).unwrap()
        );
        assert!(cfg.verify(&tampered).is_err());
        for bad in [
            "",
            "abc",
            "a.b.c",
            "....",
            "eyJhbGciOiJIUzI1NiJ9",
            "\u{0}\u{1}.x.y",
        ] {
            assert!(cfg.verify(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn alg_none_refused() {
        let cfg = AuthConfig::hs256(SECRET);
        let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = base64_url(format!(r#"{{"sub":"a","exp":{}}}"#, later()).as_bytes());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert!(cfg.verify(&token).is_err());
        }
        // Even with a valid HS256 signature over the `none` header.
        let signing_input = format!("{header}.{payload}");
        let key = EncodingKey::from_secret(SECRET);
        let sig =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256).unwrap();
        assert!(cfg.verify(&format!("{signing_input}.{sig}")).is_err());
        // Same with an RS256 config.
        let rs = AuthConfig::rs256_pem(RSA_PUBLIC).unwrap();
        assert!(rs.verify(&format!("{header}.{payload}.")).is_err());
    }

    /// Minimal unpadded base64url for hand-made tokens.
    fn base64_url(input: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn rs256_and_es256() {
        let claims = json!({"sub": "rsa-user", "exp": later()});
        let rs_token = encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        )
        .unwrap();
        let rs = AuthConfig::rs256_pem(RSA_PUBLIC).unwrap();
        assert_eq!(rs.verify(&rs_token).unwrap(), "rsa-user");

        let es_token = encode(
            &Header::new(Algorithm::ES256),
            &json!({"sub": "ec-user", "exp": later()}),
            &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        )
        .unwrap();
        let es = AuthConfig::es256_pem(EC_PUBLIC).unwrap();
        assert_eq!(es.verify(&es_token).unwrap(), "ec-user");

        // Algorithm pinned: no cross-acceptance.
        assert!(rs.verify(&es_token).is_err());
        assert!(es.verify(&rs_token).is_err());
        let hs_cfg = AuthConfig::hs256(SECRET);
        assert!(hs_cfg.verify(&rs_token).is_err());
        assert!(hs_cfg.verify(&es_token).is_err());

        // Algorithm confusion: an HS256 token signed with the public key's PEM
        // bytes as secret must not pass an RS256 / ES256 config.
        let confused = sign_hs256_claims(RSA_PUBLIC.as_bytes(), &claims).unwrap();
        assert!(rs.verify(&confused).is_err());
        let confused = sign_hs256_claims(EC_PUBLIC.as_bytes(), &claims).unwrap();
        assert!(es.verify(&confused).is_err());
        // And a plain HS256 token against RS256/ES256 configs.
        let hs_token = sign_hs256(SECRET, "a", Duration::from_secs(60)).unwrap();
        assert!(rs.verify(&hs_token).is_err());
        assert!(es.verify(&hs_token).is_err());

        assert!(AuthConfig::rs256_pem("not a pem").is_err());
        assert!(AuthConfig::es256_pem(RSA_PUBLIC).is_err());
    }

    #[test]
    fn issuer_and_audience() {
        let cfg = AuthConfig::hs256(SECRET)
            .issuer("https://issuer")
            .audience("chat");
        let ok = hs(&json!({"sub": "a", "exp": later(), "iss": "https://issuer", "aud": "chat"}));
        assert_eq!(cfg.verify(&ok).unwrap(), "a");
        let ok_list =
            hs(&json!({"sub": "a", "exp": later(), "iss": "https://issuer", "aud": ["x", "chat"]}));
        assert!(cfg.verify(&ok_list).is_ok());
        let wrong_iss = hs(&json!({"sub": "a", "exp": later(), "iss": "evil", "aud": "chat"}));
        assert!(cfg.verify(&wrong_iss).is_err());
        let wrong_aud =
            hs(&json!({"sub": "a", "exp": later(), "iss": "https://issuer", "aud": "other"}));
        assert!(cfg.verify(&wrong_aud).is_err());
        // Configured claims are required, not only checked when present.
        let no_iss = hs(&json!({"sub": "a", "exp": later(), "aud": "chat"}));
        assert!(cfg.verify(&no_iss).is_err());
        let no_aud = hs(&json!({"sub": "a", "exp": later(), "iss": "https://issuer"}));
        assert!(cfg.verify(&no_aud).is_err());
        // Without configured audience a token carrying `aud` is accepted.
        let plain = AuthConfig::hs256(SECRET);
        assert!(plain.verify(&wrong_aud).is_ok());
    }

    #[test]
    fn user_ids_are_bounded_and_printable() {
        let cfg = AuthConfig::hs256(SECRET);
        let at_bound = "u".repeat(DEFAULT_MAX_USER_ID_BYTES);
        let ok = hs(&json!({"sub": at_bound, "exp": later()}));
        assert_eq!(cfg.verify(&ok).unwrap().len(), DEFAULT_MAX_USER_ID_BYTES);
        let long = hs(&json!({"sub": "u".repeat(100_000), "exp": later()}));
        assert!(err(&cfg, &long).contains("100000 bytes long"));
        for bad in ["a\u{0}b", "line\nbreak", "tab\there", "\u{7f}"] {
            let token = hs(&json!({"sub": bad, "exp": later()}));
            assert!(err(&cfg, &token).contains("control characters"), "{bad:?}");
        }
        // Non-ASCII letters are fine.
        let token = hs(&json!({"sub": "zoë", "exp": later()}));
        assert_eq!(cfg.verify(&token).unwrap(), "zoë");
        let tight = AuthConfig::hs256(SECRET).max_user_id_bytes(3);
        assert!(
            tight
                .verify(&hs(&json!({"sub": "abcd", "exp": later()})))
                .is_err()
        );
    }

    #[test]
    fn user_id_claim() {
        let cfg = AuthConfig::hs256(SECRET).user_id_claim("uid");
        let num = hs(&json!({"uid": 42, "exp": later()}));
        assert_eq!(cfg.verify(&num).unwrap(), "42");
        let s = hs(&json!({"uid": "u-7", "sub": "ignored", "exp": later()}));
        assert_eq!(cfg.verify(&s).unwrap(), "u-7");
        for bad in [
            json!({"sub": "a", "exp": later()}),
            json!({"uid": "", "exp": later()}),
            json!({"uid": 1.5, "exp": later()}),
            json!({"uid": {"x": 1}, "exp": later()}),
            json!({"uid": null, "exp": later()}),
        ] {
            assert!(cfg.verify(&hs(&bad)).is_err(), "{bad} accepted");
        }
        let default = AuthConfig::hs256(SECRET);
        assert_eq!(
            default
                .verify(&hs(&json!({"sub": 7, "exp": later()})))
                .unwrap(),
            "7"
        );
    }

    #[test]
    fn token_extraction() {
        use axum::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
        let mut headers = HeaderMap::new();
        assert_eq!(extract_token(None, &headers), None);
        assert_eq!(
            extract_token(Some(&json!({"token": "abc"})), &headers).as_deref(),
            Some("abc")
        );
        assert_eq!(
            extract_token(Some(&json!({"token": "Bearer abc"})), &headers).as_deref(),
            Some("abc")
        );
        assert_eq!(extract_token(Some(&json!({"token": ""})), &headers), None);
        assert_eq!(extract_token(Some(&json!({"token": null})), &headers), None);
        assert_eq!(
            extract_token(Some(&json!({"token": 5})), &headers).as_deref(),
            Some("5")
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer hdr"));
        assert_eq!(
            extract_token(Some(&json!({})), &headers).as_deref(),
            Some("hdr")
        );
        assert_eq!(
            extract_token(Some(&json!({"token": "abc"})), &headers).as_deref(),
            Some("abc")
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic xyz"));
        assert_eq!(extract_token(None, &headers), None);
    }
}
