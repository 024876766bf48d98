//! Authenticated clusters: the cryptography of a cluster secret, and nothing else.
//!
//! **Contract.** Pure and deterministic, like the rest of the core: no clock, no
//! IO, no randomness of its own. The same inputs give the same bytes, so the
//! simulator can replay a handshake from its seed. What must be unpredictable in a
//! real run (the handshake nonces) comes from a [`NonceSource`] whose seed the
//! shell draws from the OS at start and the simulator draws from its own seed.
//! Nothing here panics on what a peer sends: every check of peer bytes answers
//! `false` or an [`AuthError`]. The primitives are RustCrypto's (SHA-256, HMAC,
//! HKDF, ChaCha20-Poly1305); none is written here. Key material is wiped from
//! memory when dropped and never printed by `Debug`.
//!
//! # Protocol
//!
//! All members of a cluster share a [`Secret`] (16 to 4096 bytes, read from a
//! file by the shell) and a cluster name. Every connection runs:
//!
//! 1. The dialler sends its `Hello`, the acceptor answers with its own. Each `Hello`
//!    carries a fresh 32-byte nonce from the sender's [`NonceSource`]:
//!    `nonce_i = HMAC-SHA256(seed, "boss nonce" || i)` (`i` a `u64`, big-endian),
//!    so a node never uses one twice.
//! 2. Both ends hash the **transcript**: a fixed label, then the cluster name, the
//!    dialler's encoded `Hello` and the acceptor's encoded `Hello`, each preceded by
//!    its length as a big-endian `u64` (so no two different transcripts hash the
//!    same bytes). `th = SHA-256(transcript)`. Both ends hash the very bytes that
//!    travelled, so any change to either `Hello` (its nonce, its address, its
//!    start time, …) changes every key.
//! 3. Both derive four 32-byte keys with HKDF-SHA256: salt `"boss auth v1"`,
//!    input key material the secret, info a per-key label followed by `th`: a
//!    proof key and a frame key for each direction (dialler to acceptor, acceptor
//!    to dialler). [`Keys::derive`] gives one end its sending and receiving pair.
//! 4. Each end sends a **proof** `HMAC-SHA256(its sending proof key, "boss proof"
//!    || th)` ([`Keys::proof`]) and checks the other's in constant time
//!    ([`Keys::check_proof`]). A proof shows that the sender knows the secret,
//!    belongs to this cluster, and saw exactly this transcript. Because each
//!    direction has its own key, a proof sent back to its maker (reflected) fails,
//!    and because both nonces are in the transcript, a proof recorded from another
//!    connection fails. Nothing the peer says is believed before its proof checks.
//! 5. Every later frame is sealed with ChaCha20-Poly1305 under the sending
//!    direction's frame key ([`Sealer`]), with the 96-bit nonce `0u32 || counter`
//!    (big-endian), the counter counting that direction's frames from 0. The
//!    receiver ([`Opener`]) expects the next counter: a frame altered, replayed,
//!    reordered, dropped, taken from another connection or from the other
//!    direction fails to open, and the counter only moves on success. A sealed
//!    frame is [`TAG`] bytes longer than its plaintext, which is also kept private.
//!
//! What this does not protect: a member that has the secret is trusted in full;
//! the sizes and timing of frames remain visible; the proof lets anyone who
//! records a handshake (or dials a node) test guesses of the secret offline, so
//! the secret must be random (for example 32 bytes from `/dev/urandom`), not a
//! word a person chose.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// Bytes a sealed frame adds to its plaintext (the Poly1305 tag).
pub const TAG: usize = 16;
/// Length of a handshake nonce.
pub const NONCE: usize = 32;
/// Length of a proof.
pub const PROOF: usize = 32;
/// Fewest bytes a secret may have (after its one trailing newline is stripped).
pub const MIN_SECRET: usize = 16;
/// Most bytes a secret may have.
pub const MAX_SECRET: usize = 4096;

/// HKDF salt: names the protocol and its version.
const SALT: &[u8] = b"boss auth v1";
/// First bytes of every transcript.
const TRANSCRIPT_LABEL: &[u8] = b"boss transcript v1";
/// HKDF info labels, one per key (each followed by the transcript hash).
const PROOF_KEY_DA: &[u8] = b"boss proof key dialler to acceptor";
const PROOF_KEY_AD: &[u8] = b"boss proof key acceptor to dialler";
const FRAME_KEY_DA: &[u8] = b"boss frame key dialler to acceptor";
const FRAME_KEY_AD: &[u8] = b"boss frame key acceptor to dialler";
/// First bytes of a proof's message.
const PROOF_LABEL: &[u8] = b"boss proof";
/// First bytes of a nonce's message.
const NONCE_LABEL: &[u8] = b"boss nonce";

