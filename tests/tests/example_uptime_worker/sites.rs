//! Local sites for the workers to check: HTTP servers that answer 200, slowly, 500 now and
//! then or always, or never, and a port where nothing listens.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use super::{SLOW, WORK_DEADLINE};

/// How a local test site answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    Ok,
    Slow,
    /// 500 for every fourth request, 200 otherwise.
    Flaky,
    Error,
    /// Reads the request and never answers.
    Hang,
    /// Nothing listens on its port.
    Refused,
}

/// Starts a local site on a free port behaving as `behaviour`; its URL. The server threads run
/// until the test process ends.
pub fn serve(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a site's listener");
    let address = listener.local_addr().expect("its address");
    if let Behaviour::Refused = behaviour {
        drop(listener);
        return format!("http://{address}/");
    }
    let requests = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let request = requests.fetch_add(1, Ordering::SeqCst) + 1;
            thread::spawn(move || answer(stream, behaviour, request));
        }
    });
    format!("http://{address}/health")
}

/// Reads one request and answers it (the `request`th of this site) as `behaviour` says.
fn answer(mut stream: TcpStream, behaviour: Behaviour, request: usize) {
    let _ = stream.set_read_timeout(Some(WORK_DEADLINE));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let status = match behaviour {
        Behaviour::Ok => 200,
        Behaviour::Slow => {
            thread::sleep(SLOW);
            200
        }
        Behaviour::Flaky if request.is_multiple_of(4) => 500,
        Behaviour::Flaky => 200,
        Behaviour::Error => 500,
        Behaviour::Hang | Behaviour::Refused => {
            // Held open, unanswered, until the checker gives up and closes it.
            let _ = stream.read_to_end(&mut Vec::new());
            return;
        }
    };
    let reason = if status == 200 {
        "OK"
    } else {
        "Internal Server Error"
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
}
