//! `carillon demo`: one node on the embedded store with a sample tenant
//! (two branches, queues, skills, paid and unpaid pauses, users of every
//! role and both kinds, devices, DIDs and licences), seeded through the
//! admin API like any client would. Credentials go to DIR/demo.json.

use super::ctl::Api;
use crate::config::{NodeConfig, Peer, RaftSection, Role};
use crate::running::{shutdown_signal, OperatorCredentials, RunningNode};
use anyhow::{bail, Context, Result};
use rand::Rng as _;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

mod sections;

use sections::{demo_certificate, mail_section, media_section, sip_section};

/// Arguments of `carillon demo`.
#[derive(Debug)]
pub struct DemoArgs {
    /// Data and demo.json.
    pub dir: PathBuf,
    /// Admin API address.
    pub admin_addr: String,
    /// Raft address.
    pub raft_addr: String,
    /// SIP address.
    pub sip_addr: String,
    /// SIP over WebSocket address.
    pub ws_addr: String,
    /// SIP over TLS address.
    pub sip_tls_addr: String,
    /// SIP over secure WebSocket address.
    pub wss_addr: String,
    /// The admin API over HTTPS.
    pub https_addr: String,
    /// `[sip]` settings as `key=value`.
    pub sip_options: Vec<String>,
    /// `[mail]` settings as `key=value` (no e-mail without them).
    pub mail_options: Vec<String>,
    /// Origins browsers may call the admin API from (`[admin] cors_origins`).
    pub cors_origins: Vec<String>,
    /// The relay's RTP port range, `FIRST-LAST`.
    pub rtp_ports: String,
}

/// A panel login of the demo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoUser {
    /// Login.
    pub login: String,
    /// Password.
    pub password: String,
    /// Roles.
    pub roles: Vec<String>,
}

/// A SIP account of the demo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSipAccount {
    /// Digest username.
    pub username: String,
    /// Digest password.
    pub password: String,
    /// Extension.
    pub short_number: String,
    /// Digest realm (the tenant's SIP domain).
    pub realm: String,
}

/// What `DIR/demo.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoFile {
    /// Admin API base URL.
    pub admin_url: String,
    /// SIP address (UDP and TCP) the demo listens on.
    pub sip_addr: String,
    /// SIP over WebSocket URL (RFC 7118).
    #[serde(default)]
    pub sip_ws_url: String,
    /// The admin API over HTTPS.
    #[serde(default)]
    pub https_url: String,
    /// SIP over TLS address (`sips:`).
    #[serde(default)]
    pub sip_tls_addr: String,
    /// SIP over secure WebSocket URL.
    #[serde(default)]
    pub sip_wss_url: String,
    /// The demo's self-signed certificate (PEM): trust it, or check its
    /// fingerprint.
    #[serde(default)]
    pub tls_cert_file: String,
    /// SHA-256 fingerprint of the certificate in use.
    #[serde(default)]
    pub tls_fingerprint_sha256: String,
    /// The sample tenant's id.
    pub tenant_id: u64,
    /// The sample tenant's SIP domain.
    pub sip_domain: String,
    /// Panel logins (the platform operator first).
    pub users: Vec<DemoUser>,
    /// SIP accounts.
    pub sip_accounts: Vec<DemoSipAccount>,
    /// Queues and the DIDs that lead to them.
    #[serde(default)]
    pub queues: Vec<DemoQueue>,
    /// Agents: how they log in (panel login, PIN) and their phones.
    #[serde(default)]
    pub agents: Vec<DemoAgent>,
}

/// A queue of the demo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoQueue {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// DIDs routed to it.
    pub dids: Vec<String>,
    /// Routing strategy (Q1).
    pub strategy: String,
}

/// An agent of the demo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoAgent {
    /// Panel login.
    pub login: String,
    /// User id.
    pub user_id: u64,
    /// PIN for the phone login (`*100*PIN`, or `*100` and the PIN by DTMF).
    pub pin: String,
    /// The agent's phone's SIP username.
    pub sip_username: String,
    /// The phone's short number.
    pub short_number: String,
    /// Queues it is checked in to at login (ids).
    pub queues: Vec<u64>,
}

