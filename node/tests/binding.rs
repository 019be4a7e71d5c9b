//! D4 self-adapting binding from outside: two demo phones register with
//! SIPp from two loopback addresses; an agent whose binding is
//! self-adapting logs in through the API from one of those addresses and is
//! bound to the phone registered from it (not to its own phone); logging in
//! from an address no phone registered from binds nothing and still logs in.

mod common;

use common::{free_port, password_of, Api, Demo};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn sipp_register(dir: &Path, sip: &str, ip: &str, account: &Value) {
    let bin = common::sipp::require("sipp", "sip-tester");
    let user = account["username"].as_str().expect("username");
    let csv = dir.join(format!("{user}.csv"));
    std::fs::write(
        &csv,
        format!(
            "SEQUENTIAL\n{user};[authentication username={user} password={}];{};300\n",
            account["password"].as_str().expect("password"),
            account["realm"].as_str().expect("realm")
        ),
    )
    .expect("csv");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/register.xml");
    let out = Command::new(bin)
        .current_dir(dir)
        .arg(sip)
        .args(["-sf", &scenario.display().to_string()])
        .args(["-inf", &csv.display().to_string()])
        .args(["-m", "1", "-i", ip, "-p", &free_port().to_string()])
        .args(["-nostdin", "-timeout", "20s", "-timeout_error"])
        .stdin(Stdio::null())
        .output()
        .expect("run sipp");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{user} registers from {ip}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn account<'a>(demo: &'a Value, user: &str) -> &'a Value {
    demo["sip_accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["username"] == user)
        .expect("account")
}

/// An API client whose connections come from `ip`.
fn api_from(demo: &Demo, ip: &str) -> Api {
    Api {
        http: reqwest::Client::builder()
            .local_address(ip.parse::<IpAddr>().expect("ip"))
            .build()
            .expect("client"),
        url: demo.url.clone(),
        log: demo.log.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_adapting_agent_is_bound_to_the_phone_registered_from_its_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = Demo::start(dir.path(), free_port(), free_port());
    let file = demo.demo_json();
    let api = demo.api();
    api.wait_ready().await;
    let admin = api.login("admin", &password_of(&file, "admin")).await;
    let t = file["tenant_id"].as_u64().expect("tenant");
    let sip = file["sip_addr"].as_str().expect("sip addr");
    // Reception's desk phone registers from 127.0.0.6, Anna's from .5.
    sipp_register(dir.path(), sip, "127.0.0.5", account(&file, "anna"));
    sipp_register(dir.path(), sip, "127.0.0.6", account(&file, "reception"));
    // The edge publishes its registrations every 100-250 ms: wait for both.
    let mut registered = 0;
    for _ in 0..100 {
        let (_, extensions) = api
            .call(
                Some(&admin),
                "GET",
                &format!("/api/v1/tenants/{t}/extensions"),
                None,
            )
            .await;
        registered = extensions.as_array().map_or(0, |e| {
            e.iter()
                .filter(|x| x["sip_username"] == "anna" || x["sip_username"] == "reception")
                .filter(|x| x["bindings"].as_array().is_some_and(|b| !b.is_empty()))
                .count()
        });
        if registered == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(registered, 2, "both phones' registrations are published");
    let (_, devices) = api
        .call(
            Some(&admin),
            "GET",
            &format!("/api/v1/tenants/{t}/devices"),
            None,
        )
        .await;
    let device_of = |user: &str| {
        devices
            .as_array()
            .expect("devices")
            .iter()
            .find(|d| d["sip_username"] == user)
            .and_then(|d| d["id"].as_u64())
            .expect("device")
    };
    let (reception, anna_phone) = (device_of("reception"), device_of("anna"));
    for login in ["agent.anna", "agent.piotr"] {
        let agent = file["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .find(|a| a["login"] == login)
            .and_then(|a| a["user_id"].as_u64())
            .expect("agent");
        let path = format!("/api/v1/tenants/{t}/users/{agent}");
        let (_, mut spec) = api.call(Some(&admin), "GET", &path, None).await;
        let map = spec.as_object_mut().expect("user");
        for field in ["id", "has_password", "has_pin"] {
            map.remove(field);
        }
        map.insert("binding".into(), json!({"mode": "self_adapting"}));
        let (status, body) = api.call(Some(&admin), "PUT", &path, Some(spec)).await;
        assert_eq!(status, 200, "{login} becomes self-adapting: {body}");
    }
    let bound_to = |devices: &Value, device: u64| {
        devices
            .as_array()
            .expect("devices")
            .iter()
            .find(|d| d["id"] == device)
            .map(|d| d["bound_to"].clone())
            .expect("device")
    };
    let anna = file["agents"][0]["user_id"].as_u64().expect("anna");
    assert_eq!(file["agents"][0]["login"], "agent.anna");
    let (status, body) = api_from(&demo, "127.0.0.6")
        .call(
            Some(&admin),
            "POST",
            &format!("/api/v1/tenants/{t}/users/{anna}/session/login"),
            Some(json!({"terminal": "panel"})),
        )
        .await;
    assert_eq!(status, 200, "Anna logs in from 127.0.0.6: {body}");
    let mut devices = Value::Null;
    for _ in 0..50 {
        devices = api
            .call(
                Some(&admin),
                "GET",
                &format!("/api/v1/tenants/{t}/devices"),
                None,
            )
            .await
            .1;
        if bound_to(&devices, reception) == json!(anna) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        bound_to(&devices, reception),
        json!(anna),
        "the phone registered from the agent's address is her line: {devices}"
    );
    assert_eq!(
        bound_to(&devices, anna_phone),
        Value::Null,
        "her own phone, registered elsewhere, is not"
    );
    // Piotr logs in from an address no phone registered from: logged in,
    // bound to nothing.
    let piotr = file["agents"][1]["user_id"].as_u64().expect("piotr");
    let (status, body) = api_from(&demo, "127.0.0.7")
        .call(
            Some(&admin),
            "POST",
            &format!("/api/v1/tenants/{t}/users/{piotr}/session/login"),
            Some(json!({"terminal": "panel"})),
        )
        .await;
    assert_eq!(status, 200, "Piotr logs in from 127.0.0.7: {body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, devices) = api
        .call(
            Some(&admin),
            "GET",
            &format!("/api/v1/tenants/{t}/devices"),
            None,
        )
        .await;
    assert!(
        devices
            .as_array()
            .expect("devices")
            .iter()
            .all(|d| d["bound_to"] != json!(piotr)),
        "no line for Piotr: {devices}"
    );
    assert_eq!(demo.terminate(), Some(0));
}
