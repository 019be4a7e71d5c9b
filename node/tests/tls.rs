//! TLS as its users meet it, on one `carillon demo`: `curl` over HTTPS with
//! the demo's self-signed certificate (HSTS on, a client that does not trust
//! the certificate refused), a WebSocket client over WSS registering with
//! SIP digest, baresip registering over SIP/TLS (its binding's transport is
//! `tls`), and a certificate replaced while the node runs: the next HTTPS,
//! SIP/TLS and WSS connections present the new one.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::sipp::{require, Guarded};
use common::{free_port, password_of, Demo};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

/// `curl` over HTTPS trusting `ca` (or nothing): exit code, headers, body.
fn curl(ca: Option<&Path>, url: &str, extra: &[&str]) -> (i32, String, String) {
    let bin = require("curl", "curl");
    let mut command = Command::new(bin);
    command.args(["-sS", "-D", "-", "--max-time", "10", "--noproxy", "*"]);
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    let out = command.args(extra).arg(url).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        out.status.code().unwrap_or(-1),
        headers.to_ascii_lowercase(),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// A rustls client configuration trusting `cert` (PEM) only.
fn trusting(cert: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).expect("pem") {
        roots.add(c.expect("certificate")).expect("root");
    }
    #[allow(deprecated)] // the node's provider too (README: why ring)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Whether a TLS handshake with `addr` verifies against `cert` alone.
async fn handshake_trusting(addr: SocketAddr, cert: &Path) -> bool {
    let connector = tokio_rustls::TlsConnector::from(trusting(cert));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// A REGISTER over a secure WebSocket: the status line of the answer.
async fn register_over_wss(url: &str, cert: &Path) -> String {
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "sip".parse().expect("header"));
    let connector = tokio_tungstenite::Connector::Rustls(trusting(cert));
    let (mut socket, response) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
            .await
            .expect("a WSS connection");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("sip")
    );
    let register = "REGISTER sip:demo.carillon.test SIP/2.0\r\n\
        Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKwss1\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:anna@demo.carillon.test>;tag=wss1\r\n\
        To: <sip:anna@demo.carillon.test>\r\n\
        Call-ID: wss-register-1\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:anna@df7jal23ls0d.invalid;transport=ws>\r\n\
        Expires: 60\r\n\
        Content-Length: 0\r\n\r\n";
    socket
        .send(Message::Text(register.into()))
        .await
        .expect("send");
    let answer = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("an answer within 5 s")
        .expect("a message")
        .expect("not an error");
    let text = answer.into_text().expect("text").to_string();
    let _ = socket.close(None).await;
    text
}