/// A random password that satisfies V2 for every role and V3.
fn demo_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..12)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("Cl{body}7#")
}

/// Runs the demo until SIGTERM or SIGINT.
pub async fn run(args: DemoArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    let demo_json = args.dir.join("demo.json");
    let data_dir = args.dir.join("data");
    let existing: Option<DemoFile> = match std::fs::read(&demo_json) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).context("demo.json is not a demo file")?),
        Err(_) if data_dir.exists() => bail!(
            "{} holds data but no demo.json (an interrupted first run?): delete the directory to start over",
            args.dir.display()
        ),
        Err(_) => None,
    };
    let operator_password = existing
        .as_ref()
        .and_then(|d| d.users.first().map(|u| u.password.clone()))
        .unwrap_or_else(demo_password);
    let tls = demo_certificate(&args)?;
    let config = NodeConfig {
        role: Role::Full,
        node_id: 1,
        data_dir,
        admin_addr: args.admin_addr.clone(),
        raft_addr: args.raft_addr.clone(),
        sip_addr: Some(args.sip_addr.clone()),
        sip: sip_section(&args, &args.sip_options)?,
        bootstrap: true,
        peers: vec![Peer {
            id: 1,
            raft_addr: args.raft_addr.clone(),
            admin_addr: args.admin_addr.clone(),
        }],
        raft: RaftSection::default(),
        operator: None,
        login: Default::default(),
        admin: crate::config::AdminSection {
            cors_origins: args.cors_origins.clone(),
        },
        tls: tls.clone(),
        mail: mail_section(&args.mail_options)?,
        media: Some(media_section(&args.sip_addr, &args.rtp_ports)?),
        media_nodes: Vec::new(),
    };
    config.validate("carillon demo")?;
    let operator = OperatorCredentials {
        login: "operator".into(),
        password: operator_password.clone(),
    };
    let mut node = RunningNode::start(&config, Some(operator)).await?;
    node.bootstrapped().await;
    let admin_url = format!("http://{}", args.admin_addr);
    let mut demo = match existing {
        Some(demo) => demo,
        None => {
            let api = Api::new(&admin_url, None)?;
            let api = wait_for_login(&api, "operator", &operator_password).await?;
            seed(&api, &admin_url, &args.sip_addr, &operator_password).await?
        }
    };
    // The addresses actually bound (a port of 0 picks a free one).
    if let Some(sip) = node.sip() {
        if let Some(udp) = sip.udp_addr {
            demo.sip_addr = udp.to_string();
        }
        if let Some(ws) = sip.ws_addr {
            demo.sip_ws_url = format!("ws://{ws}");
        }
        if let Some(tls) = sip.tls_addr {
            demo.sip_tls_addr = tls.to_string();
        }
        if let Some(wss) = sip.wss_addr {
            demo.sip_wss_url = format!("wss://{wss}");
        }
    }
    if let Some(https) = node.https_addr() {
        demo.https_url = format!("https://{https}");
    }
    if let Some(tls) = &tls {
        demo.tls_cert_file = tls.cert_file.display().to_string();
        demo.tls_fingerprint_sha256 =
            crate::tls::ReloadingTls::new(tls.files(), &[])?.fingerprint();
    }
    let text = serde_json::to_string_pretty(&demo)?;
    let partial = demo_json.with_extension("json.partial");
    std::fs::write(&partial, text).with_context(|| format!("write {}", partial.display()))?;
    std::fs::rename(&partial, &demo_json)
        .with_context(|| format!("write {}", demo_json.display()))?;
    print_demo(&demo, &demo_json);
    shutdown_signal().await?;
    node.stop().await;
    Ok(())
}

async fn wait_for_login(api: &Api, login: &str, password: &str) -> Result<Api> {
    let mut last = None;
    for _ in 0..100 {
        match api.login(login, password).await {
            Ok(logged_in) => return Ok(logged_in),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("login never answered")))
        .context("log in as the operator")
}

fn id_of(reply: &Value) -> Result<u64> {
    reply
        .get("id")
        .and_then(Value::as_u64)
        .context("the reply has no id")
}

