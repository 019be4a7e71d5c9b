//! HTTP digest authentication for SIP (RFC 7616 with the SIP profile of
//! RFC 3261 22.4, algorithm tokens of RFC 8760): challenges for SHA-256 and
//! MD5 with `qop=auth`, and verification of the answers.
//!
//! Nonces are self-certifying: `hex(issued_ms || salt || mac)`, where `mac`
//! is an HMAC-SHA-256 of the first two fields under a key only this node
//! knows. A node can therefore check a nonce it issued without keeping it,
//! and tell an expired nonce (answered with `stale=true`) from a forged one.
//! Replay protection keeps, per nonce that has been used, the highest
//! nonce-count seen; a request whose `nc` is not above it is refused.
//!
//! Invariants:
//! - verification never panics and compares digests in constant time;
//! - the replay table holds only nonces that authenticated successfully (an
//!   attacker without credentials cannot grow it), and entries leave it when
//!   their nonce expires ([`Digest::sweep`]);
//! - randomness and time are arguments: this module draws and reads nothing.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};

use crate::message::{AuthValue, Method, Uri};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a nonce.
const MAC_BYTES: usize = 12;
/// Hex characters of a nonce: 8 bytes time, 8 bytes salt, the MAC.
const NONCE_HEX: usize = 2 * (8 + 8 + MAC_BYTES);

/// A digest algorithm (RFC 8760 tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `SHA-256`, preferred.
    Sha256,
    /// `MD5`, what most deployed phones speak.
    Md5,
}

impl Algorithm {
    /// The token used in challenges and credentials.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    fn from_token(token: &str) -> Option<Algorithm> {
        if token.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else if token.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else {
            None
        }
    }

    /// The lowercase hex digest of `data` with this algorithm.
    pub fn hash_hex(self, data: &str) -> String {
        match self {
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
        }
    }
}

/// The stored secrets of one account: `H(username:realm:password)` per
/// algorithm, lower-case hex.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1 {
    /// MD5 form.
    pub md5: String,
    /// SHA-256 form.
    pub sha256: String,
}

impl std::fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ha1(..)")
    }
}

impl Ha1 {
    fn for_algorithm(&self, algorithm: Algorithm) -> &str {
        match algorithm {
            Algorithm::Sha256 => &self.sha256,
            Algorithm::Md5 => &self.md5,
        }
    }
}

/// Why a set of credentials was not accepted. Each maps to a reason phrase
/// that names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The credentials are not `Digest`, or lack a required parameter.
    #[error("malformed digest credentials: {0}")]
    Malformed(&'static str),
    /// Algorithm other than MD5 or SHA-256 (the `-sess` forms included).
    #[error("digest algorithm {0} is not supported (use SHA-256 or MD5)")]
    UnsupportedAlgorithm(String),
    /// `qop` missing or not `auth`.
    #[error("digest qop=auth is required (RFC 7616)")]
    QopRequired,
    /// The realm is not the one challenged.
    #[error("digest realm does not match")]
    WrongRealm,
    /// The `uri` parameter is not a SIP URI.
    #[error("digest uri is not a sip or sips URI")]
    UriNotSip,
    /// A nonce this node never issued.
    #[error("digest nonce was not issued here")]
    ForeignNonce,
    /// A nonce that was ours but has expired: challenge again with
    /// `stale=true`.
    #[error("digest nonce has expired")]
    StaleNonce,
    /// `nc` not above the highest already seen for this nonce.
    #[error("digest nonce-count was already used (replay)")]
    Replay,
    /// The response hash is wrong (wrong password, or unknown account).
    #[error("digest response is wrong")]
    WrongResponse,
}

impl DigestError {
    /// Whether the failure counts towards an authentication-failure ban:
    /// wrong secrets and replays do, expired nonces and protocol slips do
    /// not.
    pub fn counts_as_failure(&self) -> bool {
        matches!(
            self,
            DigestError::WrongResponse | DigestError::Replay | DigestError::ForeignNonce
        )
    }
}

