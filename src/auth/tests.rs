//! The cryptography of authenticated clusters against known answers, and every
//! way a peer without the secret could try to get a proof or a frame accepted.

use super::*;
use std::time::Instant;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const HELLO_D: &[u8] = b"hello from the dialler";
const HELLO_A: &[u8] = b"hello from the acceptor";

fn secret() -> Secret {
    Secret::from_bytes(SECRET).unwrap()
}

/// Both ends of one connection: (dialler, acceptor).
fn pair(secret: &Secret, cluster: &str, hello_d: &[u8], hello_a: &[u8]) -> (Keys, Keys) {
    (
        Keys::derive(secret, cluster, hello_d, hello_a, Role::Dialler),
        Keys::derive(secret, cluster, hello_d, hello_a, Role::Acceptor),
    )
}

fn default_pair() -> (Keys, Keys) {
    pair(&secret(), "boss", HELLO_D, HELLO_A)
}

/// Every value of `bytes` with exactly one bit flipped.
fn bit_flips(bytes: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    (0..bytes.len() * 8).map(move |bit| {
        let mut flipped = bytes.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        flipped
    })
}

// ---- known answers from the standards, through the same calls the protocol makes

#[test]
fn hkdf_matches_rfc5869_test_case_1() {
    let ikm = [0x0b; 22];
    let salt = unhex("000102030405060708090a0b0c");
    let info = unhex("f0f1f2f3f4f5f6f7f8f9");
    let mut okm = [0u8; 42];
    // The info in two pieces, as the key schedule passes it (label, then hash).
    hkdf(&salt, &ikm, &[&info[..3], &info[3..]], &mut okm);
    assert_eq!(
        hex(&okm),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
}

#[test]
fn hmac_matches_rfc4231_test_case_2() {
    assert_eq!(
        hex(&hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"])),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn aead_matches_rfc8439_section_2_8_2() {
    let key: [u8; 32] = std::array::from_fn(|i| 0x80 + i as u8);
    let aead = ChaCha20Poly1305::new(&key.into());
    let nonce: [u8; 12] = unhex("070000004041424344454647").try_into().unwrap();
    let aad = unhex("50515253c0c1c2c3c4c5c6c7");
    let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let sealed = aead_seal(&aead, &nonce, &aad, plaintext).unwrap();
    assert_eq!(
        hex(&sealed),
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6\
         3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36\
         92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc\
         3ff4def08e4b7a9de576d26586cec64b6116\
         1ae10b594f09e26a7e902ecbd0600691"
    );
    assert_eq!(sealed.len(), plaintext.len() + TAG);
}

// ---- fixed vectors of this protocol

/// Frozen: computed once with this implementation, and checked once against a
/// second, independent implementation of the same steps (Python's `hashlib`,
/// `hmac` and the `cryptography` package's HKDF and ChaCha20-Poly1305). A change
/// here is a change of the wire protocol.
#[test]
fn handshake_fixed_vectors() {
    let (d, a) = default_pair();
    let th = "bcfbfe523200597ae1c8a8b598488cd70d1bb6adb98b61bbdb599364e3f973da";
    assert_eq!(hex(&d.transcript_hash()), th);
    assert_eq!(hex(&a.transcript_hash()), th);
    assert_eq!(
        hex(&d.proof()),
        "c9c436af56e7067ff907be04c2499d9721b639925c99615c32b77b0394c7580f"
    );
    assert_eq!(
        hex(&a.proof()),
        "e549e115127081841472a50ebfff715ece4504a82d51049998a4f5951867fcf4"
    );
    let mut ds = d.sealer();
    assert_eq!(
        hex(&ds.seal(b"a frame").unwrap()),
        "fa3daff1ea307d6a0b9f8825c2005c64c601e13ae6c050"
    );
    assert_eq!(
        hex(&ds.seal(b"a frame").unwrap()),
        "f6d24b80f61b156d8602d6d7cb138c1a2d6091dd7c72b2"
    );
    assert_eq!(
        hex(&a.sealer().seal(b"a frame").unwrap()),
        "a79abb25bb7cd2f6bdb4665e5a5d7f3eae5fd39e141736"
    );
}

/// Frozen like [`handshake_fixed_vectors`].
#[test]
fn nonce_fixed_vectors() {
    let mut nonces = NonceSource::new([7; 32]);
    assert_eq!(
        hex(&nonces.next_nonce()),
        "409dd6fa1ce4595550ee5c2033c0fa790874dbb17fa8924056dbcda49f0a6ed2"
    );
    assert_eq!(
        hex(&nonces.next_nonce()),
        "2332a2ddb6bd83d59e1945527d0d4b0f09cc73e751b995e32d85879cfa415406"
    );
}

#[test]
fn nonces_do_not_repeat_and_depend_on_the_seed() {
    let mut seen = std::collections::HashSet::new();
    for seed in [[0; 32], [1; 32]] {
        let mut nonces = NonceSource::new(seed);
        for _ in 0..1000 {
            assert!(seen.insert(nonces.next_nonce()));
        }
    }
    // The same seed gives the same sequence (the simulator relies on it).
    let (mut x, mut y) = (NonceSource::new([9; 32]), NonceSource::new([9; 32]));
    for _ in 0..10 {
        assert_eq!(x.next_nonce(), y.next_nonce());
    }
}

// ---- the secret

#[test]
fn secret_lengths() {
    assert_eq!(
        Secret::from_bytes(&[b'x'; 15]).unwrap_err(),
        SecretError::TooShort(15)
    );
    assert_eq!(Secret::from_bytes(&[b'x'; 16]).unwrap().0.len(), 16);
    assert_eq!(
        Secret::from_bytes(b"").unwrap_err(),
        SecretError::TooShort(0)
    );
    assert_eq!(
        Secret::from_bytes(b"\n").unwrap_err(),
        SecretError::TooShort(0)
    );
    assert_eq!(
        Secret::from_bytes(&[b'x'; MAX_SECRET]).unwrap().0.len(),
        MAX_SECRET
    );
    assert_eq!(
        Secret::from_bytes(&[b'x'; MAX_SECRET + 1]).unwrap_err(),
        SecretError::TooLong(MAX_SECRET + 1)
    );
    // The newline does not count towards the length.
    assert_eq!(
        Secret::from_bytes(b"fifteen bytes!!\n").unwrap_err(),
        SecretError::TooShort(15)
    );
}

#[test]
fn secret_strips_one_newline_only() {
    let bytes = |b: &[u8]| Secret::from_bytes(b).unwrap().0.to_vec();
    assert_eq!(bytes(b"0123456789abcdef\n"), b"0123456789abcdef");
    assert_eq!(bytes(b"0123456789abcdef\r\n"), b"0123456789abcdef");
    assert_eq!(bytes(b"0123456789abcdef\n\n"), b"0123456789abcdef\n");
    assert_eq!(bytes(b"0123456789abcdef\r"), b"0123456789abcdef\r");
    assert_eq!(bytes(b"0123456789abcdef "), b"0123456789abcdef ");
    assert_eq!(bytes(b"\n0123456789abcdef"), b"\n0123456789abcdef");
    // A file with and without its newline is the same secret.
    let with = pair(
        &Secret::from_bytes(b"0123456789abcdef\n").unwrap(),
        "c",
        b"",
        b"",
    );
    let without = pair(
        &Secret::from_bytes(b"0123456789abcdef").unwrap(),
        "c",
        b"",
        b"",
    );
    assert!(without.1.check_proof(&with.0.proof()));
}

#[test]
fn secret_error_lines() {
    assert_eq!(
        SecretError::TooShort(3).to_string(),
        "secret too short: 3 bytes, at least 16"
    );
    assert_eq!(
        SecretError::TooLong(5000).to_string(),
        "secret too long: 5000 bytes, at most 4096"
    );
}

#[test]
fn debug_never_shows_key_material() {
    let secret = Secret::from_bytes(b"SUPERSECRETVALUE").unwrap();
    let (d, _) = pair(&secret, "boss", HELLO_D, HELLO_A);
    let shown = format!(
        "{secret:?} {d:?} {:?} {:?} {:?}",
        d.sealer(),
        d.opener(),
        NonceSource::new([0x5a; 32])
    );
    assert!(!shown.contains("SUPER"), "{shown}");
    assert!(
        !shown.contains(&format!("{:?}", &d.send_frame[..4])),
        "{shown}"
    );
}

// ---- keys and proofs

#[test]
fn both_ends_derive_matching_keys() {
    let (d, a) = default_pair();
    assert_eq!(*d.send_proof, *a.recv_proof);
    assert_eq!(*d.recv_proof, *a.send_proof);
    assert_eq!(*d.send_frame, *a.recv_frame);
    assert_eq!(*d.recv_frame, *a.send_frame);
    // Four different keys.
    let keys = [*d.send_proof, *d.recv_proof, *d.send_frame, *d.recv_frame];
    for i in 0..4 {
        for j in i + 1..4 {
            assert_ne!(keys[i], keys[j]);
        }
    }
    assert!(a.check_proof(&d.proof()));
    assert!(d.check_proof(&a.proof()));
}

#[test]
fn a_reflected_proof_fails() {
    let (d, a) = default_pair();
    assert!(!d.check_proof(&d.proof()));
    assert!(!a.check_proof(&a.proof()));
    assert_ne!(d.proof(), a.proof());
}

#[test]
fn every_bit_flip_of_a_proof_fails() {
    let (d, a) = default_pair();
    let proof = d.proof();
    let mut flips = 0;
    for flipped in bit_flips(&proof) {
        assert!(!a.check_proof(&flipped));
        flips += 1;
    }
    assert_eq!(flips, 256);
    assert!(!a.check_proof(&proof[..31]));
    assert!(!a.check_proof(&[&proof[..], &[0]].concat()));
    assert!(!a.check_proof(&[]));
    assert!(!a.check_proof(&[0; 32]));
    assert!(a.check_proof(&proof));
}

#[test]
fn proofs_fail_across_secrets_clusters_and_transcripts() {
    let (d, _) = default_pair();
    let proof = d.proof();
    let other_secret = Secret::from_bytes(b"0123456789abcdef0123456789abcdeF").unwrap();
    let acceptors = [
        pair(&other_secret, "boss", HELLO_D, HELLO_A).1,
        pair(&secret(), "bosS", HELLO_D, HELLO_A).1,
        pair(&secret(), "boss2", HELLO_D, HELLO_A).1,
        pair(&secret(), "", HELLO_D, HELLO_A).1,
        pair(&secret(), "boss", b"hello from the dialleR", HELLO_A).1,
        pair(&secret(), "boss", HELLO_D, b"hello from the acceptoR").1,
        // The Hellos swapped: who dialled is part of the transcript.
        pair(&secret(), "boss", HELLO_A, HELLO_D).1,
    ];
    for acceptor in &acceptors {
        assert!(!acceptor.check_proof(&proof));
    }
    // The secret is not in the transcript; everything else is.
    for acceptor in &acceptors[1..] {
        assert_ne!(acceptor.transcript_hash(), d.transcript_hash());
    }
}

#[test]
fn length_prefixes_keep_boundaries_apart() {
    // The same concatenated bytes, split differently, are different transcripts.
    let s = secret();
    let a = pair(&s, "bo", b"ssX", b"Y").0;
    let b = pair(&s, "boss", b"X", b"Y").0;
    let c = pair(&s, "boss", b"", b"XY").0;
    assert_ne!(a.transcript_hash(), b.transcript_hash());
    assert_ne!(b.transcript_hash(), c.transcript_hash());
    assert_ne!(a.proof(), b.proof());
}

// ---- frames

#[test]
fn frames_round_trip_in_both_directions() {
    let (d, a) = default_pair();
    let (mut d_seal, mut a_open) = (d.sealer(), a.opener());
    let (mut a_seal, mut d_open) = (a.sealer(), d.opener());
    for n in 0..50u8 {
        let plaintext = vec![n; usize::from(n) * 7];
        let sealed = d_seal.seal(&plaintext).unwrap();
        assert_eq!(sealed.len(), plaintext.len() + TAG);
        if !plaintext.is_empty() {
            assert_ne!(&sealed[..plaintext.len()], &plaintext[..], "not encrypted");
        }
        assert_eq!(a_open.open(&sealed).unwrap(), plaintext);
        let reply = a_seal.seal(&plaintext).unwrap();
        assert_ne!(reply, sealed, "directions share a keystream");
        assert_eq!(d_open.open(&reply).unwrap(), plaintext);
    }
}

#[test]
fn every_bit_flip_of_a_frame_fails() {
    let (d, a) = default_pair();
    let sealed = d.sealer().seal(&[0x42; 100]).unwrap();
    let mut opener = a.opener();
    let mut flips = 0;
    for flipped in bit_flips(&sealed) {
        assert_eq!(opener.open(&flipped), Err(AuthError::Forged));
        flips += 1;
    }
    assert_eq!(flips, (100 + TAG) * 8);
    // Cut short, grown, or nothing at all.
    for len in 0..sealed.len() {
        assert_eq!(opener.open(&sealed[..len]), Err(AuthError::Forged));
    }
    assert_eq!(
        opener.open(&[&sealed[..], &[0]].concat()),
        Err(AuthError::Forged)
    );
    // None of that moved the counter: the real frame still opens.
    assert_eq!(opener.open(&sealed).unwrap(), vec![0x42; 100]);
}

#[test]
fn a_replayed_frame_fails() {
    let (d, a) = default_pair();
    let (mut sealer, mut opener) = (d.sealer(), a.opener());
    let first = sealer.seal(b"vote for me").unwrap();
    let second = sealer.seal(b"members").unwrap();
    assert!(opener.open(&first).is_ok());
    assert_eq!(opener.open(&first), Err(AuthError::Forged));
    assert!(opener.open(&second).is_ok());
    assert_eq!(opener.open(&first), Err(AuthError::Forged));
    assert_eq!(opener.open(&second), Err(AuthError::Forged));
}

#[test]
fn a_frame_from_another_connection_fails() {
    // Same secret, same cluster, same node information: only the nonces in the
    // Hellos differ, as between two connections of the same two nodes.
    let mut nonces = NonceSource::new([3; 32]);
    let hello = |nonce: [u8; NONCE]| [b"node info".as_slice(), &nonce].concat();
    let (hd1, ha1) = (hello(nonces.next_nonce()), hello(nonces.next_nonce()));
    let (hd2, ha2) = (hello(nonces.next_nonce()), hello(nonces.next_nonce()));
    let (d1, a1) = pair(&secret(), "boss", &hd1, &ha1);
    let (_, a2) = pair(&secret(), "boss", &hd2, &ha2);
    let recorded = d1.sealer().seal(b"I am the master").unwrap();
    assert_eq!(a2.opener().open(&recorded), Err(AuthError::Forged));
    assert!(!a2.check_proof(&d1.proof()));
    // Only one nonce differing is enough.
    let (_, a3) = pair(&secret(), "boss", &hd1, &ha2);
    assert_eq!(a3.opener().open(&recorded), Err(AuthError::Forged));
    assert!(!a3.check_proof(&d1.proof()));
    assert!(a1.opener().open(&recorded).is_ok());
}

#[test]
fn a_frame_sent_back_to_its_sender_fails() {
    let (d, _) = default_pair();
    let sealed = d.sealer().seal(b"reflected").unwrap();
    assert_eq!(d.opener().open(&sealed), Err(AuthError::Forged));
}

#[test]
fn reordered_frames_fail() {
    let (d, a) = default_pair();
    let (mut sealer, mut opener) = (d.sealer(), a.opener());
    let f0 = sealer.seal(b"zero").unwrap();
    let f1 = sealer.seal(b"one").unwrap();
    assert_eq!(opener.open(&f1), Err(AuthError::Forged));
    assert_eq!(opener.open(&f0).unwrap(), b"zero");
    assert_eq!(opener.open(&f1).unwrap(), b"one");
}

#[test]
fn a_dropped_frame_fails_every_later_one() {
    let (d, a) = default_pair();
    let (mut sealer, mut opener) = (d.sealer(), a.opener());
    let _dropped = sealer.seal(b"zero").unwrap();
    for n in 0..5 {
        let later = sealer.seal(&[n]).unwrap();
        assert_eq!(opener.open(&later), Err(AuthError::Forged));
    }
}

#[test]
fn a_frame_under_another_secret_fails() {
    let (d, _) = default_pair();
    let other = Secret::from_bytes(b"another secret, 16+ bytes").unwrap();
    let (_, a) = pair(&other, "boss", HELLO_D, HELLO_A);
    let sealed = d.sealer().seal(b"hello").unwrap();
    assert_eq!(a.opener().open(&sealed), Err(AuthError::Forged));
}

#[test]
fn counters_never_wrap() {
    let (d, a) = default_pair();
    let mut sealer = d.sealer();
    sealer.next = Some(u64::MAX);
    let last = sealer.seal(b"last").unwrap();
    assert_eq!(sealer.seal(b"one too many"), Err(AuthError::Exhausted));
    assert_eq!(sealer.seal(b""), Err(AuthError::Exhausted));
    let mut opener = a.opener();
    opener.next = Some(u64::MAX);
    assert_eq!(opener.open(&last).unwrap(), b"last");
    assert_eq!(opener.open(&last), Err(AuthError::Exhausted));
    // The last frame is not the first frame under another name.
    assert_eq!(a.opener().open(&last), Err(AuthError::Forged));
}

#[test]
fn frame_nonce_layout() {
    assert_eq!(frame_nonce(0), [0; 12]);
    assert_eq!(
        hex(&frame_nonce(0x0102_0304_0506_0708)),
        "000000000102030405060708"
    );
    assert_eq!(hex(&frame_nonce(u64::MAX)), "00000000ffffffffffffffff");
}

#[test]
fn error_lines() {
    assert_eq!(AuthError::Forged.to_string(), "frame failed authentication");
    assert_eq!(AuthError::Exhausted.to_string(), "frame counter exhausted");
    assert_eq!(AuthError::TooLong.to_string(), "frame too long to seal");
}

/// What the protocol costs: `cargo test --release --lib auth -- --ignored --nocapture`.
#[test]
#[ignore]
#[allow(clippy::disallowed_methods)] // a measurement's stopwatch, not the core's clock
fn cost() {
    // The best of five rounds: the machine may be busy with other work.
    fn per_op(n: u32, mut f: impl FnMut()) -> f64 {
        (0..5)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..n {
                    f();
                }
                start.elapsed().as_nanos() as f64 / f64::from(n)
            })
            .fold(f64::INFINITY, f64::min)
    }
    let s = secret();
    let hello_d = [0x11; 120];
    let hello_a = [0x22; 120];
    let derive = per_op(5_000, || {
        let (d, a) = pair(&s, "boss", &hello_d, &hello_a);
        std::hint::black_box((d.proof(), a.check_proof(&[0; 32])));
    });
    let (d, a) = pair(&s, "boss", &hello_d, &hello_a);
    let keys_only = per_op(5_000, || {
        std::hint::black_box(Keys::derive(&s, "boss", &hello_d, &hello_a, Role::Dialler));
    });
    let (mut sealer, mut opener) = (d.sealer(), a.opener());
    let frame = [0x5a; 100];
    let seal_open = per_op(50_000, || {
        let sealed = sealer.seal(&frame).unwrap();
        std::hint::black_box(opener.open(&sealed).unwrap());
    });
    let mut nonces = NonceSource::new([1; 32]);
    let nonce = per_op(50_000, || {
        std::hint::black_box(nonces.next_nonce());
    });
    println!("key derivation (one end): {keys_only:.0} ns");
    println!("handshake (both ends: derive, prove, check): {derive:.0} ns");
    println!("seal + open of a 100-byte frame: {seal_open:.0} ns");
    println!("one nonce: {nonce:.0} ns");
}