fn write_baresip(home: &Path, cert: &Path, tls_addr: &str, password: &str) {
    std::fs::create_dir_all(home).expect("home");
    std::fs::write(
        home.join("config"),
        format!(
            "module_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\nmodule_app account.so\nsip_listen 127.0.0.1:0\nsip_cafile {}\n",
            cert.display()
        ),
    )
    .expect("config");
    std::fs::write(home.join("contacts"), "").expect("contacts");
    std::fs::write(
        home.join("accounts"),
        format!("<sip:anna@demo.carillon.test;transport=tls>;auth_pass={password};outbound=\"sip:{tls_addr};transport=tls\";regint=600\n"),
    )
    .expect("accounts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_wss_and_sip_tls_with_the_demo_certificate_reloaded_while_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    // baresip 1.0's libre answers MD5 challenges only (as in baresip_agent.rs).
    let demo = Demo::start_with(
        dir.path(),
        free_port(),
        free_port(),
        &[
            "--sip-option",
            "digest=\"md5-only\"",
            "--sip-tls-addr",
            "127.0.0.1:0",
            "--wss-addr",
            "127.0.0.1:0",
            "--https-addr",
            "127.0.0.1:0",
        ],
    );
    let file = demo.demo_json();
    let api = demo.api();
    api.wait_ready().await;
    let https = file["https_url"].as_str().expect("https url").to_string();
    let cert = PathBuf::from(file["tls_cert_file"].as_str().expect("cert file"));
    let printed = std::fs::read_to_string(dir.path().join(format!(
        "demo-{}.out",
        demo.url.rsplit(':').next().expect("port")
    )))
    .unwrap_or_default();
    let fingerprint = file["tls_fingerprint_sha256"].as_str().expect("fp");
    assert!(
        fingerprint.len() == 95 && printed.contains(fingerprint),
        "the demo prints its certificate's fingerprint: {fingerprint}\n{printed}"
    );

    // HTTPS: trusted with the demo's certificate, HSTS on; not trusted without.
    let (code, headers, body) = curl(Some(&cert), &format!("{https}/healthz"), &[]);
    assert!(
        code == 0 && headers.starts_with("http/1.1 200"),
        "{code} {headers} {body}"
    );
    assert!(
        headers.contains("strict-transport-security: max-age=31536000"),
        "{headers}"
    );
    let (code, _, body) = curl(None, &format!("{https}/healthz"), &[]);
    assert_eq!(
        code, 60,
        "an untrusted certificate is refused by curl: {body}"
    );
    let login = format!(
        r#"{{"login":"admin","password":"{}"}}"#,
        password_of(&file, "admin")
    );
    let (code, headers, body) = curl(
        Some(&cert),
        &format!("{https}/api/v1/auth/login"),
        &["-H", "content-type: application/json", "--data", &login],
    );
    assert!(
        code == 0 && headers.starts_with("http/1.1 200"),
        "login over HTTPS: {code} {headers} {body}"
    );
    let session: Value = serde_json::from_str(&body).expect("a session");
    let token = session["token"].as_str().expect("token").to_string();
    let t = file["tenant_id"].as_u64().expect("tenant");

    // WSS: a REGISTER without credentials is challenged over the secure socket.
    let wss = file["sip_wss_url"].as_str().expect("wss url").to_string();
    let answer = register_over_wss(&wss, &cert).await;
    assert!(
        answer.starts_with("SIP/2.0 401") && answer.contains("Via: SIP/2.0/WSS"),
        "{answer}"
    );

    // SIP over TLS: baresip registers; its binding says `tls`.
    let tls_addr = file["sip_tls_addr"].as_str().expect("tls addr").to_string();
    let password = file["sip_accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["username"] == "anna")
        .expect("anna")["password"]
        .as_str()
        .expect("password")
        .to_string();
    let home = dir.path().join("baresip");
    write_baresip(&home, &cert, &tls_addr, &password);
    let log = std::fs::File::create(home.join("baresip.log")).expect("log");
    let baresip = require("baresip", "baresip");
    let _phone = Guarded(
        Command::new(baresip)
            .arg("-f")
            .arg(&home)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start baresip"),
    );
    let mut transport = None;
    for _ in 0..100 {
        let (_, devices) = api
            .call(
                Some(&token),
                "GET",
                &format!("/api/v1/tenants/{t}/extensions"),
                None,
            )
            .await;
        transport = devices.as_array().and_then(|list| {
            list.iter()
                .filter(|d| d["sip_username"] == "anna")
                .flat_map(|d| d["bindings"].as_array().cloned().unwrap_or_default())
                .find_map(|b| b["transport"].as_str().map(str::to_string))
        });
        if transport.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        transport.as_deref(),
        Some("tls"),
        "baresip registered over TLS:\n{}",
        std::fs::read_to_string(home.join("baresip.log")).unwrap_or_default()
    );

    // A new certificate written over the files: the next connections of
    // every listener present it, and the old one no longer verifies.
    let old = dir.path().join("old-cert.pem");
    std::fs::copy(&cert, &old).expect("keep the old certificate");
    let files = carillon_node::tls::TlsFiles {
        cert: cert.clone(),
        key: cert.with_file_name("key.pem"),
    };
    let renewed = carillon_node::tls::write_self_signed(&files, &["127.0.0.1".into()])
        .expect("a new certificate");
    assert_ne!(renewed, fingerprint);
    let (code, headers, body) = curl(Some(&cert), &format!("{https}/healthz"), &[]);
    assert!(
        code == 0 && headers.starts_with("http/1.1 200"),
        "HTTPS with the new certificate: {code} {body}"
    );
    let (code, _, _) = curl(Some(&old), &format!("{https}/healthz"), &[]);
    assert_eq!(code, 60, "the old certificate is no longer served");
    let sip_tls: SocketAddr = tls_addr.parse().expect("addr");
    assert!(
        handshake_trusting(sip_tls, &cert).await,
        "SIP/TLS serves the new one"
    );
    assert!(
        !handshake_trusting(sip_tls, &old).await,
        "and not the old one"
    );
    let answer = register_over_wss(&wss, &cert).await;
    assert!(
        answer.starts_with("SIP/2.0 401"),
        "WSS with the new certificate: {answer}"
    );
    assert_eq!(demo.terminate(), Some(0), "a clean stop");
}
