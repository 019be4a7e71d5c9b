//! REGISTER (RFC 3261 10.3): the domain served (404), digest (401 with
//! SHA-256 and MD5 challenges, `stale=true` for expired nonces, failures
//! counted towards the source's ban), the credentials' right to the address
//! of record (403), then the registrar (423, 400, 403 for L1).

use rand::Rng;

use super::{header, Accounts, Edge};
use crate::digest::{Credentials, DigestError};
use crate::message::{Contact, Message, Uri};
use crate::registrar::{ContactRequest, DeviceKey, Flow, RegisterRefusal, RegisterRequest};

impl<A: Accounts> Edge<A> {
    fn challenge(
        &mut self,
        request: &Message<'_>,
        flow: &Flow,
        realm: &str,
        now_ms: u64,
        stale: bool,
        reason: &str,
    ) -> Message<'static> {
        let salt = self.rng.gen::<u64>();
        let mut r = self.reply(request, flow, 401, reason);
        for c in self.digest.challenges(realm, now_ms, salt, stale) {
            r.headers.other.push(header("WWW-Authenticate", c));
        }
        r
    }

    pub(super) fn register(
        &mut self,
        now_ms: u64,
        flow: &Flow,
        request: &Message<'_>,
    ) -> Message<'static> {
        let Some(sip_uri) = request.request_uri().and_then(Uri::as_sip) else {
            return self.reply(
                request,
                flow,
                416,
                "Unsupported URI Scheme - REGISTER needs a sip or sips Request-URI",
            );
        };
        let domain = sip_uri.host.to_string().to_ascii_lowercase();
        let Some(tenant) = self.accounts.tenant_for_domain(&domain) else {
            let reason = format!("Not Found - domain {domain} is not served here");
            return self.reply(request, flow, 404, &reason);
        };
        let realm = domain;
        let digest_value = request.headers.authorization.iter().find(|a| {
            a.scheme.eq_ignore_ascii_case("Digest")
                && a.param("realm")
                    .is_some_and(|r| r.eq_ignore_ascii_case(&realm))
        });
        let Some(value) = digest_value else {
            return self.challenge(request, flow, &realm, now_ms, false, "Unauthorized");
        };
        let creds = match Credentials::from_header(value) {
            Ok(c) => c,
            Err(e @ DigestError::Malformed(_)) => {
                let reason = format!("Bad Request - {e}");
                return self.reply(request, flow, 400, &reason);
            }
            Err(e) => {
                let reason = format!("Unauthorized - {e}");
                return self.challenge(request, flow, &realm, now_ms, false, &reason);
            }
        };
        let account = self.accounts.account(tenant, &creds.username);
        let method = request.method().clone();
        let Some(uri) = request.request_uri().cloned() else {
            return self.reply(request, flow, 400, "Bad Request - no Request-URI");
        };
        let verified = match &account {
            Some(a) => self
                .digest
                .verify(now_ms, &realm, &method, &uri, &creds, &a.ha1),
            None => Err(DigestError::WrongResponse),
        };
        match verified {
            Ok(()) => {}
            Err(DigestError::StaleNonce) => {
                return self.challenge(
                    request,
                    flow,
                    &realm,
                    now_ms,
                    true,
                    "Unauthorized - digest nonce has expired",
                );
            }
            Err(e @ DigestError::UriNotSip) => {
                let reason = format!("Bad Request - {e}");
                return self.reply(request, flow, 400, &reason);
            }
            Err(e) => {
                if e.counts_as_failure() {
                    self.auth_failures += 1;
                    if let Some(until) =
                        self.layer.guard_mut().auth_failed(now_ms, flow.remote.ip())
                    {
                        let secs = until.saturating_sub(now_ms).div_ceil(1_000);
                        let reason = format!(
                            "Forbidden - too many authentication failures; source banned for {secs} s"
                        );
                        return self.reply(request, flow, 403, &reason);
                    }
                }
                let reason = format!("Unauthorized - {e}");
                return self.challenge(request, flow, &realm, now_ms, false, &reason);
            }
        }
        let Some(account) = account else {
            return self.reply(
                request,
                flow,
                500,
                "Server Internal Error - account vanished",
            );
        };
        // RFC 3261 10.3 step 4: may these credentials register this AOR?
        let aor_user = request.headers.to.uri.as_sip().and_then(|u| u.user.clone());
        let may = aor_user.as_deref().is_some_and(|user| {
            user == creds.username || account.short_number.as_deref() == Some(user)
        });
        if !may {
            let reason = format!(
                "Forbidden - credentials of {} may not register {}",
                creds.username, request.headers.to.uri
            );
            return self.reply(request, flow, 403, &reason);
        }
        let key = DeviceKey {
            tenant,
            device: account.device,
        };
        let mut wildcard = false;
        let mut contacts = Vec::new();
        for c in &request.headers.contact {
            match c {
                Contact::Wildcard => wildcard = true,
                Contact::Address(a) => contacts.push(ContactRequest {
                    uri: a.uri.to_string(),
                    expires: a.expires(),
                    q: a.q_thousandths(),
                }),
            }
        }
        let query = contacts.is_empty() && !wildcard;
        let bindings = if query {
            Ok(self.registrar.bindings(now_ms, key))
        } else {
            let req = RegisterRequest {
                contacts,
                wildcard,
                expires: request.headers.expires,
                call_id: request.headers.call_id.to_string(),
                cseq: request.headers.cseq.number,
                flow: *flow,
                user_agent: request
                    .headers
                    .get_all("User-Agent")
                    .next()
                    .map(str::to_string),
            };
            self.registrar
                .register(now_ms, key, &req, account.allowance)
        };
        match bindings {
            Ok(bindings) => {
                if !query {
                    self.registrations += 1;
                }
                let mut r = self.reply(request, flow, 200, "OK");
                for b in bindings {
                    r.headers.other.push(header(
                        "Contact",
                        format!("<{}>;expires={}", b.contact, b.expires_s),
                    ));
                }
                r
            }
            Err(refusal) => {
                let reason = refusal.to_string();
                let mut r = self.reply(request, flow, refusal.status(), &reason);
                if let RegisterRefusal::IntervalTooBrief { min_expires_s } = refusal {
                    r.headers
                        .other
                        .push(header("Min-Expires", min_expires_s.to_string()));
                }
                r
            }
        }
    }
}