async fn create(api: &Api, path: &str, body: Value) -> Result<u64> {
    id_of(&api.expect_ok(Method::POST, path, Some(&body)).await?)
}

/// Seeds the sample tenant through the admin API.
async fn seed(
    op: &Api,
    admin_url: &str,
    sip_addr: &str,
    operator_password: &str,
) -> Result<DemoFile> {
    let sip_domain = "demo.carillon.test";
    let t = create(
        op,
        "/api/v1/tenants",
        json!({"name": "Demo Contact Centre", "sip_domain": sip_domain}),
    )
    .await?;
    let base = format!("/api/v1/tenants/{t}");
    let prague = create(
        op,
        &format!("{base}/branches"),
        json!({"name": "Prague", "country": "CZ", "timezone": "Europe/Prague"}),
    )
    .await?;
    let warsaw = create(
        op,
        &format!("{base}/branches"),
        json!({"name": "Warsaw", "country": "PL", "timezone": "Europe/Warsaw"}),
    )
    .await?;
    let english = create(op, &format!("{base}/skills"), json!({"name": "English"})).await?;
    let czech = create(op, &format!("{base}/skills"), json!({"name": "Czech"})).await?;
    let polish = create(op, &format!("{base}/skills"), json!({"name": "Polish"})).await?;
    let tier1 = create(
        op,
        &format!("{base}/groups"),
        json!({"name": "Tier 1", "description": "First-line support"}),
    )
    .await?;
    create(
        op,
        &format!("{base}/pause-types"),
        json!({"name": "Lunch", "paid": false, "max_duration_s": 1800}),
    )
    .await?;
    create(
        op,
        &format!("{base}/pause-types"),
        json!({"name": "Break", "paid": true, "max_duration_s": 900}),
    )
    .await?;
    create(
        op,
        &format!("{base}/pause-types"),
        json!({"name": "Training", "paid": true}),
    )
    .await?;
    for (kind, count) in [("voice", 5), ("chat", 2), ("uc_contact_card", 1)] {
        op.expect_ok(
            Method::POST,
            &format!("{base}/licences/purchases"),
            Some(&json!({"kind": kind, "count": count})),
        )
        .await?;
    }
    op.expect_ok(
        Method::POST,
        &format!("{base}/licences/device-packages"),
        Some(&json!({"count": 1})),
    )
    .await?;

    let mut users = vec![DemoUser {
        login: "operator".into(),
        password: operator_password.to_string(),
        roles: vec!["platform_operator".into()],
    }];
    let mut user_ids = std::collections::BTreeMap::new();
    let people = [
        (
            "admin",
            "Alice Administrator",
            "contact_centre",
            vec!["system_administrator"],
            prague,
            json!({}),
            None,
        ),
        (
            "team.admin",
            "Tomasz Team",
            "contact_centre",
            vec!["team_administrator"],
            warsaw,
            json!({"branches": [warsaw]}),
            None,
        ),
        (
            "supervisor",
            "Sára Supervisor",
            "contact_centre",
            vec!["supervisor"],
            prague,
            json!({"branches": [prague]}),
            None,
        ),
        (
            "agent.anna",
            "Anna Agent",
            "contact_centre",
            vec!["agent"],
            prague,
            json!({}),
            Some("40718"),
        ),
        (
            "agent.piotr",
            "Piotr Agent",
            "contact_centre",
            vec!["agent"],
            warsaw,
            json!({}),
            Some("52963"),
        ),
        (
            "uc.eva",
            "Eva Unified",
            "contact_centre",
            vec!["pbx_user", "uc_user"],
            prague,
            json!({}),
            None,
        ),
    ];
    for (login, name, kind, roles, branch, scope, pin) in people {
        let password = demo_password();
        let skills = match login {
            "agent.anna" => json!([{"skill": english, "level": 4}, {"skill": czech, "level": 5}]),
            "agent.piotr" => json!([{"skill": english, "level": 3}, {"skill": polish, "level": 5}]),
            _ => json!([]),
        };
        let mut body = json!({
            "kind": kind, "roles": roles, "full_name": name, "login": login, "branch": branch,
            "email": format!("{login}@demo.carillon.test"), "panel_access": true, "scope": scope,
            "skills": skills, "groups": if login.starts_with("agent.") { json!([tier1]) } else { json!([]) },
            "password": password,
        });
        if let Some(pin) = pin {
            body["pin"] = json!(pin);
        }
        let id = create(op, &format!("{base}/users"), body).await?;
        user_ids.insert(login, id);
        users.push(DemoUser {
            login: login.into(),
            password,
            roles: roles.iter().map(|r| r.to_string()).collect(),
        });
    }
    let reception = create(op, &format!("{base}/users"), json!({
        "kind": "back_office", "roles": ["pbx_user"], "full_name": "Reception Desk", "login": "reception", "branch": prague,
    })).await?;
    user_ids.insert("reception", reception);

    let mut sip_accounts = Vec::new();
    for (username, kind, owner, short) in [
        ("reception", "sip_phone", "reception", "100"),
        ("anna", "sip_phone", "agent.anna", "101"),
        ("piotr", "softphone", "agent.piotr", "102"),
        ("eva", "webrtc", "uc.eva", "103"),
    ] {
        let password = demo_password();
        create(
            op,
            &format!("{base}/devices"),
            json!({
                "kind": kind, "name": format!("{username}'s {kind}"), "owner": user_ids[owner],
                "sip_username": username, "short_number": short, "sip_password": password,
            }),
        )
        .await?;
        sip_accounts.push(DemoSipAccount {
            username: username.into(),
            password,
            short_number: short.into(),
            realm: sip_domain.into(),
        });
    }
    create(op, &format!("{base}/devices"), json!({
        "kind": "mobile", "name": "Anna's mobile", "owner": user_ids["agent.anna"], "external_number": "+420777000101",
    })).await?;

    let support = create(op, &format!("{base}/queues"), json!({
        "name": "Support", "strategy": {"kind": "skills_based"},
        "required_skills": [{"skill": english, "min_level": 3}],
        "relaxations": [{"after_s": 30, "min_level": 1}, {"after_s": 60, "min_level": null}],
        "music_on_hold": "default", "announce_position": true, "announce_estimated_wait": true,
        "callbacks_enabled": true, "wrap_up_s": 30, "disposition_codes": ["resolved", "escalated", "callback_promised"], "recording": "from_agent_connect", "timezone": "Europe/Prague",
    })).await?;
    let sales = create(op, &format!("{base}/queues"), json!({
        "name": "Sales", "strategy": {"kind": "longest_idle"}, "max_length": 20, "max_wait_s": 300,
        "overflow": {"after_s": 120, "destination": {"kind": "queue", "queue": support}},
        "static_members": [user_ids["agent.piotr"]], "timezone": "Europe/Warsaw",
        "opening_hours": [
            {"day": "monday", "open_minute": 480, "close_minute": 1080},
            {"day": "tuesday", "open_minute": 480, "close_minute": 1080},
            {"day": "wednesday", "open_minute": 480, "close_minute": 1080},
            {"day": "thursday", "open_minute": 480, "close_minute": 1080},
            {"day": "friday", "open_minute": 480, "close_minute": 1080}
        ],
        "holidays": ["2026-12-25", "2026-12-26"],
        "closed_destination": {"kind": "hangup", "prompt": "vm-goodbye"}, "at_closing": "leave",
    })).await?;

    // Agents are checked in to their queues when they log in (also by
    // phone, with a feature code).
    let login_queues = [
        ("agent.anna", vec![support]),
        ("agent.piotr", vec![sales, support]),
    ];
    for (login, queues) in &login_queues {
        let path = format!("{base}/users/{}", user_ids[login]);
        let mut spec = op.expect_ok(Method::GET, &path, None).await?;
        if let Some(map) = spec.as_object_mut() {
            for field in ["id", "has_password", "has_pin"] {
                map.remove(field);
            }
            map.insert("login_queues".into(), json!(queues));
        }
        op.expect_ok(Method::PUT, &path, Some(&spec)).await?;
    }
    for (e164, target) in [
        ("+420225000100", json!({"kind": "queue", "queue": support})),
        ("+48221000200", json!({"kind": "queue", "queue": sales})),
        ("+420225000199", json!({"kind": "user", "user": reception})),
    ] {
        create(op, &format!("{base}/numbers"), json!({"e164": e164})).await?;
        op.expect_ok(
            Method::POST,
            &format!("{base}/numbers/assign"),
            Some(&json!({"e164": e164, "target": target})),
        )
        .await?;
    }
    for (login, kind) in [
        ("agent.anna", "voice"),
        ("agent.piotr", "voice"),
        ("uc.eva", "uc_contact_card"),
    ] {
        op.expect_ok(
            Method::POST,
            &format!("{base}/licences/assignments"),
            Some(&json!({"user": user_ids[login], "kind": kind})),
        )
        .await?;
    }
    let queues = vec![
        DemoQueue {
            id: support,
            name: "Support".into(),
            dids: vec!["+420225000100".into()],
            strategy: "skills_based".into(),
        },
        DemoQueue {
            id: sales,
            name: "Sales".into(),
            dids: vec!["+48221000200".into()],
            strategy: "longest_idle".into(),
        },
    ];
    let agents = [
        ("agent.anna", "40718", "anna", "101"),
        ("agent.piotr", "52963", "piotr", "102"),
    ]
    .into_iter()
    .map(|(login, pin, sip, short)| DemoAgent {
        login: login.into(),
        user_id: user_ids[login],
        pin: pin.into(),
        sip_username: sip.into(),
        short_number: short.into(),
        queues: login_queues
            .iter()
            .find(|(l, _)| *l == login)
            .map(|(_, q)| q.clone())
            .unwrap_or_default(),
    })
    .collect();
    Ok(DemoFile {
        admin_url: admin_url.to_string(),
        sip_addr: sip_addr.to_string(),
        sip_ws_url: String::new(),
        https_url: String::new(),
        sip_tls_addr: String::new(),
        sip_wss_url: String::new(),
        tls_cert_file: String::new(),
        tls_fingerprint_sha256: String::new(),
        tenant_id: t,
        sip_domain: sip_domain.into(),
        users,
        sip_accounts,
        queues,
        agents,
    })
}

