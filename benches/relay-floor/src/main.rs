//! The cheapest relay this machine allows, to measure how much of a forwarded packet's
//! CPU is the kernel's (a diagnostic for benches/MEDIA_RESULTS.md, not Carillon's relay).
//!
//! `relay-floor gen CALLS SECONDS`: two sockets (127.0.0.83:7000 side A, 127.0.0.84:7000
//! side B) send 172-byte datagrams at 50/s per leg, spread evenly, to the relay's ports
//! (127.0.0.82, from 50000: call i has legs on 50000+4i and 50000+4i+2), and poll for what
//! comes back; prints sent, received, lost.
//!
//! `relay-floor epoll CALLS [NAP_US]`: binds the ports and forwards whatever arrives on one
//! leg out of the other leg's port to the other side: level-triggered epoll, `recvfrom`
//! until `EAGAIN`, `sendto`; optionally a nap after a wake-up that found fewer than 64
//! ready ports (what Carillon's engine does). No session logic at all.
//!
//! `relay-floor uring CALLS WANT WAIT_US`: the same with io_uring: one multishot `recvmsg`
//! per port into a ring of provided buffers, sends queued as submissions, one
//! `io_uring_enter` per wake-up that waits for WANT completions or WAIT_US.
//!
//! Each relay prints, every 2 s, packets/s, CPU microseconds (user + system, getrusage) per
//! forwarded packet and the share of a core used. `run.sh` pins the relay to core 0 and the
//! generator to core 1.

use io_uring::{cqueue, opcode, types, IoUring};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

const RELAY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 82);
const A_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 83);
const B_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 84);
const SIDE_PORT: u16 = 7000;
const BASE_PORT: u16 = 50000;
const PACKET_LEN: usize = 12 + 160;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number = |i: usize| -> u64 {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("argument {i} must be a number: see the file's comment"))
    };
    let calls = usize::try_from(number(2)).expect("calls");
    assert!(calls <= 3000, "ports from 50000 hold at most 3000 calls");
    match args.get(1).map(String::as_str) {
        Some("gen") => generate(calls, number(3)),
        Some("epoll") => relay_epoll(calls, args.get(3).map_or(0, |_| number(3))),
        Some("uring") => relay_uring(calls, usize::try_from(number(3)).expect("want"), number(4)),
        _ => panic!("mode must be gen, epoll or uring: see the file's comment"),
    }
}

fn cpu_us() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) as f64;
    seconds * 1e6 + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) as f64
}

fn generate(calls: usize, seconds: u64) {
    let side_a = UdpSocket::bind((A_IP, SIDE_PORT)).expect("bind side A");
    let side_b = UdpSocket::bind((B_IP, SIDE_PORT)).expect("bind side B");
    side_a.set_nonblocking(true).expect("nonblocking");
    side_b.set_nonblocking(true).expect("nonblocking");
    let flows = calls * 2;
    let interval_ns = 20_000_000u128 / flows as u128;
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let (mut sent, mut received) = (0u64, 0u64);
    let mut buffer = [0u8; 2048];
    let payload = [0u8; PACKET_LEN];
    while Instant::now() < end {
        let due = start.elapsed().as_nanos() / interval_ns;
        while u128::from(sent) < due {
            let flow = (sent as usize) % flows;
            let port = BASE_PORT + 4 * (flow / 2) as u16;
            let (socket, port) = if flow % 2 == 0 { (&side_a, port) } else { (&side_b, port + 2) };
            let _ = socket.send_to(&payload, (RELAY_IP, port));
            sent += 1;
        }
        let mut any = false;
        for socket in [&side_a, &side_b] {
            while socket.recv_from(&mut buffer).is_ok() {
                received += 1;
                any = true;
            }
        }
        if !any {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    for socket in [&side_a, &side_b] {
        while socket.recv_from(&mut buffer).is_ok() {
            received += 1;
        }
    }
    println!("gen sent {sent} received {received} lost {}", sent - received);
}

/// The relay's ports: socket 2c is call c's leg A, 2c+1 its leg B.
fn bind_ports(calls: usize) -> Vec<UdpSocket> {
    (0..calls * 2)
        .map(|i| {
            let socket = UdpSocket::bind((RELAY_IP, BASE_PORT + 2 * i as u16)).expect("bind");
            socket.set_nonblocking(true).expect("nonblocking");
            socket
        })
        .collect()
}

/// Where a datagram that arrived on socket `i` goes (it leaves from socket `i ^ 1`).
fn destination(i: usize) -> SocketAddrV4 {
    if i % 2 == 0 {
        SocketAddrV4::new(B_IP, SIDE_PORT)
    } else {
        SocketAddrV4::new(A_IP, SIDE_PORT)
    }
}

struct Meter {
    cpu_us: f64,
    since: Instant,
    packets: u64,
}

impl Meter {
    fn new() -> Meter {
        Meter { cpu_us: cpu_us(), since: Instant::now(), packets: 0 }
    }

    fn tick(&mut self) {
        let elapsed = self.since.elapsed();
        if elapsed < Duration::from_secs(2) {
            return;
        }
        let cpu = cpu_us();
        if self.packets > 0 {
            println!(
                "{:.0} pkt/s, {:.2} us/pkt, cpu {:.0} %",
                self.packets as f64 / elapsed.as_secs_f64(),
                (cpu - self.cpu_us) / self.packets as f64,
                (cpu - self.cpu_us) / elapsed.as_micros() as f64 * 100.0
            );
        }
        *self = Meter::new();
    }
}

fn relay_epoll(calls: usize, nap_us: u64) {
    let sockets = bind_ports(calls);
    // SAFETY: plain epoll system calls on descriptors this function owns.
    let epoll = unsafe { libc::epoll_create1(0) };
    assert!(epoll >= 0, "epoll_create1");
    for (i, socket) in sockets.iter().enumerate() {
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: i as u64 };
        let added =
            unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, socket.as_raw_fd(), &mut event) };
        assert_eq!(added, 0, "epoll_ctl");
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buffer = [0u8; 2048];
    let mut meter = Meter::new();
    loop {
        let ready = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), 256, 100) };
        for event in &events[..ready.max(0) as usize] {
            let i = event.u64 as usize;
            while let Ok((len, _)) = sockets[i].recv_from(&mut buffer) {
                let _ = sockets[i ^ 1].send_to(&buffer[..len], SocketAddr::V4(destination(i)));
                meter.packets += 1;
            }
        }
        meter.tick();
        if nap_us > 0 && ready < 64 {
            std::thread::sleep(Duration::from_micros(nap_us));
        }
    }
}

