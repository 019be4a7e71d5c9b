//! baresip as an agent's phone (A3, A4): it registers to the demo, logs the
//! agent in by dialling the feature code `*100*PIN` (digest-authenticated,
//! answered with a prompt and a hang-up), is offered a call on the Support
//! queue's DID and answers it (auto-answer), receives the caller's audio (a
//! 1 kHz tone, found in the audio baresip decoded), hangs up; after the
//! queue's after-call work the agent is idle again and takes the next call;
//! each call's first agent INVITE is timed from its queue entry (metrics).

mod common;

use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use carillon_media::g711::G711Law;
use common::{free_port, password_of, Demo};
use serde_json::{json, Value};

use common::sipp::require;

struct Guarded(Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free for UDP and TCP (baresip listens on both), between the demos'
/// RTP ranges (10000-29999) and the kernel's ephemeral ports (32768 and up),
/// so that no other test's socket takes it before baresip binds it (seen:
/// `sock_bind: Address already in use` with an ephemeral one).
fn free_udp_tcp_port() -> u16 {
    let start = 30_000 + u16::try_from(std::process::id() % 2_000).expect("small");
    for offset in 0..2_000u16 {
        let port = 30_000 + (start - 30_000 + offset) % 2_000;
        let Ok(_u) = UdpSocket::bind(("127.0.0.1", port)) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port in 30000-31999 free for UDP and TCP");
}

/// A WAV file of `seconds` of silence (baresip's audio source).
fn silence_wav(path: &Path, seconds: u32) {
    let samples = 8_000 * seconds;
    let mut out = Vec::new();
    out.extend(b"RIFF");
    out.extend((36 + samples * 2).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend(16u32.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(8_000u32.to_le_bytes());
    out.extend(16_000u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(16u16.to_le_bytes());
    out.extend(b"data");
    out.extend((samples * 2).to_le_bytes());
    out.extend(std::iter::repeat_n(0u8, (samples * 2) as usize));
    std::fs::write(path, out).expect("silence wav");
}

/// The PCM samples of a 16-bit mono WAV file (the data chunk).
fn wav_samples(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let Some(at) = bytes.windows(4).position(|w| w == b"data") else {
        return Vec::new();
    };
    bytes[at + 8..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// The share of a signal's energy at `hz` (Goertzel), per 20 ms frame,
/// and the frames that carry sound.
fn tone_frames(samples: &[i16], hz: f64) -> (usize, usize) {
    let mut toned = 0;
    let mut loud = 0;
    for frame in samples.chunks_exact(160) {
        let energy: f64 = frame.iter().map(|s| f64::from(*s).powi(2)).sum();
        if energy < 160.0 * 300.0f64.powi(2) {
            continue;
        }
        loud += 1;
        let k = 2.0 * (2.0 * std::f64::consts::PI * hz / 8_000.0).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for x in frame {
            let s0 = f64::from(*x) + k * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - k * s1 * s2;
        // A pure tone puts power ≈ energy * N / 2 in its bin.
        if power > 0.5 * energy * 160.0 / 2.0 {
            toned += 1;
        }
    }
    (toned, loud)
}

/// A caller's RTP endpoint: once the relay has sent it a packet, it sends a
/// 1 kHz tone in PCMU every 20 ms to where that packet came from.
#[allow(clippy::disallowed_methods)] // a real-time RTP source paces by the wall clock
fn tone_caller(socket: UdpSocket, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let mut relay: Option<SocketAddr> = None;
        let mut buf = [0u8; 2048];
        let (mut seq, mut ts, mut phase) = (0u16, 0u32, 0f64);
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if let Ok((_, from)) = socket.recv_from(&mut buf) {
                relay.get_or_insert(from);
            }
            let Some(to) = relay else { continue };
            while Instant::now() >= next {
                let samples: Vec<i16> = (0..160)
                    .map(|_| {
                        phase += 2.0 * std::f64::consts::PI * 1_000.0 / 8_000.0;
                        (phase.sin() * 8_000.0) as i16
                    })
                    .collect();
                let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
                packet[2..4].copy_from_slice(&seq.to_be_bytes());
                packet[4..8].copy_from_slice(&ts.to_be_bytes());
                packet.extend(G711Law::MuLaw.encode(&samples));
                let _ = socket.send_to(&packet, to);
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(160);
                next += Duration::from_millis(20);
            }
        }
    })
}

fn sipp_caller(dir: &Path, sip: SocketAddr, rtp_port: u16, did: &str, name: &str) -> Guarded {
    let csv = dir.join(format!("{name}.csv"));
    std::fs::write(&csv, format!("SEQUENTIAL\n{rtp_port};{did}\n")).expect("csv");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/caller_hears_bye.xml");
    let child = Command::new(require("sipp", "sip-tester"))
        .arg(sip.to_string())
        .args(["-sf", &scenario.display().to_string()])
        .args(["-inf", &csv.display().to_string()])
        .args(["-m", "1", "-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-timeout", "60s", "-timeout_error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir(dir)
        .spawn()
        .expect("start sipp");
    Guarded(child)
}

async fn session(api: &common::Api, token: &str, tenant: u64, user: u64) -> Value {
    api.call(
        Some(token),
        "GET",
        &format!("/api/v1/tenants/{tenant}/users/{user}/session"),
        None,
    )
    .await
    .1
}

async fn wait_for<F: Fn(&Value) -> bool>(
    api: &common::Api,
    token: &str,
    tenant: u64,
    user: u64,
    what: &str,
    ok: F,
    log: &Path,
) -> Value {
    for _ in 0..150 {
        let s = session(api, token, tenant, user).await;
        if ok(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{what} within 15 s: {}\nnode log:\n{}\nbaresip log:\n{}",
        session(api, token, tenant, user).await,
        std::fs::read_to_string(log).unwrap_or_default(),
        std::fs::read_to_string(log.with_file_name("baresip").join("baresip.log"))
            .unwrap_or_default()
    );
}

/// Waits until baresip's dump of decoded audio has `seconds` of sound.
/// Every decoded-audio dump baresip wrote: one per call.
fn decoded(home: &Path) -> Vec<PathBuf> {
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(home)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                .collect()
        })
        .unwrap_or_default();
    dumps.sort();
    dumps
}

/// Waits until baresip's log shows the node ended the `times`-th call to
/// `code` (the feature call hangs up after its closing prompt).
async fn node_hangs_up(home: &Path, code: &str, times: usize) {
    let ended = format!("Call with sip:{code}@demo.carillon.test terminated");
    let log = || std::fs::read_to_string(home.join("baresip.log")).unwrap_or_default();
    for _ in 0..100 {
        if log().matches(&ended).count() >= times {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the node hung up the call to {code}:\n{}", log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_logs_in_by_feature_code_takes_a_call_and_is_idle_after_wrap_up() {
    let bin = require("baresip", "baresip");
    let dir = tempfile::tempdir().expect("temp dir");
    // baresip 1.0 answers only MD5 challenges (README, Decisions).
    let demo = Demo::start_with(
        dir.path(),
        free_port(),
        free_port(),
        &["--sip-option", "digest=\"md5-only\""],
    );
    let file = demo.demo_json();
    let api = demo.api();
    api.wait_ready().await;
    let token = api.login("admin", &password_of(&file, "admin")).await;
    let tenant = file["tenant_id"].as_u64().expect("tenant");
    let sip: SocketAddr = file["sip_addr"]
        .as_str()
        .expect("sip")
        .parse()
        .expect("addr");
    let agent = file["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["login"] == "agent.anna")
        .expect("anna")
        .clone();
    let user = agent["user_id"].as_u64().expect("user");
    let support = file["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "Support")
        .expect("Support")
        .clone();
    let (queue, did) = (
        support["id"].as_u64().expect("id"),
        support["dids"][0].as_str().expect("did").to_string(),
    );
    // Short after-call work, so that the test sees its end.
    let path = format!("/api/v1/tenants/{tenant}/queues/{queue}");
    let (_, mut spec) = api.call(Some(&token), "GET", &path, None).await;
    if let Some(m) = spec.as_object_mut() {
        m.remove("id");
        m.insert("wrap_up_s".into(), json!(2));
    }
    let (status, body) = api.call(Some(&token), "PUT", &path, Some(spec)).await;
    assert_eq!(status, 200, "{body}");
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
    std::fs::create_dir_all(&home).expect("home");
    silence_wav(&home.join("silence.wav"), 60);
    let port = free_udp_tcp_port();
    std::fs::write(
        home.join("config"),
        format!(
            "module_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\nmodule aufile.so\nmodule sndfile.so\nmodule ausine.so\nmodule_app account.so\nmodule_app menu.so\nsip_listen 127.0.0.1:{port}\naudio_source aufile,{}\naudio_player ausine,\naudio_alert ausine,\nsnd_path {}\n",
            home.join("silence.wav").display(),
            home.display()
        ),
    )
    .expect("config");
    std::fs::write(home.join("contacts"), "").expect("contacts");
    std::fs::write(
        home.join("accounts"),
        format!("<sip:anna@demo.carillon.test>;auth_pass={password};outbound=\"sip:{sip}\";regint=600;answermode=auto\n"),
    )
    .expect("accounts");
    let log = std::fs::File::create(home.join("baresip.log")).expect("log");
    let mut phone = Guarded(
        Command::new(&bin)
            .arg("-f")
            .arg(&home)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start baresip"),
    );
    let baresip_log = || std::fs::read_to_string(home.join("baresip.log")).unwrap_or_default();
    // Registered: anna's phone is online.
    let mut online = false;
    for _ in 0..100 {
        let (_, ext) = api
            .call(
                Some(&token),
                "GET",
                &format!("/api/v1/tenants/{tenant}/extensions"),
                None,
            )
            .await;
        if ext.as_array().is_some_and(|l| {
            l.iter()
                .any(|e| e["sip_username"] == "anna" && e["state"] == "online")
        }) {
            online = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(online, "baresip registered:\n{}", baresip_log());
    let mut stdin = phone.0.stdin.take().expect("stdin");
    // Log in by feature code with the PIN in the dialled string.
    let pin = agent["pin"].as_str().expect("pin");
    writeln!(stdin, "/dial sip:*100*{pin}@demo.carillon.test").expect("dial");
    stdin.flush().expect("flush");
    let s = wait_for(
        &api,
        &token,
        tenant,
        user,
        "logged in from the phone",
        |s| {
            s["terminals"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|t| t.as_str().is_some_and(|t| t.starts_with("phone-")))
            })
        },
        &demo.log,
    )
    .await;
    assert!(
        s["checked_in"]
            .as_array()
            .expect("checked in")
            .contains(&json!(queue)),
        "login queues: {s}"
    );
    // baresip hangs up nothing here: the node ends the feature call after its prompt.
    node_hangs_up(&home, &format!("*100*{pin}"), 1).await;

    for round in 0..2 {
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("rtp");
        let rtp_port = rtp.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let sender = tone_caller(rtp, stop.clone());
        let _caller = sipp_caller(dir.path(), sip, rtp_port, &did, &format!("call-{round}"));
        // Offered and answered: the agent's activity opens.
        wait_for(
            &api,
            &token,
            tenant,
            user,
            "connected to the caller",
            |s| s["activities"].as_array().is_some_and(|a| !a.is_empty()),
            &demo.log,
        )
        .await;
        // Three seconds of the caller's tone, then the agent hangs up.
        tokio::time::sleep(Duration::from_secs(3)).await;
        writeln!(stdin, "/hangup").expect("hangup");
        stdin.flush().expect("flush");
        // After-call work (2 s), then idle: no open activity.
        wait_for(
            &api,
            &token,
            tenant,
            user,
            "idle after after-call work",
            |s| s["activities"].as_array().is_some_and(|a| a.is_empty()),
            &demo.log,
        )
        .await;
        stop.store(true, Ordering::Relaxed);
        sender.join().expect("sender");
    }
    // Each queue call's first INVITE to the agent was timed from its queue
    // entry (the feature calls never enter a queue).
    let metrics = reqwest::get(format!("{}/metrics", demo.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let sample = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics:\n{metrics}"))
    };
    let count = sample("carillon_queue_offer_latency_seconds_count");
    let sum = sample("carillon_queue_offer_latency_seconds_sum");
    assert_eq!(count, 2.0, "two queue calls, two first agent INVITEs timed");
    assert!(
        sum > 0.0 && sum < 2.0,
        "two offers took {sum} s from queue entry to the agent's INVITE"
    );
    assert_eq!(
        sample("carillon_queue_offer_latency_seconds_bucket{le=\"+Inf\"}"),
        count,
        "every observation is in the +Inf bucket"
    );
    // Pause with the first pause type, unpause, log out: each by its code.
    writeln!(stdin, "/dial sip:*200*1@demo.carillon.test").expect("dial");
    stdin.flush().expect("flush");
    let s = wait_for(
        &api,
        &token,
        tenant,
        user,
        "paused",
        |s| !s["pause"].is_null(),
        &demo.log,
    )
    .await;
    node_hangs_up(&home, "*200*1", 1).await;
    let (_, types) = api
        .call(
            Some(&token),
            "GET",
            &format!("/api/v1/tenants/{tenant}/pause-types"),
            None,
        )
        .await;
    assert_eq!(
        s["pause"]["pause_type"], types[0]["id"],
        "reason code 1 is the first pause type: {s}"
    );
    writeln!(stdin, "/dial sip:*201@demo.carillon.test").expect("dial");
    stdin.flush().expect("flush");
    wait_for(
        &api,
        &token,
        tenant,
        user,
        "unpaused",
        |s| s["pause"].is_null(),
        &demo.log,
    )
    .await;
    node_hangs_up(&home, "*201", 1).await;
    writeln!(stdin, "/dial sip:404#@demo.carillon.test").expect("dial");
    stdin.flush().expect("flush");
    wait_for(
        &api,
        &token,
        tenant,
        user,
        "logged out",
        |s| {
            s.get("terminals").is_none_or(|t| {
                !t.as_array().is_some_and(|t| {
                    t.iter()
                        .any(|t| t.as_str().is_some_and(|t| t.starts_with("phone-")))
                })
            })
        },
        &demo.log,
    )
    .await;
    node_hangs_up(&home, "404#", 1).await;
    // One dump per call: the two queue calls carry the caller's tone, the
    // feature calls their prompts.
    let dumps = decoded(&home);
    let heard: Vec<(usize, usize)> = dumps
        .iter()
        .map(|d| tone_frames(&wav_samples(d), 1_000.0))
        .collect();
    assert!(
        heard.iter().filter(|(toned, _)| *toned >= 100).count() >= 2,
        "baresip heard the caller's 1 kHz tone in both queue calls: (tone frames, loud frames) per dump {heard:?} of {dumps:?}\n{}",
        baresip_log()
    );
    drop(stdin);
    assert_eq!(demo.terminate(), Some(0));
}