/// The fields of a `Digest` Authorization value that verification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    nonce: String,
    uri: String,
    response: String,
    algorithm: Algorithm,
    cnonce: String,
    nc: u32,
}

impl Credentials {
    /// Reads the Digest parameters of an Authorization value.
    pub fn from_header(value: &AuthValue<'_>) -> Result<Credentials, DigestError> {
        if !value.scheme.eq_ignore_ascii_case("Digest") {
            return Err(DigestError::Malformed("scheme is not Digest"));
        }
        let need = |name: &'static str| value.param(name).ok_or(DigestError::Malformed(name));
        let algorithm = match value.param("algorithm") {
            None => Algorithm::Md5,
            Some(token) => {
                Algorithm::from_token(&token).ok_or(DigestError::UnsupportedAlgorithm(token))?
            }
        };
        match value.param("qop") {
            Some(q) if q.eq_ignore_ascii_case("auth") => {}
            _ => return Err(DigestError::QopRequired),
        }
        if value.param("userhash").is_some_and(|v| v == "true") {
            return Err(DigestError::Malformed("userhash is not supported"));
        }
        let nc_text = need("nc")?;
        if nc_text.len() != 8 {
            return Err(DigestError::Malformed("nc must be 8 hex digits"));
        }
        let nc = u32::from_str_radix(&nc_text, 16)
            .map_err(|_| DigestError::Malformed("nc must be 8 hex digits"))?;
        Ok(Credentials {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?.to_ascii_lowercase(),
            algorithm,
            cnonce: need("cnonce")?,
            nc,
        })
    }

    /// The algorithm the client used.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// Which challenges a 401 carries, in order. RFC 8760 wants the server's
/// preference first; many deployed UAs (SIPp 3.6 among them) answer only
/// the first challenge and know only MD5, so a server that must serve them
/// puts MD5 first and still offers SHA-256 to clients that look further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Challenges {
    /// MD5, then SHA-256 (the default: works with every phone).
    #[default]
    Md5First,
    /// SHA-256, then MD5.
    Sha256First,
    /// SHA-256 only (MD5 answers are refused).
    Sha256Only,
    /// MD5 only.
    Md5Only,
}

impl Challenges {
    /// The algorithms offered, in order.
    pub fn algorithms(self) -> &'static [Algorithm] {
        match self {
            Challenges::Md5First => &[Algorithm::Md5, Algorithm::Sha256],
            Challenges::Sha256First => &[Algorithm::Sha256, Algorithm::Md5],
            Challenges::Sha256Only => &[Algorithm::Sha256],
            Challenges::Md5Only => &[Algorithm::Md5],
        }
    }
}

/// Settings of the digest authenticator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestConfig {
    /// Which challenges to send, in order.
    pub challenges: Challenges,
    /// How long a nonce is accepted after it was issued.
    pub nonce_ttl_ms: u64,
    /// Most nonces tracked for replay protection; past it, new nonces are
    /// answered as stale so that clients fetch a fresh one later.
    pub max_tracked_nonces: usize,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            challenges: Challenges::default(),
            nonce_ttl_ms: 300_000,
            max_tracked_nonces: 1_000_000,
        }
    }
}

/// Issues challenges and verifies answers. One per SIP edge.
pub struct Digest {
    key: [u8; 32],
    config: DigestConfig,
    /// nonce -> (issued_ms, highest nc used).
    used: HashMap<String, (u64, u32)>,
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digest")
            .field("config", &self.config)
            .field("tracked_nonces", &self.used.len())
            .finish_non_exhaustive()
    }
}

impl Digest {
    /// An authenticator whose nonces are signed with `key` (random, drawn by
    /// the caller).
    pub fn new(key: [u8; 32], config: DigestConfig) -> Self {
        Digest {
            key,
            config,
            used: HashMap::new(),
        }
    }