/// Why a secret was refused. One line each, no secret bytes in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretError {
    /// Fewer than [`MIN_SECRET`] bytes (the count is given).
    TooShort(usize),
    /// More than [`MAX_SECRET`] bytes (the count is given).
    TooLong(usize),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::TooShort(n) => {
                write!(f, "secret too short: {n} bytes, at least {MIN_SECRET}")
            }
            SecretError::TooLong(n) => {
                write!(f, "secret too long: {n} bytes, at most {MAX_SECRET}")
            }
        }
    }
}

impl std::error::Error for SecretError {}

/// Why a frame could not be sealed or opened. One line each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// The frame did not open: altered, replayed, reordered, dropped before it,
    /// from another connection or direction, or shorter than a tag.
    Forged,
    /// This direction has used every counter value; the connection must end.
    Exhausted,
    /// The plaintext is beyond what ChaCha20-Poly1305 can seal.
    TooLong,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthError::Forged => "frame failed authentication",
            AuthError::Exhausted => "frame counter exhausted",
            AuthError::TooLong => "frame too long to seal",
        })
    }
}

impl std::error::Error for AuthError {}

/// A cluster's shared secret. Wiped from memory when dropped; `Debug` never
/// shows it.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// The secret in a file's bytes: one trailing `"\n"` or `"\r\n"` is not part
    /// of it (editors and `echo` add one); everything else is, byte for byte.
    pub fn from_bytes(bytes: &[u8]) -> Result<Secret, SecretError> {
        let bytes = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"))
            .unwrap_or(bytes);
        if bytes.len() < MIN_SECRET {
            return Err(SecretError::TooShort(bytes.len()));
        }
        if bytes.len() > MAX_SECRET {
            return Err(SecretError::TooLong(bytes.len()));
        }
        Ok(Secret(Zeroizing::new(bytes.to_vec())))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// An HMAC-SHA256 keyed with `key`.
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length (RFC 2104): this never fails.
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// HKDF-SHA256 (RFC 5869): extract with `salt` from `ikm`, expand with the
/// concatenation of `info` into `okm`.
fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]], okm: &mut [u8]) {
    // Asked only for 32 or 42 bytes, far below HKDF-SHA256's 8160: never fails.
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand_multi_info(info, okm)
        .expect("HKDF output length within 255 hash lengths");
}

/// Per-connection handshake nonces from one seed: `HMAC-SHA256(seed, "boss nonce"
/// || i)` for `i = 0, 1, 2, …` (big-endian `u64`), so they never repeat for a
/// seed and cannot be predicted without it (see [the protocol](self#protocol)).
pub struct NonceSource {
    mac: Hmac<Sha256>,
    next: u64,
}

impl NonceSource {
    /// A source drawing from `seed`: 32 bytes from the OS in a real run, from
    /// the world's seed in the simulator.
    pub fn new(seed: [u8; 32]) -> NonceSource {
        let seed = Zeroizing::new(seed);
        NonceSource {
            mac: keyed(&*seed),
            next: 0,
        }
    }

