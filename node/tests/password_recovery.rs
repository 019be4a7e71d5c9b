//! Password recovery (U5) end to end, with a real SMTP server on loopback
//! (`smtp_sink.py`, aiosmtpd: STARTTLS required, then AUTH): a reset asked
//! for by login or e-mail answers the same whatever exists; the e-mail
//! arrives through the relay with a link that works once; the new password
//! ends the old session; a used, a forged and an expired link are refused;
//! each step is in the audit trail; and a message queued while the relay is
//! down survives a restart of the node and is delivered once.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{free_port, password_of, Api, Demo};
use serde_json::{json, Value};

const RELAY_USER: &str = "carillon";
const RELAY_PASSWORD: &str = "Relay-Secret-7";
const PASSWORD_ENV: &str = "CARILLON_TEST_SMTP_PASSWORD";
const RESET_TTL_S: u64 = 8;

/// The SMTP server, stopped by pid when dropped.
struct Sink(Child);

impl Sink {
    fn start(port: u16, cert: &Path, key: &Path, out: &Path) -> Sink {
        let check = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output();
        assert!(
            check.is_ok_and(|o| o.status.success()),
            "python3 with aiosmtpd is needed: run scripts/install-deps.sh (PyPI aiosmtpd==1.4.6)"
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let child = Command::new("python3")
            .arg(script)
            .args(["127.0.0.1", &port.to_string()])
            .arg(cert)
            .arg(key)
            .arg(out)
            .args([RELAY_USER, RELAY_PASSWORD])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP sink");
        // Held from here, so that a panic below still stops it.
        let sink = Sink(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sink;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the SMTP sink did not listen on {port} within 10 s");
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).expect("pid"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The decoded messages the sink received for `to`.
fn mails_to(out: &Path, to: &str) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(out)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|m| m.lines().next().is_some_and(|l| l.contains(to)))
        .collect()
}

async fn wait_for_mail(out: &Path, to: &str, count: usize) -> Vec<String> {
    for _ in 0..300 {
        let mails = mails_to(out, to);
        if mails.len() >= count {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no e-mail to {to} within 30 s");
}

fn token_in(mail: &str) -> String {
    let at = mail.find("token=rst_").expect("a reset link") + "token=".len();
    mail[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

async fn post(api: &Api, path: &str, body: Value) -> (u16, Value) {
    api.call(None, "POST", path, Some(body)).await
}

fn demo(dir: &Path, admin: u16, raft: u16, smtp: u16, ca: &Path) -> Demo {
    let options = [
        "smtp_host=\"127.0.0.1\"".to_string(),
        format!("smtp_port={smtp}"),
        format!("ca_file={:?}", ca.display().to_string()),
        format!("username=\"{RELAY_USER}\""),
        format!("password_env=\"{PASSWORD_ENV}\""),
        "from=\"Carillon <noreply@demo.carillon.test>\"".to_string(),
        "link_base=\"https://127.0.0.1:8443\"".to_string(),
        format!("reset_ttl_s={RESET_TTL_S}"),
    ];
    let mut args: Vec<&str> = Vec::new();
    for option in &options {
        args.extend(["--mail-option", option.as_str()]);
    }
    Demo::start_with_env(dir, admin, raft, &args, &[(PASSWORD_ENV, RELAY_PASSWORD)])
}

/// Turns e-mail notifications (U5) on for `login`.
async fn notifications_on(api: &Api, admin: &str, t: u64, login: &str) {
    let (_, users) = api
        .call(
            Some(admin),
            "GET",
            &format!("/api/v1/tenants/{t}/users"),
            None,
        )
        .await;
    let mut user = users
        .as_array()
        .and_then(|u| u.iter().find(|u| u["login"] == login))
        .cloned()
        .expect("the user");
    let id = user["id"].as_u64().expect("id");
    let spec = user.as_object_mut().expect("object");
    for computed in ["id", "has_password", "has_pin"] {
        spec.remove(computed);
    }
    spec.insert("email_notifications".into(), json!(true));
    let (status, body) = api
        .call(
            Some(admin),
            "PUT",
            &format!("/api/v1/tenants/{t}/users/{id}"),
            Some(Value::Object(spec.clone())),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The value of a (labelled) metric line, if present.
async fn metric_line(url: &str, line: &str) -> Option<f64> {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(line).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_arrives_by_mail_works_once_and_the_outbox_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay_tls = carillon_node::tls::TlsFiles {
        cert: dir.path().join("relay/cert.pem"),
        key: dir.path().join("relay/key.pem"),
    };
    carillon_node::tls::write_self_signed(&relay_tls, &["127.0.0.1".into()])
        .expect("the relay's certificate");
    let out = dir.path().join("mail");
    let smtp = free_port();
    let sink = Sink::start(smtp, &relay_tls.cert, &relay_tls.key, &out);
    let (admin_port, raft_port) = (free_port(), free_port());
    let node_dir = dir.path().join("node");
    std::fs::create_dir_all(&node_dir).expect("node dir");
    let first = demo(&node_dir, admin_port, raft_port, smtp, &relay_tls.cert);
    let file = first.demo_json();
    let api = first.api();
    api.wait_ready().await;
    let anna_old = password_of(&file, "agent.anna");
    let session = api.login("agent.anna", &anna_old).await;
    let t = file["tenant_id"].as_u64().expect("tenant");
    let admin = api.login("admin", &password_of(&file, "admin")).await;
    for login in ["agent.anna", "agent.piotr"] {
        notifications_on(&api, &admin, t, login).await;
    }

    // The same answer whether or not an account matches.
    let (status, known) = post(
        &api,
        "/api/v1/auth/password-reset",
        json!({"login": "agent.anna"}),
    )
    .await;
    assert_eq!(status, 202, "{known}");
    for unknown in [
        json!({"login": "nobody.here"}),
        json!({"email": "nobody@nowhere.test"}),
    ] {
        let (status, body) = post(&api, "/api/v1/auth/password-reset", unknown).await;
        assert_eq!((status, &body), (202, &known), "no enumeration");
    }
    let (status, body) = post(&api, "/api/v1/auth/password-reset", json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("RESET_REQUEST_INVALID"))
    );

    // One e-mail, to anna's address, through the relay (STARTTLS + AUTH).
    let anna_mail = "agent.anna@demo.carillon.test";
    let mails = wait_for_mail(&out, anna_mail, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        mails_to(&out, anna_mail).len(),
        1,
        "one e-mail for one request"
    );
    let mail = &mails[0];
    assert!(
        mail.contains("Subject: Set a new Carillon password")
            && mail.contains("From: Carillon <noreply@demo.carillon.test>")
            && mail.contains("https://127.0.0.1:8443/reset-password?token=rst_"),
        "{mail}"
    );
    let token = token_in(mail);

    // The link sets a new password once; the old session and password end.
    let new_password = "Recovered-Password-42!";
    let confirm = |token: String| json!({"token": token, "password": new_password});
    let (status, body) = post(
        &api,
        "/api/v1/auth/password-reset/confirm",
        confirm(token.clone()),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = api
        .call(Some(&session), "GET", "/api/v1/auth/me", None)
        .await;
    assert_eq!(status, 401, "the session from before the reset ended");
    let (status, _) = post(
        &api,
        "/api/v1/auth/login",
        json!({"login": "agent.anna", "password": anna_old}),
    )
    .await;
    assert_eq!(status, 401, "the old password no longer works");
    let fresh = api.login("agent.anna", new_password).await;
    let (status, _) = api.call(Some(&fresh), "GET", "/api/v1/auth/me", None).await;
    assert_eq!(status, 200);
    let (status, body) = post(&api, "/api/v1/auth/password-reset/confirm", confirm(token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("RESET_TOKEN_USED")),
        "{body}"
    );
    // With e-mail notifications on (U5), anna is told, through the same outbox.
    let told = wait_for_mail(&out, anna_mail, 2).await;
    assert!(
        told[1].contains("Subject: Your Carillon password was changed"),
        "{}",
        told[1]
    );
    let forged = format!("rst_{}", "0".repeat(48));
    let (status, body) = post(&api, "/api/v1/auth/password-reset/confirm", confirm(forged)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("RESET_TOKEN_INVALID")),
        "{body}"
    );

    // By e-mail address; used after its lifetime: refused.
    let piotr_mail = "agent.piotr@demo.carillon.test";
    let (status, _) = post(
        &api,
        "/api/v1/auth/password-reset",
        json!({"email": piotr_mail.to_uppercase()}),
    )
    .await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(RESET_TTL_S * 1_000 + 500)).await;
    let mails = wait_for_mail(&out, piotr_mail, 1).await;
    let (status, body) = post(
        &api,
        "/api/v1/auth/password-reset/confirm",
        confirm(token_in(&mails[0])),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("RESET_TOKEN_EXPIRED")),
        "{body}"
    );

    // Ten wrong passwords from four addresses lock piotr's login; he is told.
    for (source, n) in [
        ("127.0.0.2", 3),
        ("127.0.0.3", 3),
        ("127.0.0.4", 3),
        ("127.0.0.5", 1),
    ] {
        let client = reqwest::Client::builder()
            .local_address(source.parse::<std::net::IpAddr>().expect("ip"))
            .build()
            .expect("client");
        for _ in 0..n {
            let status = client
                .post(format!("{}/api/v1/auth/login", api.url))
                .json(&json!({"login": "agent.piotr", "password": "Wrong-Password-1!"}))
                .send()
                .await
                .expect("answer")
                .status();
            assert_eq!(status.as_u16(), 401);
        }
    }
    let told = wait_for_mail(&out, piotr_mail, 2).await;
    assert!(
        told[1].contains("Subject: Your Carillon login is locked") && told[1].contains("127.0.0.5"),
        "{}",
        told[1]
    );

    // Audited: issued by the front door, completed by anna; no secret.
    let mut done = Value::Null;
    for _ in 0..100 {
        let (_, page) = api
            .call(
                Some(&admin),
                "GET",
                &format!("/api/v1/tenants/{t}/audit?action=complete_password_reset"),
                None,
            )
            .await;
        if page["items"].as_array().is_some_and(|i| !i.is_empty()) {
            done = page;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["items"][0]["actor"]["kind"], "user", "{done}");
    let text = done.to_string();
    assert!(
        !text.contains(new_password) && !text.contains("rst_"),
        "{text}"
    );

    // The relay down: a message waits in the outbox, survives a restart of
    // the node and is delivered once the relay is back.
    drop(sink);
    let supervisor_mail = "supervisor@demo.carillon.test";
    let (status, _) = post(
        &api,
        "/api/v1/auth/password-reset",
        json!({"login": "supervisor"}),
    )
    .await;
    assert_eq!(status, 202);
    let mut failed = false;
    for _ in 0..150 {
        let temporary = metric_line(
            &first.url,
            "carillon_mail_failures_total{kind=\"temporary\"}",
        )
        .await;
        let pending = metric_line(&first.url, "carillon_mail_outbox_pending").await;
        if temporary.is_some_and(|n| n >= 1.0) && pending == Some(1.0) {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failed,
        "the message waits in the outbox after a failed attempt"
    );
    assert_eq!(
        first.terminate(),
        Some(0),
        "a clean stop with a message pending"
    );
    let _sink = Sink::start(smtp, &relay_tls.cert, &relay_tls.key, &out);
    let second = demo(&node_dir, admin_port, raft_port, smtp, &relay_tls.cert);
    second.api().wait_ready().await;
    let mails = wait_for_mail(&out, supervisor_mail, 1).await;
    assert!(mails[0].contains("token=rst_"), "{}", mails[0]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(mails_to(&out, supervisor_mail).len(), 1, "delivered once");
    assert_eq!(
        metric_line(&second.url, "carillon_mail_outbox_pending").await,
        Some(0.0)
    );
    assert_eq!(second.terminate(), Some(0));
}