    fn mac(&self, issued_ms: u64, salt: u64) -> [u8; MAC_BYTES] {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(&issued_ms.to_be_bytes());
        mac.update(&salt.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }

    /// A fresh nonce issued at `now_ms`; `salt` is random from the caller.
    pub fn nonce(&self, now_ms: u64, salt: u64) -> String {
        let mut bytes = Vec::with_capacity(8 + 8 + MAC_BYTES);
        bytes.extend_from_slice(&now_ms.to_be_bytes());
        bytes.extend_from_slice(&salt.to_be_bytes());
        bytes.extend_from_slice(&self.mac(now_ms, salt));
        hex::encode(bytes)
    }

    /// `WWW-Authenticate` values for `realm`, in the configured order.
    pub fn challenges(&self, realm: &str, now_ms: u64, salt: u64, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now_ms, salt);
        self.config
            .challenges
            .algorithms()
            .iter()
            .map(|algorithm| {
                let mut v = format!(
                    "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                    algorithm.token()
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// When `nonce` was issued, if it is one of ours.
    fn issued_at(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != NONCE_HEX {
            return None;
        }
        let bytes = hex::decode(nonce).ok()?;
        let issued_ms = u64::from_be_bytes(bytes[0..8].try_into().ok()?);
        let salt = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
        let expected = self.mac(issued_ms, salt);
        constant_time_eq(&expected, &bytes[16..]).then_some(issued_ms)
    }

    /// Verifies `creds` for a request with `method` and `request_uri`
    /// against the account's secrets, and records the nonce-count. The
    /// caller has already matched `creds.username` to the account.
    pub fn verify(
        &mut self,
        now_ms: u64,
        realm: &str,
        method: &Method<'_>,
        request_uri: &Uri<'_>,
        creds: &Credentials,
        ha1: &Ha1,
    ) -> Result<(), DigestError> {
        if creds.realm != realm {
            return Err(DigestError::WrongRealm);
        }
        if !self
            .config
            .challenges
            .algorithms()
            .contains(&creds.algorithm)
        {
            return Err(DigestError::UnsupportedAlgorithm(
                creds.algorithm.token().to_string(),
            ));
        }
        let issued_ms = self
            .issued_at(&creds.nonce)
            .ok_or(DigestError::ForeignNonce)?;
        if issued_ms > now_ms.saturating_add(1_000)
            || now_ms.saturating_sub(issued_ms) > self.config.nonce_ttl_ms
        {
            return Err(DigestError::StaleNonce);
        }
        // RFC 7616 3.4.6 asks servers to check that `uri` names the
        // request's resource. SIPp and several phones put the proxy's
        // address there instead of the Request-URI, so only its form is
        // checked; the response hash covers the uri the client sent, and
        // the nonce-count stops replays.
        let _ = request_uri;
        match Uri::parse(&creds.uri, false) {
            Ok(uri) if uri.as_sip().is_some() => {}
            _ => return Err(DigestError::UriNotSip),
        }
        let algorithm = creds.algorithm;
        let ha2 = algorithm.hash_hex(&format!("{}:{}", method.as_str(), creds.uri));
        let expected = algorithm.hash_hex(&format!(
            "{}:{}:{:08x}:{}:auth:{}",
            ha1.for_algorithm(algorithm),
            creds.nonce,
            creds.nc,
            creds.cnonce,
            ha2
        ));
        if !constant_time_eq(expected.as_bytes(), creds.response.as_bytes()) {
            return Err(DigestError::WrongResponse);
        }
        match self.used.get_mut(&creds.nonce) {
            Some((_, last)) if creds.nc <= *last => return Err(DigestError::Replay),
            Some((_, last)) => *last = creds.nc,
            None => {
                if self.used.len() >= self.config.max_tracked_nonces {
                    return Err(DigestError::StaleNonce);
                }
                self.used.insert(creds.nonce.clone(), (issued_ms, creds.nc));
            }
        }
        Ok(())
    }

    /// Forgets nonces that have expired.
    pub fn sweep(&mut self, now_ms: u64) {
        let ttl = self.config.nonce_ttl_ms;
        self.used
            .retain(|_, (issued, _)| now_ms.saturating_sub(*issued) <= ttl);
    }

    /// Nonces tracked for replay protection.
    pub fn tracked_nonces(&self) -> usize {
        self.used.len()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `response` a client computes (RFC 7616 3.4.1 with qop=auth); used by
/// tests and by the benchmark's client side.
pub fn client_response(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    nc: u32,
    cnonce: &str,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = algorithm.hash_hex(&format!("{method}:{uri}"));
    algorithm.hash_hex(&format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ha1(user: &str, realm: &str, password: &str) -> Ha1 {
        Ha1 {
            md5: Algorithm::Md5.hash_hex(&format!("{user}:{realm}:{password}")),
            sha256: Algorithm::Sha256.hash_hex(&format!("{user}:{realm}:{password}")),
        }
    }

    fn creds(
        d: &Digest,
        algorithm: Algorithm,
        secret: &Ha1,
        nonce: &str,
        nc: u32,
        uri: &str,
    ) -> Credentials {
        let response = client_response(
            algorithm,
            secret.for_algorithm(algorithm),
            nonce,
            nc,
            "c0ffee",
            "REGISTER",
            uri,
        );
        let _ = d;
        let header = format!(
            "Digest username=\"1001\", realm=\"example.test\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={}, cnonce=\"c0ffee\", qop=auth, nc={nc:08x}",
            algorithm.token()
        );
        let value = AuthValue::parse(&header).expect("test header parses");
        Credentials::from_header(&value).expect("test credentials are complete")
    }

    #[test]
    fn rfc7616_md5_example_response() {
        // RFC 7616 section 3.9.1 (MD5, qop=auth), with the HTTP method GET.
        let ha1 = Algorithm::Md5.hash_hex("Mufasa:http-auth@example.org:Circle of Life");
        let r = client_response(
            Algorithm::Md5,
            &ha1,
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
        let ha1 = Algorithm::Sha256.hash_hex("Mufasa:http-auth@example.org:Circle of Life");
        let r = client_response(
            Algorithm::Sha256,
            &ha1,
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn accepts_both_algorithms_and_refuses_replay_and_expiry() {
        let mut d = Digest::new([7; 32], DigestConfig::default());
        let secret = ha1("1001", "example.test", "s3cret-Pass");
        let uri_text = "sip:example.test";
        let uri = Uri::parse(uri_text, false).expect("uri");
        for algorithm in [Algorithm::Sha256, Algorithm::Md5] {
            let nonce = d.nonce(1_000, 42 + algorithm as u64);
            let c = creds(&d, algorithm, &secret, &nonce, 1, uri_text);
            assert_eq!(
                d.verify(2_000, "example.test", &Method::Register, &uri, &c, &secret),
                Ok(())
            );
            assert_eq!(
                d.verify(2_100, "example.test", &Method::Register, &uri, &c, &secret),
                Err(DigestError::Replay)
            );
            let c2 = creds(&d, algorithm, &secret, &nonce, 2, uri_text);
            assert_eq!(
                d.verify(2_200, "example.test", &Method::Register, &uri, &c2, &secret),
                Ok(())
            );
        }
        let nonce = d.nonce(1_000, 9);
        let c = creds(&d, Algorithm::Md5, &secret, &nonce, 1, uri_text);
        assert_eq!(
            d.verify(
                1_000 + 300_001,
                "example.test",
                &Method::Register,
                &uri,
                &c,
                &secret
            ),
            Err(DigestError::StaleNonce)
        );
        d.sweep(1_000 + 300_001);
        assert_eq!(d.tracked_nonces(), 0);
    }

    #[test]
    fn challenges_follow_the_configured_order_and_refuse_what_is_not_offered() {
        let order = |c: Challenges| {
            Digest::new(
                [1; 32],
                DigestConfig {
                    challenges: c,
                    ..DigestConfig::default()
                },
            )
            .challenges("r", 0, 1, false)
            .iter()
            .map(|v| {
                v.split("algorithm=")
                    .nth(1)
                    .unwrap_or("")
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect::<Vec<_>>()
        };
        assert_eq!(order(Challenges::Md5First), ["MD5", "SHA-256"]);
        assert_eq!(order(Challenges::Sha256First), ["SHA-256", "MD5"]);
        assert_eq!(order(Challenges::Sha256Only), ["SHA-256"]);
        let mut d = Digest::new(
            [7; 32],
            DigestConfig {
                challenges: Challenges::Sha256Only,
                ..DigestConfig::default()
            },
        );
        let secret = ha1("1001", "example.test", "s3cret-Pass");
        let uri = Uri::parse("sip:example.test", false).expect("uri");
        let nonce = d.nonce(0, 1);
        let c = creds(&d, Algorithm::Md5, &secret, &nonce, 1, "sip:example.test");
        assert_eq!(
            d.verify(10, "example.test", &Method::Register, &uri, &c, &secret),
            Err(DigestError::UnsupportedAlgorithm("MD5".into())),
            "no downgrade to an algorithm that was not offered"
        );
    }

    #[test]
    fn wrong_password_forged_nonce_and_uri_mismatch_are_refused() {
        let mut d = Digest::new([7; 32], DigestConfig::default());
        let secret = ha1("1001", "example.test", "s3cret-Pass");
        let wrong = ha1("1001", "example.test", "guess");
        let uri = Uri::parse("sip:example.test", false).expect("uri");
        let nonce = d.nonce(0, 1);
        let c = creds(&d, Algorithm::Md5, &wrong, &nonce, 1, "sip:example.test");
        assert_eq!(
            d.verify(10, "example.test", &Method::Register, &uri, &c, &secret),
            Err(DigestError::WrongResponse)
        );
        let other = Digest::new([8; 32], DigestConfig::default());
        let foreign = other.nonce(0, 1);
        let c = creds(&d, Algorithm::Md5, &secret, &foreign, 1, "sip:example.test");
        assert_eq!(
            d.verify(10, "example.test", &Method::Register, &uri, &c, &secret),
            Err(DigestError::ForeignNonce)
        );
        let c = creds(&d, Algorithm::Md5, &secret, &nonce, 1, "tel:+420123");
        assert_eq!(
            d.verify(10, "example.test", &Method::Register, &uri, &c, &secret),
            Err(DigestError::UriNotSip)
        );
        assert_eq!(d.tracked_nonces(), 0, "failed attempts track nothing");
        // The proxy's address as uri (what SIPp sends) is accepted when the
        // hash covers it.
        let c = creds(&d, Algorithm::Md5, &secret, &nonce, 1, "sip:127.0.0.1:5060");
        assert_eq!(
            d.verify(10, "example.test", &Method::Register, &uri, &c, &secret),
            Ok(())
        );
    }

    #[test]
    fn credentials_without_qop_or_with_sess_algorithms_are_refused() {
        let no_qop = AuthValue::parse(
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"x\"",
        )
        .expect("parses");
        assert_eq!(
            Credentials::from_header(&no_qop),
            Err(DigestError::QopRequired)
        );
        let sess = AuthValue::parse(
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"x\", algorithm=MD5-sess, qop=auth, nc=00000001, cnonce=\"c\"",
        )
        .expect("parses");
        assert_eq!(
            Credentials::from_header(&sess),
            Err(DigestError::UnsupportedAlgorithm("MD5-sess".into()))
        );
    }
}