fn print_demo(demo: &DemoFile, path: &std::path::Path) {
    println!("Carillon demo is running.");
    println!(
        "  admin API:  {}/api/v1  (OpenAPI: {}/api/v1/openapi.json)",
        demo.admin_url, demo.admin_url
    );
    println!("  metrics:    {}/metrics", demo.admin_url);
    println!(
        "  SIP:        udp/tcp {}  websocket {}  (REGISTER to sip:{})",
        demo.sip_addr, demo.sip_ws_url, demo.sip_domain
    );
    println!(
        "  TLS:        https {}  sips {}  wss {}",
        demo.https_url, demo.sip_tls_addr, demo.sip_wss_url
    );
    println!(
        "  certificate: {} (self-signed), SHA-256 fingerprint {}",
        demo.tls_cert_file, demo.tls_fingerprint_sha256
    );
    println!(
        "  tenant:     {} (SIP domain {})",
        demo.tenant_id, demo.sip_domain
    );
    println!("  panel logins:");
    for user in &demo.users {
        println!(
            "    {:<12} {:<18} {}",
            user.login,
            user.password,
            user.roles.join(",")
        );
    }
    println!("  SIP accounts (realm {}):", demo.sip_domain);
    for account in &demo.sip_accounts {
        println!(
            "    {:<10} {:<18} ext {}",
            account.username, account.password, account.short_number
        );
    }
    println!("  queues:");
    for queue in &demo.queues {
        println!(
            "    {:<8} {:<14} DIDs {}",
            queue.name,
            queue.strategy,
            queue.dids.join(", ")
        );
    }
    println!("  agents (phone login: dial *100*PIN from the agent's phone; #300# ready, *200 pause, *201 unpause, 404# log out):");
    for agent in &demo.agents {
        println!(
            "    {:<12} PIN {}  phone {} (ext {})",
            agent.login, agent.pin, agent.sip_username, agent.short_number
        );
    }
    println!("  credentials written to {}", path.display());
    println!(
        "  try: CARILLON_PASSWORD='{}' carillon ctl login operator",
        demo.users[0].password
    );
    println!("Stop with Ctrl-C (SIGINT) or SIGTERM.");
}