    /// The next nonce. (The index wraps after 2^64 nonces: at a million
    /// connections a second, in 580 000 years.)
    pub fn next_nonce(&mut self) -> [u8; NONCE] {
        let mut mac = self.mac.clone();
        mac.update(NONCE_LABEL);
        mac.update(&self.next.to_be_bytes());
        self.next = self.next.wrapping_add(1);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceSource")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Which end of a connection this node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// This node dialled.
    Dialler,
    /// This node accepted.
    Acceptor,
}

/// SHA-256 of the transcript: a label, then each part preceded by its length
/// (big-endian `u64`).
fn transcript_hash(cluster: &[u8], hello_dialler: &[u8], hello_acceptor: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(TRANSCRIPT_LABEL);
    for part in [cluster, hello_dialler, hello_acceptor] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// One end's keys for one connection (see [the protocol](self#protocol)):
/// what it proves and seals with, what it checks and opens with.
pub struct Keys {
    transcript: [u8; 32],
    send_proof: Zeroizing<[u8; 32]>,
    recv_proof: Zeroizing<[u8; 32]>,
    send_frame: Zeroizing<[u8; 32]>,
    recv_frame: Zeroizing<[u8; 32]>,
}

impl Keys {
    /// The keys of the end `role` of the connection whose handshake was
    /// `hello_dialler` then `hello_acceptor` (the encoded bytes as sent), in
    /// `cluster`, under `secret`. Both ends call it with the same bytes and
    /// opposite roles: what one sends with, the other receives with.
    pub fn derive(
        secret: &Secret,
        cluster: &str,
        hello_dialler: &[u8],
        hello_acceptor: &[u8],
        role: Role,
    ) -> Keys {
        let transcript = transcript_hash(cluster.as_bytes(), hello_dialler, hello_acceptor);
        let key = |label: &[u8]| {
            let mut okm = Zeroizing::new([0u8; 32]);
            hkdf(SALT, &secret.0, &[label, &transcript], &mut *okm);
            okm
        };
        let (proof_da, proof_ad) = (key(PROOF_KEY_DA), key(PROOF_KEY_AD));
        let (frame_da, frame_ad) = (key(FRAME_KEY_DA), key(FRAME_KEY_AD));
        match role {
            Role::Dialler => Keys {
                transcript,
                send_proof: proof_da,
                recv_proof: proof_ad,
                send_frame: frame_da,
                recv_frame: frame_ad,
            },
            Role::Acceptor => Keys {
                transcript,
                send_proof: proof_ad,
                recv_proof: proof_da,
                send_frame: frame_ad,
                recv_frame: frame_da,
            },
        }
    }

    /// The SHA-256 of this connection's transcript.
    pub fn transcript_hash(&self) -> [u8; 32] {
        self.transcript
    }

    /// This end's proof that it knows the secret and saw this transcript.
    pub fn proof(&self) -> [u8; PROOF] {
        hmac(&*self.send_proof, &[PROOF_LABEL, &self.transcript])
    }

    /// Whether `proof` is the other end's proof for this transcript. Compared in
    /// constant time; any length but [`PROOF`] is refused.
    pub fn check_proof(&self, proof: &[u8]) -> bool {
        let mut mac = keyed(&*self.recv_proof);
        mac.update(PROOF_LABEL);
        mac.update(&self.transcript);
        mac.verify_slice(proof).is_ok()
    }

    /// The sealer for the frames this end sends, counting from 0.
    pub fn sealer(&self) -> Sealer {
        Sealer {
            aead: ChaCha20Poly1305::new(&(*self.send_frame).into()),
            next: Some(0),
        }
    }

    /// The opener for the frames this end receives, expecting counter 0 first.
    pub fn opener(&self) -> Opener {
        Opener {
            aead: ChaCha20Poly1305::new(&(*self.recv_frame).into()),
            next: Some(0),
        }
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// The 96-bit ChaCha20-Poly1305 nonce of frame number `counter`.
fn frame_nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    nonce
}

/// ChaCha20-Poly1305 (RFC 8439) of `plaintext` with associated data `aad`:
/// the ciphertext followed by the tag.
fn aead_seal(
    aead: &ChaCha20Poly1305,
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, AuthError> {
    let payload = Payload {
        msg: plaintext,
        aad,
    };
    aead.encrypt(&(*nonce).into(), payload)
        .map_err(|_| AuthError::TooLong)
}

/// Seals the frames of one direction of one connection (see [the
/// protocol](self#protocol)).
pub struct Sealer {
    aead: ChaCha20Poly1305,
    /// The next frame's counter; `None` once every value has been used.
    next: Option<u64>,
}

impl Sealer {
    /// `plaintext` encrypted and authenticated as the next frame: [`TAG`] bytes
    /// longer. Refuses, rather than reuse a counter, after 2^64 frames.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, AuthError> {
        let counter = self.next.ok_or(AuthError::Exhausted)?;
        let sealed = aead_seal(&self.aead, &frame_nonce(counter), &[], plaintext)?;
        self.next = counter.checked_add(1);
        Ok(sealed)
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Opens the frames of one direction of one connection, in order (see [the
/// protocol](self#protocol)).
pub struct Opener {
    aead: ChaCha20Poly1305,
    /// The counter the next frame must carry; `None` once every value was used.
    next: Option<u64>,
}

impl Opener {
    /// The plaintext of `sealed` if it is exactly the next frame the other end
    /// sealed; [`AuthError::Forged`] otherwise, and then nothing changes (the
    /// connection should end: a later frame cannot open either).
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        let counter = self.next.ok_or(AuthError::Exhausted)?;
        if sealed.len() < TAG {
            return Err(AuthError::Forged);
        }
        let plaintext = self
            .aead
            .decrypt(&frame_nonce(counter).into(), sealed)
            .map_err(|_| AuthError::Forged)?;
        self.next = counter.checked_add(1);
        Ok(plaintext)
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
