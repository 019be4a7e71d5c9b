//! Running `carillon demo` as a child process for the tests.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// The demo process; killed by pid if the test fails half-way.
pub struct Demo {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Demo {
    pub fn start(dir: &Path, admin: u16, raft: u16) -> Demo {
        let log = dir.join(format!("demo-{admin}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let printout =
            std::fs::File::create(dir.join(format!("demo-{admin}.out"))).expect("printout file");
        let child = Command::new(env!("CARGO_BIN_EXE_carillon"))
            .args(["demo", "--dir"])
            .arg(dir)
            .args([
                "--admin-addr",
                &format!("127.0.0.1:{admin}"),
                "--raft-addr",
                &format!("127.0.0.1:{raft}"),
            ])
            .args(["--sip-addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(printout)
            .stderr(file)
            .spawn()
            .expect("start carillon demo");
        Demo {
            child,
            url: format!("http://127.0.0.1:{admin}"),
            dir: dir.to_path_buf(),
            log,
        }
    }

    pub fn demo_json(&self) -> Value {
        for _ in 0..300 {
            if let Ok(bytes) = std::fs::read(self.dir.join("demo.json")) {
                if let Ok(value) = serde_json::from_slice(&bytes) {
                    return value;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no demo.json within 30 s; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn terminate(mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the demo did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The password of `login` in demo.json.
pub fn password_of(demo: &Value, login: &str) -> String {
    demo["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["login"] == login)
        .expect("user")["password"]
        .as_str()
        .expect("password")
        .to_string()
}
