//! The frame decoder on arbitrary bytes: `wire::decode` as a stream of
//! frames, `decode_body` on the bytes as one body, `announced_len` on both.
//! No panic; what decodes encodes again (`wire::encode`) and decodes to the
//! same message; a `Hello` of this version is the one encoding of its value.

#![no_main]

use boss::wire::{self, HEADER, MAGIC, MAX_BODY, MAX_FRAME, Msg, VERSION, WireError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As a stream: frame after frame until one is cut short or broken.
    let mut rest = data;
    loop {
        let announced = wire::announced_len(rest);
        assert_eq!(announced.is_some(), rest.len() >= HEADER);
        match wire::decode(rest) {
            Ok(None) => {
                assert!(announced.is_none_or(|n| n <= MAX_FRAME && rest.len() < HEADER + n));
                break;
            }
            Ok(Some((msg, used))) => {
                assert_eq!(Some(used - HEADER), announced);
                // A frame is not there before its last byte.
                assert_eq!(wire::decode(&rest[..used - 1]), Ok(None));
                assert_eq!(wire::decode_body(&rest[HEADER..used]), Ok(msg.clone()));
                body(&rest[HEADER..used], &msg);
                rest = &rest[used..];
            }
            Err(WireError::TooLong(n)) => {
                assert_eq!(Some(n), announced);
                assert!(n > MAX_FRAME);
                break;
            }
            Err(e) => {
                assert_eq!(e, WireError::Malformed, "decode says {e:?}");
                let n = announced.unwrap_or(0);
                assert!(rest.len() >= HEADER + n);
                assert!(wire::decode_body(&rest[HEADER..HEADER + n]).is_err());
                break;
            }
        }
    }
    // As one body.
    if let Ok(msg) = wire::decode_body(data) {
        body(data, &msg);
    }
});

/// `msg`, decoded from `bytes` (a frame's body), encodes again (if it fits)
/// and comes back the same.
fn body(bytes: &[u8], msg: &Msg) {
    if let Msg::Hello {
        magic,
        version,
        cluster,
        ..
    } = msg
        && *magic == MAGIC
        && *version == VERSION
    {
        assert!(wire::is_cluster_name(cluster));
        assert_eq!(
            wire::body(msg).as_deref(),
            Ok(bytes),
            "a Hello in another encoding"
        );
    }
    let mut buf = vec![7];
    match wire::encode(msg, &mut buf) {
        Ok(()) => {
            assert_eq!(wire::announced_len(&buf[1..]), Some(buf.len() - 1 - HEADER));
            assert_eq!(
                wire::decode(&buf[1..]),
                Ok(Some((msg.clone(), buf.len() - 1)))
            );
            assert_eq!(wire::body(msg).as_deref(), Ok(&buf[1 + HEADER..]));
        }
        Err(e) => {
            // Only a body between the sealed and the plain limit can decode
            // and not encode again.
            assert_eq!(e, WireError::Oversized);
            assert!(
                bytes.len() > MAX_BODY - 16,
                "{} bytes do not encode again",
                bytes.len()
            );
            assert_eq!(buf, [7], "a failed encode appended bytes");
        }
    }
}
