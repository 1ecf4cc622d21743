//! Batched datagram receive: one `recvmmsg` call reads up to N datagrams, each with the kernel's
//! drop counter for the socket (`SO_RXQ_OVFL`).
//!
//! Written against `libc` rather than `nix::sys::socket::recvmmsg`: nix leaves each header's
//! `msg_controllen` as the kernel set it on the previous call, so once a datagram arrives without
//! a drop counter (every datagram before the first drop) the slot's control buffer reads as empty
//! and later drop counts are lost. Here every header is reset before each call.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Room for one `SO_RXQ_OVFL` message (a `u32`) and a spare, in `u64` words for `cmsghdr`
/// alignment.
const CONTROL_WORDS: usize = 8;

/// Reusable buffers for `recvmmsg`: `count` datagrams of at most `size` bytes each.
///
/// Holds raw pointers into its own heap buffers, so it is built and used on one thread.
pub(crate) struct BatchReceiver {
    size: usize,
    data: Vec<u8>,
    control: Vec<u64>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

/// One datagram of a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Datagram<'a> {
    /// The bytes read.
    pub data: &'a [u8],
    /// The datagram was longer than the buffer; `data` is its beginning.
    pub truncated: bool,
    /// The socket's drop counter when this datagram was queued, if the kernel sent it (it sends
    /// it once the counter is non-zero).
    pub drops: Option<u32>,
}

impl BatchReceiver {
    /// Buffers for `count` datagrams of up to `size` bytes. The memory is reserved, not touched:
    /// pages are only faulted in as datagrams land in them.
    pub(crate) fn new(count: usize, size: usize) -> BatchReceiver {
        let count = count.max(1);
        let size = size.max(1);
        let mut data = vec![0u8; count * size];
        let mut control = vec![0u64; count * CONTROL_WORDS];
        let iovecs: Vec<libc::iovec> = data
            .chunks_exact_mut(size)
            .map(|chunk| libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: size,
            })
            .collect();
        let headers = (0..count)
            .map(|_| {
                // SAFETY: `mmsghdr` is a plain C struct for which all-zero bytes is a valid value
                // (null pointers, zero lengths); `receive` fills in every field it uses.
                unsafe { std::mem::zeroed::<libc::mmsghdr>() }
            })
            .collect();
        // The heap buffers never move after this point: the pointers above stay valid.
        control.shrink_to_fit();
        data.shrink_to_fit();
        BatchReceiver {
            size,
            data,
            control,
            iovecs,
            headers,
        }
    }

    /// Blocks until at least one datagram arrives (or the socket's receive timeout passes, as
    /// `WouldBlock`), then reads every datagram already queued, up to the batch size.
    pub(crate) fn receive(&mut self, socket: BorrowedFd<'_>) -> io::Result<usize> {
        let control_bytes = CONTROL_WORDS * std::mem::size_of::<u64>();
        for (index, header) in self.headers.iter_mut().enumerate() {
            let message = &mut header.msg_hdr;
            message.msg_name = std::ptr::null_mut();
            message.msg_namelen = 0;
            message.msg_iov = &mut self.iovecs[index];
            message.msg_iovlen = 1;
            message.msg_control = self.control[index * CONTROL_WORDS..].as_mut_ptr().cast();
            message.msg_controllen = control_bytes as _;
            message.msg_flags = 0;
            header.msg_len = 0;
        }
        // SAFETY: every header points at this struct's own buffers (one iovec of `size` bytes,
        // `control_bytes` of control space), which outlive the call and are not aliased while
        // the kernel writes them; `vlen` is the number of headers.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(received as usize)
    }

    /// The `index`-th datagram of the last [`receive`](Self::receive); `index` must be below
    /// what it returned.
    pub(crate) fn datagram(&self, index: usize) -> Datagram<'_> {
        let header = &self.headers[index];
        let length = (header.msg_len as usize).min(self.size);
        let start = index * self.size;
        Datagram {
            data: &self.data[start..start + length],
            truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            drops: drop_counter(&header.msg_hdr),
        }
    }
}

/// The `SO_RXQ_OVFL` value among a received message's control messages.
fn drop_counter(message: &libc::msghdr) -> Option<u32> {
    if message.msg_flags & libc::MSG_CTRUNC != 0 {
        return None;
    }
    // SAFETY: `message` was filled by recvmmsg: `msg_control` points at our control buffer and
    // `msg_controllen` is the length the kernel wrote, so the CMSG_* walk stays inside it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(message);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL {
                return Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(cmsg).cast::<u32>(),
                ));
            }
            cmsg = libc::CMSG_NXTHDR(message, cmsg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn reads_every_queued_datagram_in_one_call() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for text in ["one", "two", "three"] {
            sender
                .send_to(text.as_bytes(), receiver.local_addr().unwrap())
                .unwrap();
        }
        let mut batch = BatchReceiver::new(8, 64);
        let count = batch.receive(receiver.as_fd()).unwrap();
        assert_eq!(count, 3);
        let texts: Vec<_> = (0..count)
            .map(|i| batch.datagram(i).data.to_vec())
            .collect();
        assert_eq!(texts, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
        assert!((0..count).all(|i| !batch.datagram(i).truncated));
    }

    #[test]
    fn reports_the_kernel_drop_counter_even_after_receives_without_one() {
        use nix::sys::socket::{setsockopt, sockopt};
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        setsockopt(&receiver, sockopt::RcvBuf, &1).unwrap();
        setsockopt(&receiver, sockopt::RxqOvfl, &1).unwrap();
        receiver.set_nonblocking(true).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let mut batch = BatchReceiver::new(4, 2048);

        // No drop yet: the kernel attaches no counter, and shrinks the slot's control length.
        sender.send_to(b"before", to).unwrap();
        assert_eq!(batch.receive(receiver.as_fd()).unwrap(), 1);
        assert_eq!(batch.datagram(0).drops, None);

        for _ in 0..200 {
            sender.send_to(&[b'x'; 1000], to).unwrap();
        }
        while batch.receive(receiver.as_fd()).is_ok() {}
        sender.send_to(b"after", to).unwrap();
        assert_eq!(batch.receive(receiver.as_fd()).unwrap(), 1);
        let after = batch.datagram(0);
        assert_eq!(after.data, b"after");
        assert!(
            after.drops.is_some_and(|drops| drops > 0),
            "{:?}",
            after.drops
        );
    }

    #[test]
    fn marks_datagrams_longer_than_the_buffer_as_truncated() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender
            .send_to(&[b'x'; 100], receiver.local_addr().unwrap())
            .unwrap();
        let mut batch = BatchReceiver::new(2, 16);
        assert_eq!(batch.receive(receiver.as_fd()).unwrap(), 1);
        let datagram = batch.datagram(0);
        assert_eq!(datagram.data, &[b'x'; 16]);
        assert!(datagram.truncated);
    }
}