fn sockaddr(address: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: address.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*address.ip()).to_be() },
        sin_zero: [0; 8],
    }
}

const SEND_TAG: u64 = 1 << 63;

fn relay_uring(calls: usize, want: usize, wait_us: u64) {
    const BUFFERS: u16 = 4096;
    const BUFFER_LEN: usize = 2048;
    const GROUP: u16 = 1;
    const SEND_SLOTS: usize = 4096;
    let sockets = bind_ports(calls);
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(16384)
        .build(4096)
        .expect("io_uring");
    // The provided-buffer ring: entries in a page-aligned mapping, buffers in one slab.
    // SAFETY: an anonymous mapping owned for the life of the process.
    let entries = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            usize::from(BUFFERS) * std::mem::size_of::<types::BufRingEntry>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_ANONYMOUS | libc::MAP_PRIVATE,
            -1,
            0,
        )
    } as *mut types::BufRingEntry;
    assert!(!entries.is_null() && entries as isize != -1, "mmap");
    let mut slab = vec![0u8; usize::from(BUFFERS) * BUFFER_LEN];
    unsafe { ring.submitter().register_buf_ring_with_flags(entries as u64, BUFFERS, GROUP, 0) }
        .expect("register_buf_ring");
    let tail_pointer = unsafe { types::BufRingEntry::tail(entries) } as *const AtomicU16;
    let mut tail: u16 = 0;
    let give = |tail: &mut u16, id: u16, slab: &mut Vec<u8>| {
        // SAFETY: the index is masked into the mapping; the slab outlives the ring.
        let entry = unsafe { &mut *entries.add(usize::from(*tail & (BUFFERS - 1))) };
        entry.set_addr(slab.as_mut_ptr() as u64 + u64::from(id) * BUFFER_LEN as u64);
        entry.set_len(BUFFER_LEN as u32);
        entry.set_bid(id);
        *tail = tail.wrapping_add(1);
    };
    for id in 0..BUFFERS {
        give(&mut tail, id, &mut slab);
    }
    unsafe { (*tail_pointer).store(tail, Ordering::Release) };
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
    let arm = |ring: &mut IoUring, i: usize| {
        let entry = opcode::RecvMsgMulti::new(types::Fd(sockets[i].as_raw_fd()), &header, GROUP)
            .build()
            .user_data(i as u64);
        unsafe { ring.submission().push(&entry) }.expect("submission queue");
    };
    for i in 0..sockets.len() {
        arm(&mut ring, i);
        if ring.submission().is_full() {
            ring.submit().expect("submit");
        }
    }
    ring.submit().expect("submit");
    let destinations = [sockaddr(destination(0)), sockaddr(destination(1))];
    let mut send_buffers = vec![[0u8; 256]; SEND_SLOTS];
    let mut free_slots: Vec<usize> = (0..SEND_SLOTS).collect();
    let mut meter = Meter::new();
    let timeout = types::Timespec::new().nsec(u32::try_from(wait_us * 1000).expect("wait"));
    let arguments = types::SubmitArgs::new().timespec(&timeout);
    loop {
        match ring.submitter().submit_with_args(want, &arguments) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => {}
            Err(e) => panic!("io_uring_enter: {e}"),
        }
        let completions: Vec<cqueue::Entry> = ring.completion().collect();
        let mut to_arm = Vec::new();
        let mut returned = false;
        for completion in completions {
            let data = completion.user_data();
            if data & SEND_TAG != 0 {
                free_slots.push((data & !SEND_TAG) as usize);
                continue;
            }
            let i = data as usize;
            if !cqueue::more(completion.flags()) {
                to_arm.push(i);
            }
            if completion.result() < 0 {
                continue;
            }
            let id = cqueue::buffer_select(completion.flags()).expect("a provided buffer");
            let received = &slab[usize::from(id) * BUFFER_LEN..][..completion.result() as usize];
            let message = types::RecvMsgOut::parse(received, &header).expect("recvmsg layout");
            let payload = message.payload_data();
            let slot = free_slots.pop().expect("a free send slot");
            send_buffers[slot][..payload.len()].copy_from_slice(payload);
            let send = opcode::Send::new(
                types::Fd(sockets[i ^ 1].as_raw_fd()),
                send_buffers[slot].as_ptr(),
                payload.len() as u32,
            )
            .dest_addr(&destinations[i % 2] as *const libc::sockaddr_in as *const libc::sockaddr)
            .dest_addr_len(std::mem::size_of::<libc::sockaddr_in>() as u32)
            .build()
            .user_data(SEND_TAG | slot as u64);
            unsafe { ring.submission().push(&send) }.expect("submission queue");
            give(&mut tail, id, &mut slab);
            returned = true;
            meter.packets += 1;
        }
        if returned {
            unsafe { (*tail_pointer).store(tail, Ordering::Release) };
        }
        for i in to_arm {
            arm(&mut ring, i);
        }
        meter.tick();
    }
}
