use super::*;

fn lines(text: &[&str]) -> Vec<String> {
    text.iter().map(|line| (*line).to_owned()).collect()
}

#[test]
fn targets_parse_from_urls() {
    assert_eq!(
        "udp://127.0.0.1:8125".parse(),
        Ok(Target::Udp("127.0.0.1:8125".into()))
    );
    assert_eq!(
        "unix:///run/h.sock".parse(),
        Ok(Target::Unix("/run/h.sock".into()))
    );
    assert_eq!(
        "unixgram:///run/h.sock".parse(),
        Ok(Target::Unixgram("/run/h.sock".into()))
    );
    assert!(
        "127.0.0.1:8125"
            .parse::<Target>()
            .unwrap_err()
            .contains("no scheme")
    );
    assert!(
        "http://x:1"
            .parse::<Target>()
            .unwrap_err()
            .contains("unknown scheme")
    );
}

#[test]
fn lines_come_from_arguments_and_stdin_in_order() {
    let given = collect(
        &lines(&["a:1|c", "-", "job.ok x"]),
        &b"b:2|c\n\nhb w\r\n"[..],
    )
    .unwrap();
    assert_eq!(given, ["a:1|c", "b:2|c", "hb w", "job.ok x"]);
}

#[test]
fn an_invalid_line_names_its_number_and_reason() {
    let error = collect(&lines(&["a:1|c", "job.okk x"]), &b""[..]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 2 `job.okk x` is invalid (unknown_verb: unknown verb); nothing was sent"
    );
}

#[test]
fn only_blank_lines_is_an_error() {
    assert!(matches!(
        collect(&lines(&[" ", "-"]), &b"\n"[..]),
        Err(SendError::Empty)
    ));
}

#[test]
fn packing_keeps_payloads_under_the_limit() {
    let payloads = pack(&lines(&["aaaa", "bbbb", "cccc", &"x".repeat(20)]), 10);
    assert_eq!(
        payloads,
        [
            b"aaaa\nbbbb\n".to_vec(),
            b"cccc\n".to_vec(),
            format!("{}\n", "x".repeat(20)).into_bytes()
        ]
    );
}

#[test]
fn udp_to_a_closed_port_fails() {
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    assert!(send_udp(address, &[b"a:1|c\n".to_vec()]).is_err());
}

fn default_destination(dir: &Path, tcp: &str) -> Destination {
    Destination::Default {
        sockets: vec![dir.join("stream.sock"), dir.join("shared.sock")],
        tcp: Target::Tcp(tcp.to_owned()),
    }
}

fn read_all(mut stream: impl io::Read) -> String {
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn the_default_destination_is_the_default_socket_then_tcp() {
    let Destination::Default { sockets, tcp } = Destination::new(None) else {
        panic!("no target given, yet not the default");
    };
    assert_eq!(sockets[0], DefaultSocket::here().path);
    assert_eq!(
        sockets.last(),
        Some(&PathBuf::from("/run/heartwire/stream.sock"))
    );
    assert_eq!(tcp, Target::Tcp("127.0.0.1:8125".into()));
    let given = Target::Udp("127.0.0.1:9".into());
    assert_eq!(
        Destination::new(Some(given.clone())),
        Destination::Given(given)
    );
}

#[test]
fn the_default_socket_takes_the_lines_when_it_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::os::unix::net::UnixListener::bind(dir.path().join("stream.sock")).unwrap();
    // A TCP address nobody listens on: the socket must not need it.
    let destination = default_destination(dir.path(), "127.0.0.1:1");
    let used = deliver_to(&destination, &lines(&["a:1|c", "b:1|c"])).unwrap();
    assert_eq!(used, Target::Unix(dir.path().join("stream.sock")));
    let (connection, _) = listener.accept().unwrap();
    assert_eq!(read_all(connection), "a:1|c\nb:1|c\n");
}

#[test]
fn the_shared_socket_is_the_second_place_looked_at() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::os::unix::net::UnixListener::bind(dir.path().join("shared.sock")).unwrap();
    let destination = default_destination(dir.path(), "127.0.0.1:1");
    let used = deliver_to(&destination, &lines(&["a:1|c"])).unwrap();
    assert_eq!(used, Target::Unix(dir.path().join("shared.sock")));
    let (connection, _) = listener.accept().unwrap();
    assert_eq!(read_all(connection), "a:1|c\n");
}

#[test]
fn without_the_default_socket_the_lines_go_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let destination = default_destination(dir.path(), &address);
    let used = deliver_to(&destination, &lines(&["a:1|c"])).unwrap();
    assert_eq!(used, Target::Tcp(address));
    let (connection, _) = listener.accept().unwrap();
    assert_eq!(read_all(connection), "a:1|c\n");
}

#[test]
fn when_neither_listens_the_error_names_both_places() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap().to_string();
    drop(closed);
    let destination = default_destination(dir.path(), &address);
    let failed = deliver_to(&destination, &lines(&["a:1|c"])).unwrap_err();
    let socket = dir.path().join("stream.sock");
    assert!(
        failed
            .tried
            .starts_with(&format!("the socket {} (", socket.display())),
        "{}",
        failed.tried
    );
    assert!(failed.tried.contains("shared.sock ("), "{}", failed.tried);
    assert!(
        failed.tried.ends_with(&format!(") or to tcp://{address}")),
        "{}",
        failed.tried
    );
    assert_eq!(failed.source.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn udp_delivers_packed_lines() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    send_udp(
        receiver.local_addr().unwrap(),
        &pack(&lines(&["a:1|c", "b:1|c"]), UDP_PAYLOAD),
    )
    .unwrap();
    let mut buffer = [0u8; 64];
    let length = receiver.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..length], b"a:1|c\nb:1|c\n");
}
